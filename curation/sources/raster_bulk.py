"""The common chip in a few array passes: one region inside the source window, every row a straight line.

Nearly every chip is this case, and for it GDAL's nearest warp comes down to one floor per coordinate per pixel:
source pixel (int(y + 1e-10), int(x + 1e-10)) of the row's line at each pixel. Those floors, over the whole chip,
cost more than all of GDAL's other steps, so they are taken in about eight passes over (h, w) arrays.

In one CRS with a north-up chip the floors are GDAL's arithmetic on one row and one column (`separable_index`).

Across CRSs (`across`) the lines come from pyproj and interpolation, about 1e-9 px from GDAL's (its PROJ build
differs in the last bits), so a floor is GDAL's only where the coordinate is not within RISK of a pixel edge.
`floor_index` lays out the rows' lines with one matrix product per coordinate, each value written as
FIXED + (v - 0.5) with v = x + 1e-10 + RISK: FIXED's binade holds it to 2**-32 px (about 2e-10 px off at most, far
inside RISK) with its fraction in the low 32 bits, so x + 1e-10 lies within RISK of an integer exactly where that
fraction lies within 2 RISK above one half, one comparison over a 32-bit view. Adding MAGIC - FIXED then rounds to
rint(v - 0.5) = floor(v), held in the low bits of the 64-bit view, from which one multiply and two adds give the
flat index. A row with a coordinate near an edge is mapped again through GDAL's own CRS transformation.
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from curation.sources.raster_warp import (
    FLOOR_EPS,
    MAX_ERROR,
    NODE_TOLERANCE,
    NODES,
    ROUNDING,
    Floats,
    Indices,
    Lines,
    Mapping,
    NotReproducible,
    Project,
    SrcWindow,
    box_window,
    chebyshev,
    line_points,
    map_rows,
    memory_check,
    splits,
)

RISK = 2e-8  # bulk coordinates are this close to GDAL's (PROJ builds and interpolation: about 1e-9 px)
FIXED = 1.5 * 2.0**20  # FIXED + v for |v| < 2**19 keeps v to 2**-32 px, its fraction in the low 32 bits
MAGIC = 1.5 * 2.0**52  # MAGIC + v for |v| < 2**51 keeps rint(v) in the low bits of its 64-bit view
MAGIC_BITS = int(np.float64(MAGIC).view(np.int64))
TO_MAGIC = MAGIC - FIXED  # an integer, exact: (FIXED + v) + TO_MAGIC = MAGIC + rint(v)
LIMIT = 2**18  # source windows up to this many pixels a side (FIXED's range, with room)
LOW = 0 if sys.byteorder == "little" else 1  # the low 32-bit half of a 64-bit word, in a 32-bit view
HALF = -(2**31)  # a fraction of one half, in a low 32-bit half seen as int32


def inside(lo: list[float], hi: list[float], src: SrcWindow) -> bool:
    """Whether every (straight) row lies inside the source window, with room for rounding: its ends do.

    `lo`, `hi`: the least and greatest x and y of the rows' ends.
    """
    xo, yo, xs, ys = src
    return (
        lo[0] >= xo + ROUNDING
        and lo[1] >= yo + ROUNDING
        and hi[0] + FLOOR_EPS < xo + xs - ROUNDING
        and hi[1] + FLOOR_EPS < yo + ys - ROUNDING
    )


def separable_index(lines: Lines, w: int, width: int) -> Indices | None:
    """In one CRS, a north-up chip's flat window indices: GDAL's arithmetic on one row and one column.

    None where the chip is not north-up on the source (its rows differ).
    """
    x_0, dx, y_0, dy = lines
    if dy.any() or (x_0 != x_0[0]).any() or (dx != dx[0]).any():
        return None
    dist = np.arange(w, dtype=np.float64)
    cols = (dx[0] * dist + x_0[0] + FLOOR_EPS).astype(np.intp)
    rows = (y_0 + FLOOR_EPS).astype(np.intp)
    separable: Indices = np.add.outer(rows * width, cols)
    return separable


@dataclass
class _Work:
    """One thread's work arrays for chips of one shape: fresh ones cost more in page faults than the work."""

    basis: Floats  # (2, w): the pixel offsets along a row, and ones
    coef: Floats  # (2, h, 2): each row's step and start, x then y
    g: Floats  # (h, w): one coordinate of every pixel
    index: Indices  # (h, w)


class _Scratch(threading.local):
    """Work arrays of this thread, by chip shape."""

    def __init__(self) -> None:
        self.work: dict[tuple[int, int], _Work] = {}

    def get(self, h: int, w: int) -> _Work:
        work = self.work.get((h, w))
        if work is None:
            if len(self.work) > 4:
                self.work.clear()
            basis = np.stack([np.arange(w, dtype=np.float64), np.ones(w)])
            work = _Work(basis, np.empty((2, h, 2)), np.empty((h, w)), np.empty((h, w), dtype=np.intp))
            self.work[(h, w)] = work
        return work


_SCRATCH = _Scratch()


def floor_index(start: Floats, step: Floats, w: int, width: int) -> tuple[Indices, npt.NDArray[np.bool_] | None]:
    """Flat window indices of int(start + step * j + 1e-10), j < w, on each row, and the rows near a pixel edge.

    `start`, `step`: (2, h) arrays, x then y, the coordinates within [0, LIMIT). A row is returned as near (None:
    no row is) where some coordinate + 1e-10 lies within RISK of an integer (give or take 2**-31 px): there, and
    only there, its floor may differ from that of a coordinate RISK away, GDAL's. The indices live in this
    thread's scratch memory: use them before the next call in this thread.
    """
    h = start.shape[1]
    work = _SCRATCH.get(h, w)
    coef, g, index = work.coef, work.g, work.index
    coef[:, :, 0] = step
    np.add(start, FLOOR_EPS + RISK - 0.5, out=coef[:, :, 1])
    coef[:, :, 1] += FIXED
    threshold = min(HALF + math.ceil(2 * RISK * 2.0**32), 2**31 - 1)
    near = None
    for axis in (1, 0):  # y, then x into the same array: half the memory, more of it in cache
        np.matmul(coef[axis], work.basis, out=g)  # a 256 px chip's product stays under OpenBLAS's thread threshold
        words = g.view(np.int32)  # the high halves are near FIXED's, over 2**30: never under the threshold
        if int(words.min()) < threshold:
            rows = np.asarray((words[:, LOW::2] < threshold).any(axis=1), dtype=np.bool_)
            near = rows if near is None else near | rows
        g += TO_MAGIC
        bits = g.view(np.intp)
        if axis == 1:
            np.multiply(bits, width, out=index)  # wraps modulo 2**64, and so does the bias taken off below
        else:
            index += bits
    index -= np.intp((MAGIC_BITS * (width + 1) + 2**63) % 2**64 - 2**63)
    return index, near


@lru_cache(maxsize=64)
def _points(w: int, h: int) -> tuple[Floats, int]:
    """The chip's points `across` maps, as rows (x, y, 1): three columns at the node and check rows, the edges."""
    px, py, m = line_points((0.5, (w - 1) // 2 + 0.5, w - 0.5), 0.5, h, True, (0, 0, w, h))
    points = np.stack([px, py, np.ones_like(px)])
    points.setflags(write=False)
    return points, m


def across(
    data: npt.NDArray[np.generic], mapping: Mapping, exact: Project | None, shape: tuple[int, int]
) -> npt.NDArray[np.generic] | None:
    """`nearest` across CRSs for a chip inside the source window with straight rows; None where it is not one.

    The steps and decisions of `Mapping.lines`, `chunks`, `row_lines` and `inside`, on the same numbers, in few
    calls: one product for the chip's affine, one PROJ call for every point, one product for the interpolation.
    """
    h, w = shape
    height, width = data.shape
    project = mapping.project
    if project is None or h <= 2 * NODES or w <= 5 or max(width, height) > LIMIT:
        return None
    points, m = _points(w, h)
    a, b, c, d, e, f = mapping.g
    geo = np.array(((a, b, c), (d, e, f))) @ points  # (2, n): x, y
    x, y = project(geo[0], geo[1])
    geo[0], geo[1] = x, y  # in place already when PROJ wrote into them
    if not math.isfinite(float(geo.sum())):  # a sum of finite coordinates stays finite
        raise NotReproducible("the CRS transformation fails on some chip pixels")
    inv0, inv1, inv3, inv5 = mapping.inv
    geo[0] *= inv1
    geo[0] += inv0
    geo[1] *= inv5
    geo[1] += inv3
    weights, checks = chebyshev(h)
    columns = geo[:, :m].reshape(2, NODES + 2, 3)  # x, y; node rows then check rows; first, middle, last centre
    values = weights @ columns[:, :NODES]  # (2, h, 3): every row's first, middle and last centre
    miss = values[:, checks] - columns[:, NODES:]
    if max(float(miss.max()), -float(miss.min())) > NODE_TOLERANCE:
        raise NotReproducible("the chip's columns are too curved to interpolate")
    edges = geo[:, m:]
    lo, hi = edges.min(axis=1).tolist(), edges.max(axis=1).tolist()
    region = (0, 0, w, h)
    src, ratio = box_window((lo[0], hi[0], lo[1], hi[1]), width, height, mapping.rounding)
    memory_check(src, region)
    if splits(ratio, region):
        return None
    first = values[..., 0]
    step = values[..., 2] - first
    step /= float(w - 1)
    err = np.abs(first + step * float((w - 1) // 2) - values[..., 1]).sum(axis=0)  # GDALApproxTransform's test
    if float(err.max()) > MAX_ERROR - mapping.rounding:  # some row is halved, or within rounding of it
        if float(np.abs(err - MAX_ERROR).min()) < mapping.rounding:
            raise NotReproducible("a row's interpolation test is within rounding of GDAL's threshold")
        return None
    last = values[..., 2]
    if not inside(np.minimum(first, last).min(axis=1).tolist(), np.maximum(first, last).max(axis=1).tolist(), src):
        return None
    index, near = floor_index(first, step, w, width)
    if near is not None:
        again = Mapping(mapping.dst, mapping.src, exact if exact is not None else project)
        for r in np.flatnonzero(near).tolist():
            rx, ry = map_rows(again, (0, r, w, 1))
            index[r] = (ry[0] + FLOOR_EPS).astype(np.intp) * width + (rx[0] + FLOOR_EPS).astype(np.intp)
    return data.reshape(-1).take(index, mode="clip")  # inside the window: no index to clip
