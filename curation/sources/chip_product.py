"""Chip-based label products: a folder of per-field label rasters plus per-band Sentinel-2 files, paired by id.

South Africa Crop Type and AgriFieldNet ship one small label raster per field (or tile) and, beside it, one GeoTIFF
per Sentinel-2 band on the same grid. A chip is one such label raster; its id follows the original study's chip
file names (`<year>_<field>`). Labels are returned as stored when asked on their own grid and warped with nearest
resampling otherwise; images are assembled into the study's 13-band file order with the bands the product lacks
(B10) zero-filled.
"""

from __future__ import annotations

import difflib
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.errors import RasterioIOError

from curation.core.errors import SourceError
from curation.core.geotiff import write_geotiff
from curation.sources.base import ChipGrid, LabelSource, format_bounds
from curation.sources.raster import RasterFile, open_raster_file, warp_window

S2_FILE_ORDER: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)  # fmt: skip
"""The study's band order of a 13-band Sentinel-2 chip (its file order: B01..B12, then B8A)."""

ZERO_FILLED_TAG = "CROPHARMONY_ZERO_FILLED_BANDS"
"""GeoTIFF tag listing the bands a chip lacks and carries as zeros (B10 for these products)."""


def same_grid(a: ChipGrid, b: ChipGrid) -> bool:
    """Whether two grids share CRS, shape and (to a micro-unit) transform."""
    return a.crs == b.crs and a.shape == b.shape and a.transform.almost_equals(b.transform, precision=1e-6)


def read_raster(path: Path) -> tuple[npt.NDArray[np.generic], ChipGrid]:
    """Band 1 of a GeoTIFF with its grid, with errors that name the file."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise SourceError(path, "CRS present", "the raster has no CRS", "set it (gdal_edit.py -a_srs)")
            return src.read(1), ChipGrid(src.crs, src.transform, src.width, src.height)
    except RasterioIOError as exc:
        raise SourceError(path, "readable GeoTIFF", str(exc).rstrip("."), "re-download or replace the file") from exc


class ChipProductSource(LabelSource):
    """A product of per-field label rasters and per-band Sentinel-2 GeoTIFFs sharing each label's grid."""

    ZERO_FILLED: ClassVar[tuple[str, ...]] = ("B10",)  # bands of S2_FILE_ORDER the product lacks (written as 0)
    no_data_code: ClassVar[int] = 0  # label code for chip pixels the label raster does not cover
    label_pattern: ClassVar[str]  # how label rasters are named under the root (for messages)

    def __init__(self, root: Path | str, year: int | None = None) -> None:
        super().__init__(root)
        if year is not None and year not in self.info.years:
            raise SourceError(
                self.root,
                "year covered",
                f"{self.info.name} has labels for {', '.join(map(str, self.info.years))} only, not {year}",
                "drop the year or use one of those",
            )
        self.year = year if year is not None else self.info.years[0]
        self._fields: dict[str, Path] | None = None
        self._aliases: dict[str, str] = {}
        self._headers: dict[str, RasterFile] = {}

    @classmethod
    def native_bands(cls) -> tuple[str, ...]:
        """The Sentinel-2 bands the product ships, in S2_FILE_ORDER."""
        return tuple(b for b in S2_FILE_ORDER if b not in cls.ZERO_FILLED)

    @abstractmethod
    def _label_files(self) -> list[Path]:
        """Every label raster under the root (no ordering needed)."""

    @abstractmethod
    def _field_of(self, label: Path) -> str:
        """The field key of a label raster (the part of the chip id after `<year>_`)."""

    def _extra_aliases(self, field: str) -> tuple[str, ...]:
        """Other names a caller may use for a field (besides the key and the chip id)."""
        return ()

    @abstractmethod
    def _band_files(self, field: str, date: str | None) -> tuple[Path, dict[str, Path]]:
        """The imagery folder of a field and the path of every native band in it (existing or not)."""

    def files(self) -> list[Path]:
        """Label rasters under the root, sorted (raises when none match the layout)."""
        found = sorted(p for p in self._label_files() if p.is_file())
        if not found:
            raise self._no_files(self.label_pattern)
        return found

    def fields(self) -> dict[str, Path]:
        """Field key -> label raster, read once."""
        if self._fields is None:
            self._fields = {self._field_of(p): p for p in self.files()}
            for field in self._fields:
                for alias in (field, self.chip_id(field), *self._extra_aliases(field)):
                    self._aliases.setdefault(alias, field)
        return self._fields

    def chip_id(self, field: str) -> str:
        """The study's chip id of a field: `<year>_<field>`."""
        return f"{self.year}_{field}"

    def chip_ids(self) -> list[str]:
        """Every chip id, sorted."""
        return sorted(self.chip_id(field) for field in self.fields())

    def resolve(self, chip_id: str) -> str:
        """The field key of a chip id (or of a bare field id); raises with known ids on an unknown one."""
        fields = self.fields()
        if chip_id in self._aliases:
            return self._aliases[chip_id]
        known = self.chip_ids()
        close = difflib.get_close_matches(chip_id, known, n=3) or known[:3]
        raise SourceError(
            f"chip {chip_id or '?'}",
            "known chip",
            f"no label raster for it under {self.root} ({len(fields)} chips, e.g. {', '.join(close)})",
            f"use a chip id like those, or add its label raster as {self.label_pattern}",
        )

    def label_path(self, chip_id: str) -> Path:
        """The label raster of a chip."""
        return self.fields()[self.resolve(chip_id)]

    def _header(self, field: str) -> RasterFile:
        if field not in self._headers:
            self._headers[field] = open_raster_file(self.fields()[field])
        return self._headers[field]

    def grid_of(self, chip_id: str) -> ChipGrid:
        """The label raster's own grid, with the chip id set."""
        field = self.resolve(chip_id)
        header = self._header(field)
        return ChipGrid(header.crs, header.transform, header.width, header.height, self.chip_id(field))

    def read_labels(self, grid: ChipGrid) -> npt.NDArray[np.integer]:
        """Native codes of the chip `grid.chip_id` on `grid`: as stored on its own grid, else warped (nearest)."""
        field = self.resolve(grid.chip_id)
        header = self._header(field)
        if same_grid(grid, self.grid_of(field)):
            labels, _ = read_raster(header.path)
            return labels.astype(np.dtype(header.dtype), copy=False)
        warped = warp_window(header, grid)
        if warped is None or (warped < 0).all():
            raise SourceError(
                f"chip {self.chip_id(field)}",
                "inside product",
                f"its bounds {format_bounds(grid.bounds)} in {grid.crs.to_string()} lie outside its label raster "
                f"{header.path.name} {format_bounds(header.bounds)} in {header.crs.to_string()}",
                "read the chip on the label's own grid (grid_of) or on a grid that overlaps it",
            )
        warped[warped < 0] = self.no_data_code
        return warped.astype(np.dtype(header.dtype))

    def image_date(self, chip_id: str, month: int | None) -> str | None:
        """The imagery date to read for a chip in `month` (None: the product's default choice).

        Products with a single image per chip have no dates, so asking for a month is an error.
        """
        if month is not None:
            raise SourceError(
                f"chip {self.grid_of(chip_id).chip_id}",
                "month",
                f"{self.info.name} has one image per chip, so no month {month} to choose",
                "set the source's month to null in params",
            )
        return None

    def read_image(self, chip_id: str, date: str | None = None) -> tuple[npt.NDArray[np.uint16], ChipGrid]:
        """The 13-band uint16 stack in S2_FILE_ORDER (ZERO_FILLED bands all 0) on the label's grid."""
        field = self.resolve(chip_id)
        grid = self.grid_of(field)
        folder, paths = self._band_files(field, date)
        missing = [band for band, path in paths.items() if not path.is_file()]
        if missing:
            raise SourceError(
                folder,
                "band files present",
                f"missing {', '.join(missing)} of chip {grid.chip_id}",
                "add the band files or re-download the field's imagery",
            )
        stack = np.zeros((len(S2_FILE_ORDER), grid.height, grid.width), dtype=np.uint16)
        for band, path in paths.items():
            data, band_grid = read_raster(path)
            if not same_grid(band_grid, grid):
                raise SourceError(
                    path,
                    "same grid as label",
                    f"the band is {_describe(band_grid)} but the label {self.fields()[field].name} is "
                    f"{_describe(grid)}",
                    "use the band file of this field",
                )
            stack[S2_FILE_ORDER.index(band)] = _as_uint16(data, path)
        return stack, grid

    def write_image(self, chip_id: str, path: Path, date: str | None = None) -> ChipGrid:
        """Write the chip's 13-band image (S2_FILE_ORDER, band names as descriptions) atomically; returns its grid."""
        stack, grid = self.read_image(chip_id, date)
        tags = {ZERO_FILLED_TAG: ",".join(self.ZERO_FILLED), "CROPHARMONY_SOURCE": self.info.name}
        write_geotiff(Path(path), stack, grid.crs, grid.transform, S2_FILE_ORDER, tags)
        return grid


def _as_uint16(data: npt.NDArray[np.generic], path: Path) -> npt.NDArray[np.uint16]:
    """Band values as uint16, refusing values that do not fit (floats, negatives, > 65535)."""
    if data.dtype in (np.uint8, np.uint16):
        return data.astype(np.uint16, copy=False)
    if np.issubdtype(data.dtype, np.integer) and (
        data.size == 0 or (int(data.min()) >= 0 and int(data.max()) <= np.iinfo(np.uint16).max)
    ):
        return data.astype(np.uint16)
    raise SourceError(
        path,
        "uint16 reflectance",
        f"band dtype {data.dtype} does not hold integers in 0..65535",
        "use the product's original Sentinel-2 band file",
    )


def _describe(grid: ChipGrid) -> str:
    """A grid in a few words for messages: size, origin and CRS."""
    return (
        f"{grid.width}x{grid.height} px at ({grid.transform.c:.6g}, {grid.transform.f:.6g}) in {grid.crs.to_string()}"
    )
