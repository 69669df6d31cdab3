"""The selection algorithm of the `subsets` stage, on arrays only (no files, no projections).

A footprint is a chip's four corners in its source's metric frame (a convex quadrilateral). Two chips are "too close"
when their footprints overlap with positive area or lie less than `buffer_m` apart (equal is allowed). Footprints,
not their bounding boxes, decide: away from the frame's central meridian chips turn by the meridian convergence
(about 16 degrees at 25 degrees of longitude off it, at 40 N), so the boxes of neighbouring chips overlap though
the chips only touch. Boxes serve as cheap supersets: blocks go by box centre, and the buffer exclusion hashes box
centres into square cells of (largest box side + buffer), so a pool chip meets only the test chips of its own and
the 8 neighbouring cells, and only pairs whose boxes lie within the buffer get the exact test: O(N + pairs), not
O(N * T).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Quads = npt.NDArray[np.float64]  # (N, 4, 2): each footprint's corners in order around it, in metres
Boxes = npt.NDArray[np.float64]  # (N, 4): minx, miny, maxx, maxy in metres
Index = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
AUDIT_CHUNK = 1 << 14  # train-test pairs per exact step of the audit (memory stays under 50 MB)
NEXT = [1, 2, 3, 0]  # each corner's successor around a footprint
TOUCH_M = 1e-6  # overlap depth below which two footprints touch rather than overlap (rounding of shared corners)


def rng_for(seed: int, source: str) -> np.random.Generator:
    """One generator per (seed, source): a source's selection does not change when another source is added."""
    return np.random.default_rng([seed, zlib.crc32(source.encode("utf-8"))])


def contains(counts: npt.NDArray[np.int64], area: npt.NDArray[np.int64], min_share: float) -> Mask:
    """(N, C) presence: a chip contains a class when the class covers at least `min_share` of its pixels."""
    return counts >= min_share * area[:, None]


def block_index(boxes: Boxes, block_m: float) -> Index:
    """Block of each chip (the square cell holding its footprint centre), numbered in (x, y) cell order."""
    cells = np.floor((boxes[:, :2] + boxes[:, 2:]) / 2 / block_m).astype(np.int64)
    if len(cells) == 0:
        return np.zeros(0, dtype=np.int64)
    low = cells.min(axis=0)
    key = (cells[:, 0] - low[0]) * (int(cells[:, 1].max() - low[1]) + 1) + (cells[:, 1] - low[1])
    _, inverse = np.unique(key, return_inverse=True)  # one int64 key per cell: much faster than unique rows
    return inverse.astype(np.int64)


def stratified_order(presence: Mask, rng: np.random.Generator) -> tuple[Index, int]:
    """An ordering whose first chips cover every class present, rarest class first, then the rest at random.

    Returns the ordering (indices into `presence`) and how many leading chips were picked to cover classes.
    """
    n, n_classes = presence.shape
    taken = np.zeros(n, dtype=np.bool_)
    covered = np.zeros(n_classes, dtype=np.bool_)
    counts = presence.sum(axis=0)
    picks: list[int] = []
    for c in np.lexsort((np.arange(n_classes), counts)):  # rarest first, ties by class order
        if counts[c] == 0 or covered[c]:
            continue
        candidates = np.flatnonzero(presence[:, c] & ~taken)
        pick = int(candidates[rng.integers(len(candidates))])
        picks.append(pick)
        taken[pick] = True
        covered |= presence[pick]
    rest = np.flatnonzero(~taken)
    order = np.concatenate([np.asarray(picks, dtype=np.int64), rest[rng.permutation(len(rest))]])
    return order.astype(np.int64), len(picks)


def bounds(quads: Quads) -> Boxes:
    """Bounding boxes of footprints, for blocks and for hashing (a box is never nearer than its footprint)."""
    x, y = quads[:, :, 0], quads[:, :, 1]
    low, high = np.minimum, np.maximum  # pairwise: reductions over a 4-long axis are slow in numpy

    def fold(f: np.ufunc, v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(f(f(v[:, 0], v[:, 1]), f(v[:, 2], v[:, 3])), dtype=np.float64)

    return np.column_stack([fold(low, x), fold(low, y), fold(high, x), fold(high, y)])


def _vertex_edge(p: Quads, q: Quads) -> npt.NDArray[np.float64]:
    """Per pair, the least distance from a vertex of `p` to an edge of `q`.

    Components are spelled out because numpy's reductions over tiny trailing axes are slow.
    """
    sx, sy = q[:, None, :, 0], q[:, None, :, 1]
    ex, ey = q[:, None, NEXT, 0] - sx, q[:, None, NEXT, 1] - sy
    ox, oy = p[:, :, None, 0] - sx, p[:, :, None, 1] - sy
    t = np.clip((ox * ex + oy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
    return np.asarray(np.hypot(ox - t * ex, oy - t * ey).min(axis=(1, 2)), dtype=np.float64)


def pair_geometry(a: Quads, b: Quads) -> tuple[npt.NDArray[np.float64], Mask]:
    """Distance and positive-area overlap of footprint pairs (a[i], b[i]): convex quadrilaterals, exactly.

    Overlap by the separating axis theorem on unit edge normals, so depth is in metres: chips sharing an edge
    (the same projected corners) touch at depth 0 and do not overlap; depths up to `TOUCH_M` are rounding.
    """
    edges = np.concatenate([a[:, NEXT] - a, b[:, NEXT] - b], axis=1)
    length = np.hypot(edges[..., 0], edges[..., 1])
    nx, ny = (-edges[..., 1] / length)[..., None], (edges[..., 0] / length)[..., None]
    on_a = nx * a[:, None, :, 0] + ny * a[:, None, :, 1]
    on_b = nx * b[:, None, :, 0] + ny * b[:, None, :, 1]
    depth = np.minimum(on_a.max(axis=-1), on_b.max(axis=-1)) - np.maximum(on_a.min(axis=-1), on_b.min(axis=-1))
    overlap = np.asarray((depth > TOUCH_M).all(axis=1), dtype=np.bool_)
    distance = np.minimum(_vertex_edge(a, b), _vertex_edge(b, a))
    distance[overlap] = 0.0
    return distance, overlap


def box_distance(a: Boxes, b: Boxes) -> npt.NDArray[np.float64]:
    """Box-to-box distance (broadcasting; 0 when they touch or overlap): never more than the footprints'."""
    gx = np.maximum(a[..., 0] - b[..., 2], b[..., 0] - a[..., 2])
    gy = np.maximum(a[..., 1] - b[..., 3], b[..., 1] - a[..., 3])
    return np.asarray(np.hypot(np.maximum(gx, 0.0), np.maximum(gy, 0.0)), dtype=np.float64)


def box_close(a: Boxes, b: Boxes, buffer_m: float) -> Mask:
    """Pairs whose boxes overlap or lie less than `buffer_m` apart: a superset of the pairs too close."""
    return np.asarray(box_distance(a, b) < max(buffer_m, TOUCH_M), dtype=np.bool_)


def too_close(a: Quads, b: Quads, buffer_m: float) -> Mask:
    """Pairs (a[i], b[i]) that overlap with positive area or lie less than `buffer_m` apart (equal is allowed)."""
    distance, overlap = pair_geometry(a, b)
    return overlap | (distance < buffer_m)


def near(pool: Quads, test: Quads, buffer_m: float) -> Mask:
    """Pool chips too close to some test chip, by spatial hashing (the stage's hot path at 10^6 chips)."""
    out = np.zeros(len(pool), dtype=np.bool_)
    if len(pool) == 0 or len(test) == 0:
        return out
    pool_box, test_box = bounds(pool), bounds(test)
    side = max(float(np.max(pool_box[:, 2:] - pool_box[:, :2])), float(np.max(test_box[:, 2:] - test_box[:, :2])))
    cell = side + buffer_m  # a close pair's centres differ by less than this on each axis: at most one cell apart
    pool_cells = np.floor((pool_box[:, :2] + pool_box[:, 2:]) / 2 / cell).astype(np.int64)
    test_cells = np.floor((test_box[:, :2] + test_box[:, 2:]) / 2 / cell).astype(np.int64)
    low = np.minimum(pool_cells.min(axis=0), test_cells.min(axis=0)) - 1
    span = np.maximum(pool_cells.max(axis=0), test_cells.max(axis=0)) - low + 2
    step = np.array([[dx, dy] for dx in (-1, 0, 1) for dy in (-1, 0, 1)], dtype=np.int64)
    around = (test_cells[:, None, :] + step[None, :, :] - low).reshape(-1, 2)
    keys = around[:, 0] * span[1] + around[:, 1]
    owner = np.repeat(np.arange(len(test), dtype=np.int64), len(step))
    by_key = np.argsort(keys, kind="stable")
    sorted_keys = keys[by_key]
    pool_keys = (pool_cells[:, 0] - low[0]) * span[1] + (pool_cells[:, 1] - low[1])
    first = np.searchsorted(sorted_keys, pool_keys, side="left")
    hits = np.searchsorted(sorted_keys, pool_keys, side="right") - first
    rows = np.flatnonzero(hits)
    per_row = hits[rows]
    pool_i = np.repeat(rows, per_row)
    offset = np.arange(len(pool_i)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    test_i = owner[by_key[np.repeat(first[rows], per_row) + offset]]
    keep = box_close(pool_box[pool_i], test_box[test_i], buffer_m)
    pool_i, test_i = pool_i[keep], test_i[keep]
    out[pool_i[too_close(pool[pool_i], test[test_i], buffer_m)]] = True
    return out


@dataclass(frozen=True)
class Selection:
    """One source's selection: indices into its rows."""

    test: Index  # test chips, in selection order
    train_order: Index  # the pool in training order: the k-chip set is its first k
    test_cover: int  # chips it takes to cover the test blocks' classes (the test set may hold fewer)
    train_cover: int  # chips it takes to cover the pool's classes
    blocks: int
    test_blocks: int  # blocks the test set was drawn from
    test_block_chips: Index  # every chip of those blocks (those not in the test set are unused)
    excluded: int  # chips outside test blocks dropped by the buffer


def select(
    quads: Quads,
    presence: Mask,
    test_size: int,
    block_m: float,
    buffer_m: float,
    rng: np.random.Generator,
    near_fn: Callable[[Quads, Quads, float], Mask] = near,
) -> Selection:
    """Test set first from seeded random blocks, then the buffered training pool in one stratified ordering.

    Shortfalls are not errors here: a test set takes what its blocks hold and the caller compares sizes.
    `near_fn` is the buffer exclusion (the benchmark passes its brute-force baseline).
    """
    block = block_index(bounds(quads), block_m)
    n_blocks = int(block.max()) + 1 if len(block) else 0
    per_block = np.bincount(block, minlength=n_blocks)
    shuffled = rng.permutation(n_blocks)
    filled = np.cumsum(per_block[shuffled])
    enough = int(np.searchsorted(filled, test_size, side="left"))  # first prefix of blocks holding test_size chips
    chosen = np.sort(shuffled[: min(enough + 1, n_blocks)])
    in_test_blocks = np.isin(block, chosen)
    candidates = np.flatnonzero(in_test_blocks)
    test_order, test_cover = stratified_order(presence[candidates], rng)
    test = candidates[test_order[:test_size]]
    outside = np.flatnonzero(~in_test_blocks)
    close = near_fn(quads[outside], quads[test], buffer_m)
    pool = outside[~close]
    train_order, train_cover = stratified_order(presence[pool], rng)
    return Selection(
        test=test.astype(np.int64),
        train_order=pool[train_order].astype(np.int64),
        test_cover=test_cover,
        train_cover=train_cover,
        blocks=n_blocks,
        test_blocks=len(chosen),
        test_block_chips=candidates.astype(np.int64),
        excluded=int(close.sum()),
    )


def classes_in(presence: Mask) -> Mask:
    """Classes present in at least one of the rows."""
    return np.asarray(presence.any(axis=0), dtype=np.bool_)


def names_of(present: Mask, classes: Sequence[str]) -> list[str]:
    """Names of the present classes, in taxonomy order."""
    return [c for c, p in zip(classes, present.tolist(), strict=True) if p]


def reasons(classes: Sequence[str], layers: Sequence[tuple[Mask, str]], last: str) -> dict[str, str]:
    """Why each class would be missing from a set: the first layer (outermost first) lacking it, else `last`."""
    return {c: next((why for present, why in layers if not present[i]), last) for i, c in enumerate(classes)}


def describe(
    presence: Mask, pixels: npt.NDArray[np.int64], idx: Index, classes: Sequence[str], why: dict[str, str], ignore: str
) -> dict[str, Any]:
    """Classes present and missing (with `why[class]`) in one set, each class's chip share and pixel share."""
    present = classes_in(presence[idx])
    counts = pixels[idx].sum(axis=0)
    total = max(int(counts.sum()), 1)
    named = [(i, c) for i, c in enumerate(classes) if c != ignore]
    return {
        "chips": len(idx),
        "classes_present": [c for i, c in named if present[i]],
        "classes_missing": {c: why[c] for i, c in named if not present[i]},
        "chip_share": {c: round(float(presence[idx, i].mean()), 6) if len(idx) else 0.0 for i, c in named},
        "pixel_share": {c: round(int(counts[i]) / total, 6) for i, c in enumerate(classes)},
    }


@dataclass(frozen=True)
class Audit:
    """Train-test footprint relations of one source: overlaps, the closest pair, and the pairs breaking the rule."""

    overlaps: int  # pairs overlapping with positive area
    min_distance: float | None  # metres; None without a pair
    closest: tuple[int, int] | None  # (train, test) indices of the closest pair
    offending: int  # pairs too close (or overlapping)
    worst: list[tuple[int, int, float]]  # (train, test, metres) of the closest offending pairs (at most `limit`)


def audit(train: Quads, test: Quads, buffer_m: float, limit: int = 5) -> Audit:
    """Every train-test pair, by brute force: an independent check of the spatial hash.

    Box distances of all pairs (chunked) bound the footprint distances from below, so footprints are compared
    exactly in order of box distance: every pair whose boxes lie within the buffer, then on until no box is nearer
    than the closest footprint pair found. With `buffer_m` 0 only overlaps with positive area offend (the study's
    published lists carry no buffer).
    """
    n_test = len(test)
    if len(train) == 0 or n_test == 0:
        return Audit(0, None, None, 0, [])
    train_box, test_box = bounds(train), bounds(test)
    rows = max(1, AUDIT_CHUNK // n_test)
    lower = np.concatenate(
        [box_distance(train_box[i : i + rows, None], test_box[None]).ravel() for i in range(0, len(train), rows)]
    )
    order = np.argsort(lower, kind="stable")
    threshold, best, closest, overlaps = max(buffer_m, TOUCH_M), np.inf, (0, 0), 0
    bad: list[tuple[int, int, float]] = []
    start, batch = 0, max(64, int(np.searchsorted(lower[order], threshold)))  # all pairs within the buffer first
    while start < len(order) and lower[order[start]] < max(best, threshold):
        pairs = order[start : start + min(batch, AUDIT_CHUNK)]
        start, batch = start + len(pairs), batch * 2
        ti, si = pairs // n_test, pairs % n_test
        dist, overlap = pair_geometry(train[ti], test[si])
        overlaps += int(overlap.sum())
        k = int(np.argmin(dist))
        if dist[k] < best:
            best, closest = float(dist[k]), (int(ti[k]), int(si[k]))
        bad += [(int(ti[k]), int(si[k]), float(dist[k])) for k in np.flatnonzero(overlap | (dist < buffer_m))]
    bad.sort(key=lambda pair: (pair[2], pair[0], pair[1]))
    return Audit(overlaps, best, closest, len(bad), bad[:limit])
