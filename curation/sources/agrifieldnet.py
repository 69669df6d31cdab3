"""AgriFieldNet (India, 2021): per-chip label rasters with one Sentinel-2 composite per chip, paired by chip id."""

from __future__ import annotations

import re
from pathlib import Path

from curation.core.errors import SourceError
from curation.sources.chip_product import ChipProductSource
from curation.sources.files import any_case

PREFIX = "ref_agrifieldnet_competition_v1"
LABEL_PREFIX = f"{PREFIX}_labels_train_"
SOURCE_PREFIX = f"{PREFIX}_source_"
FIELD_IDS_SUFFIX = "_field_ids"  # the field-number rasters beside the labels: not class labels
ID_RE = re.compile(r"^[a-z0-9]{5}$")  # torchgeo: (?P<unique_folder_id>[a-z0-9]{5})


def label_path(root: Path, tile: str) -> Path:
    """Where the product keeps this file (the readers look here, the demo writers write here)."""
    return root / "train_labels" / f"{LABEL_PREFIX}{tile}.tif"


def source_dir(root: Path, tile: str) -> Path:
    """Where the product keeps this file (the readers look here, the demo writers write here)."""
    return root / "source" / f"{SOURCE_PREFIX}{tile}"


def band_path(root: Path, tile: str, band: str) -> Path:
    """Where the product keeps this file (the readers look here, the demo writers write here)."""
    return source_dir(root, tile) / f"{SOURCE_PREFIX}{tile}_{band}_10m.tif"


class AgriFieldNet(ChipProductSource):
    """torchgeo layout: `<root>/train_labels/..._labels_train_<id>.tif`, bands `<root>/source/..._source_<id>/`."""

    name = "agrifieldnet"
    label_pattern = f"train_labels/**/{LABEL_PREFIX}<id>.tif (excluding *{FIELD_IDS_SUFFIX}.tif)"

    def _label_files(self) -> list[Path]:
        # torchgeo walks train_labels recursively and skips the field-id rasters
        found = (self.root / "train_labels").glob(f"**/{any_case(LABEL_PREFIX + '*.tif')}")
        return [p for p in found if not p.stem.endswith(FIELD_IDS_SUFFIX)]

    def label_dirs(self) -> list[Path]:
        """`train_labels/`, walked recursively like torchgeo."""
        return [self.root / "train_labels"]

    def _field_of(self, label: Path) -> str:
        return label.stem  # the study's chip id is `<year>_<label file stem>`

    def _extra_aliases(self, field: str) -> tuple[str, ...]:
        return (field.removeprefix(LABEL_PREFIX),)  # the bare 5-character chip id

    def _band_files(self, field: str, date: str | None) -> tuple[Path, dict[str, Path]]:
        if date is not None:
            raise SourceError(
                f"chip {self.chip_id(field)}",
                "date",
                f"AgriFieldNet has one Sentinel-2 composite per chip, so no date {date!r}",
                "call without a date",
            )
        tile = field.removeprefix(LABEL_PREFIX)
        return source_dir(self.root, tile), {b: band_path(self.root, tile, b) for b in self.native_bands()}
