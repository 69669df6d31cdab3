"""GDAL 3.x's nearest-neighbour warp of one chip, step by step in numpy: the mapping, the chunks, the rows, the pixels.

`curation.sources.raster_grid` explains the steps and when each is taken; this module holds them. Every chip that
`raster_bulk` does not finish (chips over the source's edge, halved rows, rotated chips, rows near a pixel edge)
goes through `chunks`, `map_rows` and `pixels`, mapped exactly throughout.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from affine import Affine

Floats = npt.NDArray[np.float64]
Indices = npt.NDArray[np.intp]
Mask = npt.NDArray[np.bool_]
Project = Callable[[Floats, Floats], tuple[Floats, Floats]]  # chip CRS -> source CRS, georeferenced
Region = tuple[int, int, int, int]  # destination x offset, y offset, width, height
SrcWindow = tuple[int, int, int, int]  # source x offset, y offset, x size, y size (GDAL's nSrcXOff, ...)
Lines = tuple[Floats, Floats, Floats, Floats]  # per row: first x, x step per pixel, first y, y step

MAX_ERROR = 0.125  # rasterio's approximate-transformer threshold, in source pixels
FLOOR_EPS = 1e-10  # GDAL's nearest kernel: source pixel = int(coordinate + 1e-10)
SPLIT_PX = 100  # CollectChunkList halves only regions wider or higher than this...
SPLIT_RATIO = 0.5  # ...whose source window fills less than this share of their mapped box
MAX_BYTES = 32 * 2**20  # half GDAL's 64 MB warp memory: GDAL's memory splits are not repeated here
EDGE_STEPS = 21  # ComputeSourceWindow's points per edge
SNAP = 1e-6  # ComputeSourceWindow rounds box edges this close to an integer
NODES = 9  # Chebyshev nodes per column
NODE_TOLERANCE = 2e-9  # largest miss (source px) allowed of the interpolated columns at the check rows
ROUNDING = 2e-8  # decisions (pixel edges of windows, thresholds) closer than this to GDAL's line go to GDAL


class NotReproducible(Exception):
    """GDAL would do something here that this module does not repeat with certainty."""


class Mapping:
    """Destination pixel coordinates to source (window) pixel coordinates, computed as GDAL computes them."""

    def __init__(self, dst: Affine, src: Affine, project: Project | None) -> None:
        self.dst, self.src = dst, src
        self.g = tuple(dst[:6])
        self.inv = (-src.c / src.a, 1.0 / src.a, -src.f / src.e, 1.0 / src.e)  # GDALInvGeoTransform, north-up
        self.project = project
        self.rounding = 0.0 if project is None else ROUNDING  # in one CRS the numbers are GDAL's, bit for bit

    def __call__(self, px: Floats, py: Floats) -> tuple[Floats, Floats]:
        """Exact source pixel coordinates of destination pixel coordinates (arrays of one shape)."""
        a, b, c, d, e, f = self.g
        x, y = c + px * a, f + px * d
        if b != 0.0:
            x = x + py * b
        if e != 0.0:
            y = y + py * e
        if self.project is not None:
            x, y = self.project(x, y)
            if not math.isfinite(float(x.sum()) + float(y.sum())):  # a sum of finite coordinates stays finite
                raise NotReproducible("the CRS transformation fails on some chip pixels")
        inv0, inv1, inv3, inv5 = self.inv
        x *= inv1
        x += inv0
        y *= inv5
        y += inv3
        return x, y

    def lines(
        self, xs: tuple[float, ...], y0: float, n: int, extra: Region | None = None
    ) -> tuple[Floats, Floats, Floats, Floats]:
        """Source coordinates of the points (xs[j], y0 + i), (n, len(xs)) arrays, and of `extra`'s edge points.

        All mapped exactly, in one call to PROJ (`raster_bulk.across` interpolates the common chip's columns).
        """
        px, py, m = line_points(xs, y0, n, False, extra)
        gx, gy = self(px, py)
        k = len(xs)
        return gx[:m].reshape(-1, k), gy[:m].reshape(-1, k), gx[m:], gy[m:]


@lru_cache(maxsize=256)
def line_points(
    xs: tuple[float, ...], y0: float, n: int, interpolate: bool, extra: Region | None
) -> tuple[Floats, Floats, int]:
    """The destination points of xs on n rows from y0, then `extra`'s edge points, and how many come before those.

    Every row's points, or with `interpolate` the node and check rows' only (see `chebyshev`).
    """
    ys = y0 + np.arange(n, dtype=np.float64)
    rows = np.concatenate(_nodes(n)) if interpolate else np.arange(n)
    k = len(xs)
    ex, ey = edge_points(extra) if extra is not None else (np.empty(0), np.empty(0))
    px = np.concatenate([np.broadcast_to(np.array(xs), (len(rows), k)).ravel(), ex])
    py = np.concatenate([np.broadcast_to(ys[rows, None], (len(rows), k)).ravel(), ey])
    for array in (px, py):
        array.setflags(write=False)
    return px, py, len(rows) * k


@lru_cache(maxsize=64)
def _nodes(n: int) -> tuple[Indices, Indices]:
    """The rows nearest the Chebyshev-Lobatto nodes over n rows (ends included), and two check rows.

    The check rows lie between the outer nodes, where interpolation misses most (checked exactly on every chip).
    """
    nodes = np.rint((n - 1) * (1 - np.cos(np.pi * np.arange(NODES) / (NODES - 1))) / 2).astype(np.intp)
    checks = np.array([(nodes[0] + nodes[1]) // 2, (nodes[-2] + nodes[-1] + 1) // 2], dtype=np.intp)
    for array in (nodes, checks):
        array.setflags(write=False)
    return nodes, checks


@lru_cache(maxsize=64)
def chebyshev(n: int) -> tuple[Floats, Indices]:
    """Interpolation over n rows from the node rows: their Lagrange weights on every row, and the check rows.

    The weights reproduce lines exactly, and their rounding (about 1e-12 px) is far inside NODE_TOLERANCE.
    """
    nodes, checks = _nodes(n)
    t = np.arange(n, dtype=np.float64)
    weights = np.ones((n, NODES))
    for j in range(NODES):
        for m in range(NODES):
            if m != j:
                weights[:, j] *= (t - nodes[m]) / (nodes[j] - nodes[m])
    weights.setflags(write=False)
    return weights, checks


@lru_cache(maxsize=256)
def edge_points(region: Region) -> tuple[Floats, Floats]:
    """ComputeSourceWindow's sample points: top, bottom, left and right at the ratios 0, 1/20, ... (summed up)."""
    x0, y0, w, h = region
    ratios = []
    step, ratio = 1.0 / (EDGE_STEPS - 1), 0.0
    while ratio <= 1.0 + step * 0.5:
        ratios.append(ratio)
        ratio += step
    r = np.array(ratios)
    px = np.stack([r * w + x0, r * w + x0, np.full_like(r, x0), np.full_like(r, x0 + w)], 1).ravel()
    py = np.stack([np.full_like(r, y0), np.full_like(r, y0 + h), r * h + y0, r * h + y0], 1).ravel()
    for array in (px, py):
        array.setflags(write=False)
    return px, py


def source_window(ex: Floats, ey: Floats, width: int, height: int, rounding: float) -> tuple[SrcWindow, float]:
    """ComputeSourceWindow (nearest) from a region's mapped edge points: its source window and fill ratio.

    `rounding`: how far the points may be from GDAL's; decisions closer than that raise NotReproducible.
    """
    box = (float(ex.min()), float(ex.max()), float(ey.min()), float(ey.max()))
    return box_window(box, width, height, rounding)


def box_window(
    box: tuple[float, float, float, float], width: int, height: int, rounding: float
) -> tuple[SrcWindow, float]:
    """`source_window` from the mapped edge points' box (min x, max x, min y, max y)."""
    for value in box if rounding else ():
        if abs(value - round(value)) < rounding or abs(abs(value - round(value)) - SNAP) < rounding:
            raise NotReproducible("a region's mapped box ends within rounding of a pixel edge")
    if box[0] > width or box[1] < 0 or box[2] > height or box[3] < 0:
        return (0, 0, 0, 0), 0.0
    lo_x, hi_x, lo_y, hi_y = (float(round(v)) if abs(v - round(v)) < SNAP else v for v in box)
    window: list[int] = []
    for lo, hi, size in ((lo_x, hi_x, width), (lo_y, hi_y, height)):
        first, last = int(max(lo, 0.0)), int(min(float(np.ceil(hi)), float(size)))
        if last - first > 0.9 * size:  # GDAL takes the whole width (its anti-meridian rule)
            window += [0, size]
        else:
            off = max(0, min(first, size))
            window += [off, max(0, min(last - off, size - off))]
    ratio = window[1] * window[3] / max(1.0, (hi_x - lo_x) * (hi_y - lo_y))
    if abs(ratio - SPLIT_RATIO) < rounding:
        raise NotReproducible("a region's fill ratio is within rounding of GDAL's 0.5")
    return (window[0], window[2], window[1], window[3]), ratio


def memory_check(src: SrcWindow, region: Region) -> None:
    """Raise near GDAL's warp memory limit, where GDAL would split the region in ways not repeated here."""
    if (64 * src[2] * src[3] + 65 * region[2] * region[3]) / 8 > MAX_BYTES:
        raise NotReproducible("the chip is near GDAL's warp memory limit")


def splits(ratio: float, region: Region) -> bool:
    """Whether CollectChunkList halves a region whose source window fills `ratio` of its mapped box."""
    return 0 < ratio < SPLIT_RATIO and (region[2] > SPLIT_PX or region[3] > SPLIT_PX)


def chunks(
    mapping: Mapping, width: int, height: int, region: Region, edges: tuple[Floats, Floats] | None = None
) -> list[tuple[Region, SrcWindow]]:
    """CollectChunkListInternal: the regions GDAL warps one by one, each with its source window."""
    x0, y0, w, h = region
    ex, ey = edges if edges is not None else mapping(*edge_points(region))
    src, ratio = source_window(ex, ey, width, height, mapping.rounding)
    memory_check(src, region)
    if not splits(ratio, region):
        return [(region, src)]
    if w > h:
        halves = [(x0, y0, w // 2, h), (x0 + w // 2, y0, w - w // 2, h)]
    else:
        halves = [(x0, y0, w, h // 2), (x0, y0 + h // 2, w, h - h // 2)]
    return [chunk for half in halves for chunk in chunks(mapping, width, height, half)]


def row_lines(sx: Floats, sy: Floats, w: int, rounding: float) -> tuple[Lines, Mask]:
    """GDALApproxTransform's test on every row, from its mapped first, middle and last centres.

    Returns the interpolating lines and the rows GDAL halves; raises where a test is within rounding of the line.
    """
    span = float(w - 1)
    x_0, y_0 = sx[:, 0], sy[:, 0]
    dx, dy = (sx[:, 2] - x_0) / span, (sy[:, 2] - y_0) / span
    mid = float((w - 1) // 2)
    err = np.abs(x_0 + dx * mid - sx[:, 1])
    err += np.abs(y_0 + dy * mid - sy[:, 1])
    if rounding and (np.abs(err - MAX_ERROR) < rounding).any():
        raise NotReproducible("a row's interpolation test is within rounding of GDAL's threshold")
    return (x_0, dx, y_0, dy), err > MAX_ERROR


def map_rows(mapping: Mapping, region: Region) -> tuple[Floats, Floats]:
    """GDALApproxTransform on every row of a region: source coordinates, two (h, w) arrays, exactly as GDAL's."""
    x0, y0, w, h = region
    xin = np.arange(w, dtype=np.float64) + (0.5 + x0)
    yin = np.arange(h, dtype=np.float64) + (0.5 + y0)
    if w <= 5:  # GDAL maps short rows exactly
        return mapping(np.broadcast_to(xin, (h, w)), np.broadcast_to(yin[:, None], (h, w)))
    sx, sy = mapping.lines((float(xin[0]), float(xin[(w - 1) // 2]), float(xin[w - 1])), float(yin[0]), h)[:2]
    (x_0, dx, y_0, dy), split = row_lines(sx, sy, w, mapping.rounding)
    dist = xin - xin[0]
    gx, gy = np.multiply.outer(dx, dist), np.multiply.outer(dy, dist)
    gx += x_0[:, None]
    gy += y_0[:, None]
    if split.any():
        _halve(mapping, xin, yin, gx, gy, np.flatnonzero(split), sx, sy)
    return gx, gy


def _halve(
    mapping: Mapping, xin: Floats, yin: Floats, gx: Floats, gy: Floats, rows: Indices, sx: Floats, sy: Floats
) -> None:
    """GDALApproxTransformInternal's halving, for the given rows at once (fills gx, gy)."""
    todo = [(0, len(xin), rows, sx[rows], sy[rows])]
    while todo:
        start, n, rows, sx, sy = todo.pop()
        m, end = (n - 1) // 2, start + n - 1
        span = xin[end] - xin[start]
        dx, dy = (sx[:, 2] - sx[:, 0]) / span, (sy[:, 2] - sy[:, 0]) / span
        mid = xin[start + m] - xin[start]
        err = np.abs(sx[:, 0] + dx * mid - sx[:, 1]) + np.abs(sy[:, 0] + dy * mid - sy[:, 1])
        if mapping.rounding and (np.abs(err - MAX_ERROR) < mapping.rounding).any():
            raise NotReproducible("a row's interpolation test is within rounding of GDAL's threshold")
        split = err > MAX_ERROR
        ok = ~split
        dist = xin[start : end + 1] - xin[start]
        gx[rows[ok], start : end + 1] = sx[ok, :1] + dx[ok, None] * dist
        gy[rows[ok], start : end + 1] = sy[ok, :1] + dy[ok, None] * dist
        rows, sx, sy = rows[split], sx[split], sy[split]
        k = len(rows)
        if not k:
            continue
        ys = yin[rows, None]
        # the left half [start, start + m) keeps the start; the right half [start + m, end] the middle and the end
        for first, size, s0, s2 in ((start, m, 0, -1), (start + m, n - m, 1, 2)):
            if size <= 5:  # GDAL maps short pieces exactly
                cols = np.broadcast_to(xin[first : first + size], (k, size))
                gx[rows, first : first + size], gy[rows, first : first + size] = mapping(
                    cols, np.broadcast_to(ys, (k, size))
                )
                continue
            wanted = [first + (size - 1) // 2] + ([] if s2 >= 0 else [first + size - 1])
            qx, qy = mapping(np.broadcast_to(xin[wanted], (k, len(wanted))), np.broadcast_to(ys, (k, len(wanted))))
            lx, ly = (sx[:, s2], sy[:, s2]) if s2 >= 0 else (qx[:, 1], qy[:, 1])
            todo.append(
                (first, size, rows, np.stack([sx[:, s0], qx[:, 0], lx], 1), np.stack([sy[:, s0], qy[:, 0], ly], 1))
            )


def pixels(
    mapping: Mapping, region: Region, src: SrcWindow, gx: Floats, gy: Floats, width: int
) -> tuple[Indices, Mask]:
    """GWKCheckAndComputeSrcOffsets over a region: flat window indices, and which pixels have one."""
    xo, yo, xs, ys = src
    x1, y1 = xo + xs, yo + ys
    if xs == 0 or ys == 0:
        return np.zeros(gx.shape, dtype=np.intp), np.zeros(gx.shape, dtype=bool)
    out_x, out_y = gx < xo, gy < yo
    over_x, over_y = gx + FLOOR_EPS > x1, gy + FLOOR_EPS > y1
    bad = out_x | out_y | over_x | over_y
    near = np.where(out_x, gx > xo - 1, np.where(out_y, gy > yo - 1, np.where(over_x, gx < x1 + 1, gy < y1 + 1)))
    rr, cc = np.nonzero(bad & near)
    if len(rr):  # GDAL maps these again, exactly
        ex, ey = mapping(cc.astype(np.float64) + (0.5 + region[0]), rr.astype(np.float64) + (0.5 + region[1]))
        gx[rr, cc], gy[rr, cc] = ex, ey
        bad[rr, cc] = (ex < xo) | (ey < yo) | (ex + FLOOR_EPS > x1) | (ey + FLOOR_EPS > y1)
    valid = ~bad
    cols = np.minimum(np.where(valid, gx + FLOOR_EPS, xo).astype(np.intp), x1 - 1)  # GDAL: iSrcX == size -> size - 1
    rows = np.minimum(np.where(valid, gy + FLOOR_EPS, yo).astype(np.intp), y1 - 1)
    return rows * width + cols, valid
