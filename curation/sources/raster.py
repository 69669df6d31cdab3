"""Raster label products (CDL, NCCM, South America Soybean): windowed reads onto a chip grid, nearest resampling.

A chip reads only the window of the product under it (plus PAD pixels) through a dataset handle kept open per
process and thread, and takes for each of its pixels the product pixel GDAL's nearest warp would take
(`curation.sources.raster_grid`), without GDAL's per-chip warp set-up. `warp_window_gdal`, the read as it was
(reopen the file, `rasterio.warp.reproject`), stays as the reference the tests hold the fast read to, and as the
fallback where GDAL's steps cannot be repeated with certainty.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.warp import reproject
from rasterio.warp import transform as gdal_transform
from rasterio.windows import Window

from curation.core.errors import SourceError
from curation.sources.base import ChipGrid, LabelSource, format_bounds
from curation.sources.files import find
from curation.sources.raster_grid import (
    PAD,
    NotReproducible,
    Project,
    RasterFile,
    chip_box,
    crs_pair,
    gdal_box,
    nearest,
    padded_window,
    projections_agree,
    window_affine,
)

__all__ = ["PAD", "RasterFile", "RasterLabelSource", "open_raster_file", "sample", "warp_window", "warp_window_gdal"]
MAX_HANDLES = 32  # open datasets kept per process and thread (least recently used closed first)
_TOKENS = itertools.count(1)


class _Handles(threading.local):
    """Open datasets of this thread, by (path, token); `pid` tells a forked child from the process that forked it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.open: OrderedDict[tuple[str, int], DatasetReader] = OrderedDict()


_HANDLES = _Handles()
_INHERITED: list[object] = []  # a parent's handles met after a fork: never used, never closed (they are its)


def _handles() -> OrderedDict[tuple[str, int], DatasetReader]:
    """This process's and thread's open datasets (a fork starts with none)."""
    if _HANDLES.pid != os.getpid():
        _INHERITED.append(_HANDLES.open)
        _HANDLES.open, _HANDLES.pid = OrderedDict(), os.getpid()
    return _HANDLES.open


def _unreadable(path: Path, exc: Exception) -> SourceError:
    return SourceError(path, "readable GeoTIFF", str(exc), "re-download or replace the file")


def _keep(key: tuple[str, int], src: DatasetReader) -> None:
    handles = _handles()
    handles[key] = src
    handles.move_to_end(key)
    while len(handles) > MAX_HANDLES:
        handles.popitem(last=False)[1].close()


def open_raster_file(path: Path) -> RasterFile:
    """Read a product file's header, with errors that name the file; the handle stays open for the reads.

    Each call opens the file afresh under a new token, so a reader built after a file was replaced on disk never
    reads it through a handle opened before.
    """
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise _unreadable(path, exc) from exc
    if src.crs is None:
        src.close()
        raise SourceError(path, "CRS present", "the label raster has no CRS", "set it (gdal_edit.py -a_srs)")
    b = src.bounds
    file = RasterFile(
        path, src.crs, src.transform, src.width, src.height, (b.left, b.bottom, b.right, b.top), src.dtypes[0],
        next(_TOKENS),
    )  # fmt: skip
    _keep((str(path), file.token), src)
    return file


def dataset(file: RasterFile) -> DatasetReader:
    """The open dataset of `file` in this process and thread, opened on first use (after a fork, in a new thread)."""
    key = (str(file.path), file.token)
    handles = _handles()
    src = handles.get(key)
    if src is None:
        try:
            src = rasterio.open(file.path)
        except RasterioIOError as exc:
            raise _unreadable(file.path, exc) from exc
        _keep(key, src)
    else:
        handles.move_to_end(key)
    return src


def close_datasets() -> None:
    """Close this process's and thread's open datasets (they reopen on the next read)."""
    handles = _handles()
    while handles:
        handles.popitem()[1].close()


def read_window(file: RasterFile, window: Window) -> npt.NDArray[np.generic]:
    """Band 1 of `file` in `window`, through its open dataset."""
    src = dataset(file)
    try:
        data: npt.NDArray[np.generic] = src.read(1, window=window)
    except RasterioIOError as exc:
        _handles().pop((str(file.path), file.token), None)
        src.close()
        raise _unreadable(file.path, exc) from exc
    return data


# ---------------------------------------------------------------- reading a chip


def _reproject(file: RasterFile, data: npt.NDArray[np.generic], src: Affine, grid: ChipGrid) -> npt.NDArray[np.int64]:
    """GDAL's nearest warp of a window onto the grid: int64 codes, -1 where the window does not cover it."""
    out = np.full(grid.shape, -1, dtype=np.int64)
    reproject(
        data.astype(np.int64),
        out,
        src_transform=src,
        src_crs=file.crs,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        resampling=Resampling.nearest,
        src_nodata=None,
        dst_nodata=-1,
        init_dest_nodata=False,
    )
    return out


def warp_window_gdal(file: RasterFile, grid: ChipGrid) -> npt.NDArray[np.int64] | None:
    """The reference read: reopen the file, read the window under `grid`, warp it with `rasterio.warp.reproject`.

    Returns int64 codes with -1 where the file does not cover the grid, or None when it does not touch it. This
    was the read of every chip (about 20 ms of GDAL set-up each); `sample` gives the same pixels without it.
    """
    agree = projections_agree(grid, file.crs, file.transform)
    window = padded_window(file, grid.bounds_in(file.crs) if agree else gdal_box(grid, file.crs))
    if window is None:
        return None
    try:
        with rasterio.open(file.path) as src:
            data = src.read(1, window=window)
            src_transform = src.window_transform(window)
    except RasterioIOError as exc:
        raise _unreadable(file.path, exc) from exc
    return _reproject(file, data, src_transform, grid)


_PROJECTIONS: dict[tuple[str, str], tuple[Project | None, Project | None]] = {}


def _projections(grid: ChipGrid, crs: CRS) -> tuple[Project | None, Project | None]:
    """Chip CRS -> product CRS, fast (the cached pyproj transformer) and as GDAL does it; None, None in one CRS.

    Built once per CRS pair (by WKT, as `crs_pair`), not per chip.
    """
    key = (grid.crs.wkt, crs.wkt)
    got = _PROJECTIONS.get(key)
    if got is None:
        if len(_PROJECTIONS) > 256:
            _PROJECTIONS.clear()
        got = _PROJECTIONS[key] = _make_projections(grid.crs, crs)
    return got


def _make_projections(chip_crs: CRS, crs: CRS) -> tuple[Project | None, Project | None]:
    same, fast = crs_pair(chip_crs, crs)
    if same or fast is None:
        return None, None

    Floats = npt.NDArray[np.float64]

    def bulk(x: Floats, y: Floats) -> tuple[Floats, Floats]:
        """In place: the mapping hands PROJ fresh float64 arrays of its own."""
        tx, ty = fast.transform(x, y, inplace=True)
        return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)

    def exact(x: Floats, y: Floats) -> tuple[Floats, Floats]:
        tx, ty = gdal_transform(chip_crs, crs, np.ravel(x), np.ravel(y))
        return np.asarray(tx, dtype=np.float64).reshape(x.shape), np.asarray(ty, dtype=np.float64).reshape(y.shape)

    return bulk, exact


def under(
    mosaic: npt.NDArray[np.int64] | None, codes: npt.NDArray[np.generic], valid: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.int64]:
    """Lay one file's sampled codes under a mosaic of earlier files (-1: no value yet): the first file wins."""
    part = codes.astype(np.int64)
    if valid is not None:
        part[~valid] = -1
    if mosaic is None:
        return part
    empty = mosaic < 0
    mosaic[empty] = part[empty]
    return mosaic


def sample(file: RasterFile, grid: ChipGrid) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.bool_] | None] | None:
    """The codes of `file` on `grid` as GDAL's nearest warp gives them, and where they are (None: everywhere).

    None when the file does not touch the grid. Chips whose warp cannot be repeated with certainty (see
    `raster_grid`) are warped by GDAL itself, from the same window.
    """
    agree = projections_agree(grid, file.crs, file.transform)  # else the window and the warp are GDAL's alone
    window = padded_window(file, chip_box(grid, file.crs) if agree else gdal_box(grid, file.crs))
    if window is None:
        return None
    data = read_window(file, window)
    src = window_affine(file.transform, window)
    if data.dtype.kind in "ui" and agree:
        try:
            return nearest(data, src, grid.transform, grid.shape, *_projections(grid, file.crs))
        except NotReproducible:
            pass
    warped = _reproject(file, data, src, grid)
    valid = warped != -1  # GDAL's fill (a code of -1, in a signed product, reads as uncovered there too)
    return warped.astype(data.dtype), None if valid.all() else valid


def warp_window(file: RasterFile, grid: ChipGrid) -> npt.NDArray[np.int64] | None:
    """`warp_window_gdal`'s result (int64 codes, -1 where the file does not cover the grid) from `sample`."""
    got = sample(file, grid)
    if got is None:
        return None
    codes, valid = got
    out = codes.astype(np.int64)
    if valid is not None:
        out[~valid] = -1
    return out


class RasterLabelSource(LabelSource):
    """A product of one or more GeoTIFFs of one year; several files (tiles) are mosaicked, first file first."""

    patterns: ClassVar[tuple[str, ...]]  # file-name globs with {year}, searched recursively like torchgeo
    year_regex: ClassVar[str]  # pulls the year out of a file name
    fill_code: ClassVar[int]  # code for chip pixels beyond the product's edge (ignore in the crosswalks)

    def __init__(self, root: Path | str, year: int | None = None) -> None:
        super().__init__(root, year)
        self._index: list[RasterFile] | None = None
        self._globbed: dict[int | None, list[Path]] = {}

    def _globs(self, year: int | None = None) -> list[str]:
        """The file globs of one year (`*` for any year when None)."""
        return [p.format(year="*" if year is None else str(year)) for p in self.patterns]

    def _found(self, year: int | None) -> list[Path]:
        """Files matching the globs of `year` (any year when None), extensions in any case, sorted."""
        if year not in self._globbed:
            self._globbed[year] = sorted({p for g in self._globs(year) for p in find(self.root, g) if p.is_file()})
        return self._globbed[year]

    def year_of(self, path: Path) -> int | None:
        """The year in a product file's name (None when `year_regex` finds none)."""
        match = re.search(self.year_regex, path.name)
        return int(match.group(1)) if match else None

    def years(self) -> list[int]:
        """The years whose files lie under the root, sorted (raises when no file matches the layout).

        A read is of one year (`files`): with several years under the root, check or read each year's files with
        a reader of that year.
        """
        found = self._found(None)
        if not found:
            raise self._no_files(" or ".join(f"**/{g}" for g in self._globs()))
        return sorted({year for p in found if (year := self.year_of(p)) is not None})

    def files(self) -> Sequence[Path]:
        """Product files under the root, sorted, searched recursively like torchgeo (extensions in any case)."""
        found = self._found(self.year)
        if not found:
            raise self._no_files(" or ".join(f"**/{g}" for g in self._globs(self.year)))
        years = sorted({str(y) for p in found if (y := self.year_of(p)) is not None})
        if self.year is None and len(years) > 1:
            raise SourceError(
                self.root,
                "one year per read",
                f"{self.info.name} files of {', '.join(years)} lie under the root",
                "pass the chip's year (year=...) so labels of different years are never mosaicked",
            )
        return found

    def used_paths(self) -> set[Path]:
        """The files of the reader's year; with no year set, every year's (each read by a reader of its year)."""
        return set(self._found(self.year))

    def unused_reason(self, path: Path) -> tuple[str, str]:
        """Another year's file, a zip (never read), or not a product file."""
        year = self.year_of(path)
        if year is not None and path in self._found(None):
            return (f"a file of {year}: read only for chips of {year}", "keep it for chips of that year, or remove it")
        if path.suffix.lower() == ".zip":
            return (
                f"a zip: {self.info.title} is read from extracted GeoTIFFs only ({self.info.layout})",
                "extract it beside itself (as torchgeo does), or remove it once extracted",
            )
        return super().unused_reason(path)

    def index(self) -> list[RasterFile]:
        """Headers of every product file, read once."""
        if self._index is None:
            self._index = [open_raster_file(p) for p in self.files()]
        return self._index

    def read_labels(self, grid: ChipGrid) -> npt.NDArray[np.integer]:
        """Native codes on `grid`; pixels beyond the product's edge get `fill_code`.

        A chip the first file it touches covers whole is that file's codes: later files would fill nothing.
        """
        index = self.index()
        mosaic: npt.NDArray[np.int64] | None = None
        for file in index:
            got = sample(file, grid)
            if got is None:
                continue
            codes, valid = got
            if mosaic is None and valid is None and codes.dtype.kind == "u":
                return codes.astype(np.dtype(index[0].dtype), copy=False)
            mosaic = under(mosaic, codes, valid)
        if mosaic is None or (mosaic < 0).all():
            extents = "; ".join(f"{f.path.name} {format_bounds(f.bounds)} in {f.crs.to_string()}" for f in index)
            raise SourceError(
                f"chip {grid.chip_id or '?'}",
                "inside product",
                f"its bounds {format_bounds(grid.bounds)} in {grid.crs.to_string()} lie outside {self.info.name} "
                f"({extents})",
                "drop the chip or point the source at the product that covers it",
            )
        mosaic[mosaic < 0] = self.fill_code
        return mosaic.astype(np.dtype(index[0].dtype))
