"""Chip-based label products: a folder of per-field label rasters plus per-band Sentinel-2 files, paired by id.

South Africa Crop Type and AgriFieldNet ship one small label raster per field (or tile) and, beside it, one GeoTIFF
per Sentinel-2 band on the same grid. Two ways to pair them with imagery:

- **The product's own imagery** (`shared.sources.<name>.images: null`): a chip is one label raster; its id follows
  the original study's chip file names (`<year>_<field>`). Labels are returned as stored when asked on their own grid
  and warped with nearest resampling otherwise (`read_labels`); images are assembled into the study's 13-band file
  order with the bands the product lacks (B10) zero-filled.
- **A folder of 13-band chips** (`images: <folder>`, the study's `sentinel2_sact_2017_subsampled`, with a real B10):
  each chip's labels are cut from the product on the chip's own grid (`cut_labels`), as torchgeo's intersection of
  the chips with the label rasters gave them to the study: nearest resampling, every label raster under the chip
  mosaicked (the field its id names first, then the others by field id), pixels no label raster covers set to
  `no_data_code` and counted, and a chip no label raster touches refused by name.
"""

from __future__ import annotations

import difflib
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from curation.core.errors import SourceError
from curation.core.geotiff import write_geotiff
from curation.sources.base import Bounds, ChipGrid, LabelSource, format_bounds, intersects
from curation.sources.raster import RasterFile, open_raster_file, sample, under, warp_window

S2_FILE_ORDER: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)  # fmt: skip
"""The study's band order of a 13-band Sentinel-2 chip (its file order: B01..B12, then B8A)."""

ZERO_FILLED_TAG = "CROPHARMONY_ZERO_FILLED_BANDS"
"""GeoTIFF tag listing the bands a chip lacks and carries as zeros (B10 for these products)."""

LONLAT = CRS.from_epsg(4326)
BOX_MARGIN = 1e-3  # degrees (about 100 m) added around a chip's lon/lat box: the box only picks rasters to read
OUTSIDE_RULE = "inside product labels"
"""The rule of a chip (partly or wholly) outside every label raster of a chip product."""


@dataclass(frozen=True)
class LabelCut:
    """Native codes cut on an image chip's grid, and how many of its pixels no label raster covers."""

    codes: npt.NDArray[np.integer]
    outside: int = 0  # pixels set to the product's no-data code because no label raster lies under them

    @property
    def outside_share(self) -> float:
        """Share of the chip's pixels no label raster covers."""
        return self.outside / max(int(self.codes.size), 1)


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

    cache_windows = False  # a chip's labels are one small raster of its own: reading it is the cheap part
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
        self._boxes: list[tuple[Bounds, str]] | None = None  # each label raster's lon/lat box, by field key

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

    @abstractmethod
    def label_dirs(self) -> list[Path]:
        """The folders holding the label rasters: what `unused_files` accounts for (the imagery is not scanned)."""

    def scan_roots(self) -> list[Path]:
        """Only the label folders: the per-band imagery is checked chip by chip when it is read."""
        return self.label_dirs()

    def is_companion(self, path: Path) -> bool:
        """The field-id rasters both products ship beside their labels (`*_field_ids.tif`): not labels, by design."""
        return path.stem.endswith("_field_ids")

    def unused_reason(self, path: Path) -> tuple[str, str]:
        """Not a label raster of the layout."""
        return (
            f"not a {self.info.title} label raster (the reader reads {self.label_pattern})",
            f"remove it, or name it as the layout expects: {self.label_pattern}",
        )

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

    # ------------------------------------------------------------ labels of a folder of 13-band chips

    def cut_labels(self, grid: ChipGrid) -> LabelCut:
        """Native codes on an image chip's grid, cut from the product's label rasters with nearest resampling.

        The field the chip id names (the study's `<year>_<field>`), when it names one, is read first; the other label
        rasters under the chip fill what it leaves, in field-id order (a header index built on first need, so a chip
        its own field covers costs one windowed read). Pixels no label raster covers get `no_data_code` and are
        counted in `outside`; a chip no label raster touches is refused, naming its bounds and the product's.
        """
        mosaic: npt.NDArray[np.int64] | None = None
        dtype: str | None = None
        for field in self._fields_under(grid):
            header = self._header(field)
            got = sample(header, grid)
            if got is None:
                continue
            codes, valid = got
            if mosaic is None and valid is None:
                return LabelCut(codes.astype(np.dtype(header.dtype), copy=False))
            dtype = dtype or header.dtype
            mosaic = under(mosaic, codes, valid)
            if not (mosaic < 0).any():
                break
        if mosaic is None or dtype is None or (mosaic < 0).all():
            raise self._outside(grid)
        uncovered = mosaic < 0
        mosaic[uncovered] = self.no_data_code
        return LabelCut(mosaic.astype(np.dtype(dtype)), int(uncovered.sum()))

    def _fields_under(self, grid: ChipGrid) -> Iterator[str]:
        """The field the chip id names (if any), then every other label raster whose lon/lat box meets the chip's."""
        self.fields()
        own = self._aliases.get(grid.chip_id)
        if own is not None:
            yield own
        minx, miny, maxx, maxy = grid.bounds_in(LONLAT)
        box = (minx - BOX_MARGIN, miny - BOX_MARGIN, maxx + BOX_MARGIN, maxy + BOX_MARGIN)
        for other_box, field in self.label_boxes():
            if field != own and intersects(box, other_box):
                yield field

    def label_boxes(self) -> list[tuple[Bounds, str]]:
        """Every label raster's bounds in lon/lat (densified edges) with its field key, in field-id order; read once."""
        if self._boxes is None:
            boxes = []
            for field in sorted(self.fields()):
                header = self._header(field)
                grid = ChipGrid(header.crs, header.transform, header.width, header.height)
                boxes.append((grid.bounds_in(LONLAT), field))
            self._boxes = boxes
        return self._boxes

    def _outside(self, grid: ChipGrid) -> SourceError:
        boxes = self.label_boxes()
        span = (
            min(b[0] for b, _ in boxes), min(b[1] for b, _ in boxes),
            max(b[2] for b, _ in boxes), max(b[3] for b, _ in boxes),
        )  # fmt: skip
        own = self._aliases.get(grid.chip_id)
        named = ""
        if own is not None:
            header = self._header(own)
            named = (
                f"; its id names {header.path.name}, which lies at {format_bounds(header.bounds)} in "
                f"{header.crs.to_string()}"
            )
        return SourceError(
            f"chip {grid.chip_id or '?'}",
            OUTSIDE_RULE,
            f"its bounds {format_bounds(grid.bounds)} in {grid.crs.to_string()} (lon/lat "
            f"{format_bounds(grid.bounds_in(LONLAT))}) touch none of the {len(boxes)} label rasters of "
            f"{self.info.name} under {self.root} (lon/lat {format_bounds(span)}){named}",
            "check the chip's georeference (its CRS and transform), or move the chip out of the image folder: "
            "its labels are cut from the product where the chip lies",
        )

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

    def band_paths(self, chip_id: str, date: str | None = None) -> tuple[dict[str, Path], ChipGrid]:
        """Every native band's file of the chip (all present, or an error naming the missing ones), and its grid."""
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
        return paths, grid

    def read_image(self, chip_id: str, date: str | None = None) -> tuple[npt.NDArray[np.uint16], ChipGrid]:
        """The 13-band uint16 stack in S2_FILE_ORDER (ZERO_FILLED bands all 0) on the label's grid.

        Each band file must lie on the label's grid and hold values that fit uint16: what lets a VRT over the band
        files (`curation.core.vrt`) stand for this stack.
        """
        field = self.resolve(chip_id)
        paths, grid = self.band_paths(chip_id, date)
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
