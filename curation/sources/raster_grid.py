"""Which product pixels a chip reads: the window under it, and GDAL's nearest-neighbour warp, step by step, in numpy.

`padded_window` is the window of a product under a chip (its box in the product's CRS, plus PAD pixels), with
rasterio's own numbers (`chip_box` is `ChipGrid.bounds_in`, `window_affine` is `rasterio.windows.transform`).

`rasterio.warp.reproject` (nearest) spends about 11 ms per chip setting up GDAL's warper for well under 1 ms of
work. `nearest` repeats what GDAL 3.x does for one chip, so the same source pixels come out without that set-up:

1. Chunks (GDALWarpOperation::CollectChunkList, ComputeSourceWindow): a region's source window is the bounding box
   of 21 exactly mapped points per edge, clamped to the source; a region over 100 px whose window fills less than
   half of that box (the chip hangs over the source's edge) is halved, along x when wider than high, else along y,
   and each half is looked at again.
2. Rows (GDALApproxTransform, error threshold 0.125 source px): a region's row of pixel centres is mapped by
   interpolating linearly between its exactly mapped first, middle and last centres, the row being halved while
   the middle misses the line by more than the threshold (pieces of 5 px or less are mapped exactly).
3. Pixels (GWKCheckAndComputeSrcOffsets): a centre landing up to 1 px outside its region's source window is mapped
   again, exactly; the source pixel is int(coordinate + 1e-10).

An exact mapping is the chip's affine, a CRS transformation, then GDAL's inverse of the window's affine; in one CRS
it is that arithmetic alone, bit for bit GDAL's. Across CRSs the common chip (inside the window, no row halved) takes
`raster_bulk.across`: one call to the cached `pyproj.Transformer` for the edge points and the rows' first, middle
and last centres (three columns, mapped at 9 Chebyshev nodes and interpolated: about 120 PROJ points per chip
instead of 768), landing within about 1e-9 px of GDAL's, whose PROJ build differs in the last bits; each pixel's
floors are then taken in fixed point, and a row where some centre comes within `RISK` of a pixel edge is mapped
again through GDAL's own CRS transformation (`exact`), so its floors are GDAL's. Other chips take every step in
`raster_warp`, mapped exactly. Where a step cannot be repeated with certainty (a value within `ROUNDING` of one of
GDAL's thresholds, a chip near GDAL's 64 MB warp memory, PROJ failing) `nearest` raises NotReproducible and the
caller warps with GDAL.

Modules: this one (the window, the entry point), `raster_warp` (GDAL's steps), `raster_bulk` (the common chip).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.warp import transform as gdal_transform
from rasterio.warp import transform_bounds as gdal_transform_bounds
from rasterio.windows import Window

from curation.sources.base import Bounds, ChipGrid, _transformer, intersects
from curation.sources.raster_bulk import across, inside, separable_index
from curation.sources.raster_warp import Mapping, Mask, NotReproducible, Project, chunks, map_rows, pixels, row_lines

__all__ = ["PAD", "NotReproducible", "Project", "RasterFile", "chip_box", "crs_pair", "gdal_box", "nearest",
           "padded_window", "projection_gap", "projections_agree", "window_affine"]  # fmt: skip

PAD = 2  # source pixels added around a window so nearest-neighbour edges match a full-raster warp


@dataclass(frozen=True)
class RasterFile:
    """What a read needs to know about one product file, gathered once; `token` names the handle opened with it."""

    path: Path
    crs: CRS
    transform: Affine
    width: int
    height: int
    bounds: Bounds
    dtype: str
    token: int = field(default=0, compare=False, repr=False)


_PAIRS: dict[tuple[str, str], tuple[bool, Transformer | None]] = {}
_INVERSES: dict[tuple[float, ...], npt.NDArray[np.float64]] = {}


def crs_pair(a: CRS, b: CRS) -> tuple[bool, Transformer | None]:
    """Whether two CRSs are equal, and the cached PROJ transformer between them (None when equal).

    Looked up by their WKT (`CRS.wkt` is kept by each CRS): `==` and `to_wkt` cost more than the window read.
    """
    key = (a.wkt, b.wkt)
    got = _PAIRS.get(key)
    if got is None:
        if len(_PAIRS) > 256:
            _PAIRS.clear()
        same = a == b
        got = (same, None if same else _transformer(*key))
        _PAIRS[key] = got
    return got


AGREE_PX = 1e-8  # pyproj must land this close to GDAL's PROJ (in source pixels) for the fast path: RISK / 2
AGREE_CELL = {True: 5.0, False: 500_000.0}  # a check per 5 degrees (geographic chip CRS) or 500 km of chip origins
_GAPS: dict[tuple[str, str, int, int], float] = {}


def projection_gap(grid: ChipGrid, crs: CRS) -> float:
    """How far pyproj's transformation of the chip's corners and centre lands from GDAL's, in `crs` units.

    pyproj and rasterio each ship a PROJ build; where they pick different operations (a datum shift with and without
    its grid, a deprecated CRS GDAL swaps for its successor: EPSG:2163 over CDL's Albers lands kilometres apart) the
    fast path's points and window would be pyproj's, not GDAL's. Checked once per CRS pair and region of chip
    origins (PROJ picks operations by area); 0 in one CRS, inf where either fails.
    """
    same, transformer = crs_pair(grid.crs, crs)
    if same or transformer is None:
        return 0.0
    t = grid.transform
    span = AGREE_CELL[bool(grid.crs.is_geographic)]
    key = (grid.crs.wkt, crs.wkt, int(np.floor(t.c / span)), int(np.floor(t.f / span)))
    gap = _GAPS.get(key)
    if gap is None:
        if len(_GAPS) > 4096:
            _GAPS.clear()
        cols = np.array([0.0, grid.width, 0.0, grid.width, grid.width / 2])
        rows = np.array([0.0, 0.0, grid.height, grid.height, grid.height / 2])
        x, y = t.c + cols * t.a + rows * t.b, t.f + cols * t.d + rows * t.e
        fx, fy = (np.asarray(v, dtype=np.float64) for v in transformer.transform(x, y))
        gx, gy = (np.asarray(v, dtype=np.float64) for v in gdal_transform(grid.crs, crs, x.tolist(), y.tolist()))
        diffs = np.concatenate([np.abs(fx - gx), np.abs(fy - gy)])
        gap = _GAPS[key] = float(diffs.max()) if np.isfinite(diffs).all() else float("inf")
    return gap


def projections_agree(grid: ChipGrid, crs: CRS, transform: Affine) -> bool:
    """Whether pyproj lands within AGREE_PX source pixels of GDAL for this chip (`transform`: the source's)."""
    pixel = min(abs(transform.a), abs(transform.e)) or max(abs(transform.b), abs(transform.d))
    return projection_gap(grid, crs) <= AGREE_PX * pixel


def gdal_box(grid: ChipGrid, crs: CRS) -> Bounds:
    """A box in `crs` sure to hold the chip's source pixels where pyproj and GDAL map the pair differently.

    GDAL itself is not of one mind there: its warper (an area of interest set) and `rasterio.warp.transform` can pick
    different operations too (EPSG:2163 over EPSG:5070: the warper lands where pyproj does, 300 m from the other).
    So the box is the union of pyproj's and GDAL's boxes, widened by the gap between them on every side; GDAL's
    warp of that window is its warp of the whole product.
    """
    ours = chip_box(grid, crs)
    theirs = gdal_transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
    gap = projection_gap(grid, crs)
    gap = gap if np.isfinite(gap) else 0.0
    return (
        min(ours[0], float(theirs[0])) - gap,
        min(ours[1], float(theirs[1])) - gap,
        max(ours[2], float(theirs[2])) + gap,
        max(ours[3], float(theirs[3])) + gap,
    )


def chip_box(grid: ChipGrid, crs: CRS) -> Bounds:
    """`grid.bounds_in(crs)`, the same numbers, with the CRS comparison and transformer looked up once per pair."""
    same, transformer = crs_pair(grid.crs, crs)
    if same or transformer is None:
        return grid.bounds
    box = transformer.transform_bounds(*grid.bounds, densify_pts=21)
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def padded_window(file: RasterFile, box: Bounds) -> Window | None:
    """The window of `file` under `box` (in its CRS) plus PAD pixels, clamped to the file; None when empty.

    The fractional window is `rasterio.windows.from_bounds`'s, computed as it computes it (its inverse affine as a
    3x3 matrix, one `dot`), without its per-call set-up.
    """
    if not intersects(box, file.bounds):
        return None
    left, bottom, right, top = box
    inverse = _INVERSES.get(tuple(file.transform))
    if inverse is None:
        inverse = np.empty((3, 3))
        inverse.flat[:] = ~file.transform
        _INVERSES[tuple(file.transform)] = inverse
    points = np.empty((3, 4))
    points[0] = (left, right, right, left)
    points[1] = (top, top, bottom, bottom)
    points[2] = 1
    inverse.dot(points, out=points)
    cols, rows = points[0].tolist(), points[1].tolist()
    col_off, row_off = min(cols), min(rows)
    width, height = max(max(cols) - col_off, 0.0), max(max(rows) - row_off, 0.0)
    col0 = max(int(np.floor(col_off)) - PAD, 0)
    row0 = max(int(np.floor(row_off)) - PAD, 0)
    col1 = min(int(np.ceil(col_off + width)) + PAD, file.width)
    row1 = min(int(np.ceil(row_off + height)) + PAD, file.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def window_affine(transform: Affine, window: Window) -> Affine:
    """`rasterio.windows.transform`: the same arithmetic (affine's), without its two `*`, each a warning."""
    a, b, c, d, e, f = transform[:6]
    col, row = window.col_off, window.row_off
    x, y = col * a + row * b + c, col * d + row * e + f
    return Affine(a + 0.0 * d, b + 0.0 * e, c + 0.0 * f + (x - c), 0.0 * a + d, 0.0 * b + e, 0.0 * c + f + (y - f))


@lru_cache(maxsize=64)
def _centres(w: int) -> tuple[float, float, float]:
    """A row's first, middle and last pixel centres, the points GDALApproxTransform maps exactly."""
    return (0.5, (w - 1) // 2 + 0.5, w - 0.5)


def nearest(
    data: npt.NDArray[np.generic],
    src: Affine,
    dst: Affine,
    shape: tuple[int, int],
    bulk: Project | None,
    exact: Project | None,
) -> tuple[npt.NDArray[np.generic], Mask | None]:
    """`data` sampled on the chip grid as GDAL's nearest warp samples it; raises NotReproducible.

    `data` is a source window with affine `src`; the chip grid has affine `dst` and (height, width) `shape`.
    Returns the values, and which chip pixels got one (None: all).

    `bulk` and `exact` map chip CRS coordinates to the source CRS (both None: one CRS): `bulk` fast (pyproj),
    `exact` as GDAL does (its own PROJ), for rows within rounding of a pixel edge and for chips over an edge.
    """
    if src.b != 0.0 or src.d != 0.0:
        raise NotReproducible("the source is rotated")
    h, w = shape
    height, width = data.shape
    region = (0, 0, w, h)
    if bulk is not None:
        got = across(data, Mapping(dst, src, bulk), exact, shape)
        if got is not None:
            return got, None
        mapping = Mapping(dst, src, exact)  # every step as GDAL takes it, mapped exactly throughout
        plan = chunks(mapping, width, height, region)
    else:
        mapping = Mapping(dst, src, None)
        sx, sy, ex, ey = mapping.lines(_centres(w), 0.5, h, region)
        plan = chunks(mapping, width, height, region, (ex, ey))
        if len(plan) == 1 and w > 5:
            lines, split = row_lines(sx, sy, w, mapping.rounding)
            ends_x, ends_y = sx[:, ::2], sy[:, ::2]
            lo, hi = [float(ends_x.min()), float(ends_y.min())], [float(ends_x.max()), float(ends_y.max())]
            if not split.any() and inside(lo, hi, plan[0][1]):
                index = separable_index(lines, w, width)
                if index is not None:
                    return data.reshape(-1).take(index), None
    # chips over an edge, halved rows, rotated chips: every step as GDAL takes it
    index = np.zeros(shape, dtype=np.intp)
    valid = np.ones(shape, dtype=bool)
    for part, window in plan:
        x0, y0, cw, ch = part
        gx, gy = map_rows(mapping, part)
        index[y0 : y0 + ch, x0 : x0 + cw], valid[y0 : y0 + ch, x0 : x0 + cw] = pixels(
            mapping, part, window, gx, gy, width
        )
    return data.reshape(-1).take(index), None if valid.all() else valid
