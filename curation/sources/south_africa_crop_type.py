"""South Africa Crop Type (Western Cape, 2017): per-field label rasters with Sentinel-2 time series per field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS

from curation.sources.base import SourceError, SourceInfo
from curation.sources.chip_product import S2_FILE_ORDER, ChipProductSource, check_field_arrays, write_geotiff

FIELD_RE = re.compile(r"^\d+$")  # torchgeo: (?P<field_id>\d+)
DATE_RE = re.compile(r"^\d{4}_\d{2}_\d{2}$")  # torchgeo: date_format '%Y_%m_%d'


def _labels_dir(root: Path) -> Path:
    return root / "train" / "labels"


def _field_dir(root: Path, field: str) -> Path:
    return root / "train" / "imagery" / "s2" / field


def _band_path(root: Path, field: str, date: str, band: str) -> Path:
    return _field_dir(root, field) / date / f"{field}_{date}_{band}_10m.tif"


def _normalize_date(date: str) -> str:
    """`2017-04-01` or `2017_04_01` -> `2017_04_01` (the product's folder names)."""
    text = date.strip().replace("-", "_")
    if not DATE_RE.match(text):
        raise SourceError(f"date {date!r}: date format: expected YYYY_MM_DD (e.g. 2017_04_01). Fix: write it so")
    return text


class SouthAfricaCropType(ChipProductSource):
    """torchgeo layout: `<root>/train/labels/<field>.tif`, imagery `<root>/train/imagery/s2/<field>/<date>/...`."""

    info: ClassVar[SourceInfo] = SourceInfo(
        name="south_africa_crop_type",
        title="South Africa Crop Type Competition",
        region="Western Cape, South Africa",
        continent="Africa",
        years=(2017,),
        licence="CC BY 4.0",
        citation="Western Cape Department of Agriculture, Radiant Earth Foundation (2021). Crop Type Classification "
        "Dataset for Western Cape, South Africa (South Africa Crop Type Competition), Version 1.0, Radiant MLHub.",
        doi="10.34911/rdnt.j0co8q",
        kind="chips",
        layout="<root>/train/labels/<field_id>.tif with Sentinel-2 bands "
        "<root>/train/imagery/s2/<field_id>/<YYYY_MM_DD>/<field_id>_<YYYY_MM_DD>_<band>_10m.tif",
        study_name="sact_2017",
    )
    label_pattern = "train/labels/<field_id>.tif (digits)"

    def _label_files(self) -> list[Path]:
        return [p for p in _labels_dir(self.root).glob("*.tif") if FIELD_RE.match(p.stem)]

    def _field_of(self, label: Path) -> str:
        return label.stem

    def dates(self, chip_id: str) -> list[str]:
        """The imagery dates (YYYY_MM_DD folders) of a chip, earliest first."""
        folder = _field_dir(self.root, self.resolve(chip_id))
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and DATE_RE.match(p.name))

    def image_date(self, chip_id: str, month: int | None) -> str | None:
        """The first date (of `month`, when given) with all bands: torchgeo reads July only, so params can ask."""
        return self._complete_date(self.resolve(chip_id), month)

    def _complete_date(self, field: str, month: int | None) -> str:
        bands = self.native_bands()
        dates = [d for d in self.dates(field) if month is None or int(d[5:7]) == month]
        gaps: list[str] = []
        for day in dates:
            missing = [b for b in bands if not _band_path(self.root, field, day, b).is_file()]
            if not missing:
                return day
            gaps.append(f"{day} lacks {', '.join(missing)}")
        within = f" in month {month}" if month is not None else ""
        detail = "; ".join(gaps) if gaps else f"no YYYY_MM_DD date folders{within}"
        raise SourceError(
            f"{_field_dir(self.root, field)}: complete Sentinel-2 date: no date{within} has all {len(bands)} bands "
            f"({detail}). Fix: add the missing band files, re-download the field's s2 imagery or choose another month"
        )

    def _band_files(self, field: str, date: str | None) -> tuple[Path, dict[str, Path]]:
        bands = self.native_bands()
        day = _normalize_date(date) if date is not None else self._complete_date(field, None)
        return _field_dir(self.root, field) / day, {b: _band_path(self.root, field, day, b) for b in bands}


def write_field(
    root: Path,
    field_id: str,
    date: str,
    labels: npt.NDArray[np.uint8],
    image: npt.NDArray[np.uint16],
    crs: CRS | str | int,
    transform: Affine,
) -> None:
    """Write one field in the native layout: its label raster and the 12 band files of one date (B10 dropped).

    Args:
        root: the product root (created when missing).
        field_id: digits, as in the product (e.g. "2199").
        date: the imagery date, YYYY_MM_DD or YYYY-MM-DD.
        labels: (H, W) uint8 class codes 0..9.
        image: (13, H, W) uint16 in S2_FILE_ORDER; the B10 plane is not written.
        crs: the field's CRS (a UTM zone in the product).
        transform: the field's affine transform (10 m pixels in the product).
    """
    if not FIELD_RE.match(field_id):
        raise SourceError(f"field {field_id!r}: field id: the product's field ids are digits. Fix: use e.g. '2199'")
    day = _normalize_date(date)
    check_field_arrays(labels, image, field_id)
    write_geotiff(_labels_dir(root) / f"{field_id}.tif", labels.astype(np.uint8), crs, transform)
    for band in SouthAfricaCropType.native_bands():
        plane = image[S2_FILE_ORDER.index(band)].astype(np.uint16)
        write_geotiff(_band_path(root, field_id, day, band), plane, crs, transform)
