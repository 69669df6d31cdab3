"""Raster label products (CDL, NCCM, South America Soybean): windowed, warped reads onto a chip grid."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.warp import reproject
from rasterio.windows import Window, from_bounds

from curation.core.errors import SourceError
from curation.sources.base import Bounds, ChipGrid, LabelSource, format_bounds, intersects

PAD = 2  # source pixels added around a window so nearest-neighbour edges match a full-raster warp


@dataclass(frozen=True)
class RasterFile:
    """What a read needs to know about one product file, gathered once."""

    path: Path
    crs: CRS
    transform: Affine
    width: int
    height: int
    bounds: Bounds
    dtype: str


def open_raster_file(path: Path) -> RasterFile:
    """Read a product file's header, with errors that name the file."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise SourceError(path, "CRS present", "the label raster has no CRS", "set it (gdal_edit.py -a_srs)")
            b = src.bounds
            return RasterFile(
                path, src.crs, src.transform, src.width, src.height, (b.left, b.bottom, b.right, b.top), src.dtypes[0]
            )
    except RasterioIOError as exc:
        raise SourceError(path, "readable GeoTIFF", str(exc), "re-download or replace the file") from exc


def warp_window(file: RasterFile, grid: ChipGrid) -> npt.NDArray[np.int64] | None:
    """Read only the window of `file` under `grid` and warp it with nearest resampling.

    Returns int64 codes with -1 where the file does not cover the grid, or None when it does not touch it.
    """
    box = grid.bounds_in(file.crs)
    if not intersects(box, file.bounds):
        return None
    window = from_bounds(*box, transform=file.transform)
    col0 = max(int(np.floor(window.col_off)) - PAD, 0)
    row0 = max(int(np.floor(window.row_off)) - PAD, 0)
    col1 = min(int(np.ceil(window.col_off + window.width)) + PAD, file.width)
    row1 = min(int(np.ceil(window.row_off + window.height)) + PAD, file.height)
    if col1 <= col0 or row1 <= row0:
        return None
    window = Window(col0, row0, col1 - col0, row1 - row0)
    try:
        with rasterio.open(file.path) as src:
            data = src.read(1, window=window)
            window_transform = src.window_transform(window)
    except RasterioIOError as exc:
        raise SourceError(file.path, "readable GeoTIFF", str(exc), "re-download or replace the file") from exc
    out = np.full(grid.shape, -1, dtype=np.int64)
    reproject(
        data.astype(np.int64),
        out,
        src_transform=window_transform,
        src_crs=file.crs,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        resampling=Resampling.nearest,
        src_nodata=None,
        dst_nodata=-1,
        init_dest_nodata=False,
    )
    return out


class RasterLabelSource(LabelSource):
    """A product of one or more GeoTIFFs of one year; several files (tiles) are mosaicked, first file first."""

    patterns: ClassVar[tuple[str, ...]]  # file-name globs with {year}, searched recursively like torchgeo
    year_regex: ClassVar[str]  # pulls the year out of a file name
    fill_code: ClassVar[int]  # code for chip pixels beyond the product's edge (ignore in the crosswalks)

    def __init__(self, root: Path | str, year: int | None = None) -> None:
        super().__init__(root, year)
        self._index: list[RasterFile] | None = None

    def _globs(self) -> list[str]:
        year = "*" if self.year is None else str(self.year)
        return [p.format(year=year) for p in self.patterns]

    def files(self) -> Sequence[Path]:
        """Product files under the root, sorted, searched recursively like torchgeo."""
        found = sorted({p for pattern in self._globs() for p in self.root.rglob(pattern) if p.is_file()})
        if not found:
            raise self._no_files(" or ".join(f"**/{g}" for g in self._globs()))
        years = sorted({m.group(1) for p in found if (m := re.search(self.year_regex, p.name))})
        if self.year is None and len(years) > 1:
            raise SourceError(
                self.root,
                "one year per read",
                f"{self.info.name} files of {', '.join(years)} lie under the root",
                "pass the chip's year (year=...) so labels of different years are never mosaicked",
            )
        return found

    def index(self) -> list[RasterFile]:
        """Headers of every product file, read once."""
        if self._index is None:
            self._index = [open_raster_file(p) for p in self.files()]
        return self._index

    def read_labels(self, grid: ChipGrid) -> npt.NDArray[np.integer]:
        """Native codes on `grid`; pixels beyond the product's edge get `fill_code`."""
        index = self.index()
        mosaic: npt.NDArray[np.int64] | None = None
        for file in index:
            warped = warp_window(file, grid)
            if warped is None:
                continue
            if mosaic is None:
                mosaic = warped
            else:
                empty = mosaic < 0
                mosaic[empty] = warped[empty]
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
