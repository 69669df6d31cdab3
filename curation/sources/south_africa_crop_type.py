"""South Africa Crop Type (Western Cape, 2017): per-field label rasters with Sentinel-2 time series per field."""

from __future__ import annotations

import re
from pathlib import Path

from curation.core.errors import SourceError
from curation.sources.chip_product import ChipProductSource
from curation.sources.files import any_case

FIELD_RE = re.compile(r"^\d+$")  # torchgeo: (?P<field_id>\d+)
DATE_RE = re.compile(r"^\d{4}_\d{2}_\d{2}$")  # torchgeo: date_format '%Y_%m_%d'


def labels_dir(root: Path) -> Path:
    """Where the product keeps this file (the readers look here, the demo writers write here)."""
    return root / "train" / "labels"


def field_dir(root: Path, field: str) -> Path:
    """Where the product keeps this file (the readers look here, the demo writers write here)."""
    return root / "train" / "imagery" / "s2" / field


def band_path(root: Path, field: str, date: str, band: str) -> Path:
    """Where the product keeps this file (the readers look here, the demo writers write here)."""
    return field_dir(root, field) / date / f"{field}_{date}_{band}_10m.tif"


def normalize_date(date: str) -> str:
    """`2017-04-01` or `2017_04_01` -> `2017_04_01` (the product's folder names)."""
    text = date.strip().replace("-", "_")
    if not DATE_RE.match(text):
        raise SourceError(f"date {date!r}", "date format", "expected YYYY_MM_DD (e.g. 2017_04_01)", "write it so")
    return text


class SouthAfricaCropType(ChipProductSource):
    """torchgeo layout: `<root>/train/labels/<field>.tif`, imagery `<root>/train/imagery/s2/<field>/<date>/...`."""

    name = "south_africa_crop_type"
    label_pattern = "train/labels/<field_id>.tif (digits)"

    def _label_files(self) -> list[Path]:
        return [p for p in labels_dir(self.root).glob(any_case("*.tif")) if FIELD_RE.match(p.stem)]

    def label_dirs(self) -> list[Path]:
        """`train/labels/` (the test split has no labels)."""
        return [labels_dir(self.root)]

    def _field_of(self, label: Path) -> str:
        return label.stem

    def dates(self, chip_id: str) -> list[str]:
        """The imagery dates (YYYY_MM_DD folders) of a chip, earliest first."""
        folder = field_dir(self.root, self.resolve(chip_id))
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
            missing = [b for b in bands if not band_path(self.root, field, day, b).is_file()]
            if not missing:
                return day
            gaps.append(f"{day} lacks {', '.join(missing)}")
        within = f" in month {month}" if month is not None else ""
        detail = "; ".join(gaps) if gaps else f"no YYYY_MM_DD date folders{within}"
        raise SourceError(
            field_dir(self.root, field),
            "complete Sentinel-2 date",
            f"no date{within} has all {len(bands)} bands ({detail})",
            "add the missing band files, re-download the field's s2 imagery or choose another month",
        )

    def _band_files(self, field: str, date: str | None) -> tuple[Path, dict[str, Path]]:
        bands = self.native_bands()
        day = normalize_date(date) if date is not None else self._complete_date(field, None)
        return field_dir(self.root, field) / day, {b: band_path(self.root, field, day, b) for b in bands}
