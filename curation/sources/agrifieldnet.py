"""AgriFieldNet (India, 2021): per-chip label rasters with one Sentinel-2 composite per chip, paired by chip id."""

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

PREFIX = "ref_agrifieldnet_competition_v1"
LABEL_PREFIX = f"{PREFIX}_labels_train_"
SOURCE_PREFIX = f"{PREFIX}_source_"
FIELD_IDS_SUFFIX = "_field_ids"  # the field-number rasters beside the labels: not class labels
ID_RE = re.compile(r"^[a-z0-9]{5}$")  # torchgeo: (?P<unique_folder_id>[a-z0-9]{5})


def _label_path(root: Path, tile: str) -> Path:
    return root / "train_labels" / f"{LABEL_PREFIX}{tile}.tif"


def _source_dir(root: Path, tile: str) -> Path:
    return root / "source" / f"{SOURCE_PREFIX}{tile}"


def _band_path(root: Path, tile: str, band: str) -> Path:
    return _source_dir(root, tile) / f"{SOURCE_PREFIX}{tile}_{band}_10m.tif"


class AgriFieldNet(ChipProductSource):
    """torchgeo layout: `<root>/train_labels/..._labels_train_<id>.tif`, bands `<root>/source/..._source_<id>/`."""

    info: ClassVar[SourceInfo] = SourceInfo(
        name="agrifieldnet",
        title="AgriFieldNet Competition Dataset",
        region="India",
        continent="Asia",
        years=(2021,),
        licence="CC BY 4.0",
        citation="Radiant Earth Foundation, IDinsight (2022). AgriFieldNet Competition Dataset, Version 1.0, "
        "Radiant MLHub.",
        doi="10.34911/rdnt.wu92p1",
        kind="chips",
        layout=f"<root>/train_labels/{LABEL_PREFIX}<id>.tif (not the *{FIELD_IDS_SUFFIX}.tif beside them) with "
        f"Sentinel-2 bands <root>/source/{SOURCE_PREFIX}<id>/{SOURCE_PREFIX}<id>_<band>_10m.tif",
        study_name="agrifieldnet_2021",
    )
    label_pattern = f"train_labels/**/{LABEL_PREFIX}<id>.tif (excluding *{FIELD_IDS_SUFFIX}.tif)"

    def _label_files(self) -> list[Path]:
        # torchgeo walks train_labels recursively and skips the field-id rasters
        found = (self.root / "train_labels").glob(f"**/{LABEL_PREFIX}*.tif")
        return [p for p in found if not p.stem.endswith(FIELD_IDS_SUFFIX)]

    def _field_of(self, label: Path) -> str:
        return label.stem  # the study's chip id is `<year>_<label file stem>`

    def _extra_aliases(self, field: str) -> tuple[str, ...]:
        return (field.removeprefix(LABEL_PREFIX),)  # the bare 5-character chip id

    def _band_files(self, field: str, date: str | None) -> tuple[Path, dict[str, Path]]:
        if date is not None:
            raise SourceError(
                f"chip {self.chip_id(field)}: date: AgriFieldNet has one Sentinel-2 composite per chip, "
                f"so no date {date!r}. Fix: call without a date"
            )
        tile = field.removeprefix(LABEL_PREFIX)
        return _source_dir(self.root, tile), {b: _band_path(self.root, tile, b) for b in self.native_bands()}


def write_field(
    root: Path,
    field_id: str,
    labels: npt.NDArray[np.uint8],
    image: npt.NDArray[np.uint16],
    crs: CRS | str | int,
    transform: Affine,
) -> None:
    """Write one chip in the native layout: label raster, field-id raster beside it and 12 band files (no B10).

    Args:
        root: the product root (created when missing).
        field_id: the 5-character chip id of the product (lower-case letters and digits, e.g. "f2eb7").
        labels: (H, W) uint8 class codes (0 No-Data, 1..36).
        image: (13, H, W) uint16 in S2_FILE_ORDER; the B10 plane is not written.
        crs: the chip's CRS (a UTM zone in the product).
        transform: the chip's affine transform (10 m pixels in the product).
    """
    if not ID_RE.match(field_id):
        raise SourceError(
            f"field {field_id!r}: chip id: the product's ids are 5 lower-case letters or digits. Fix: use e.g. 'f2eb7'"
        )
    check_field_arrays(labels, image, field_id)
    label_path = _label_path(root, field_id)
    write_geotiff(label_path, labels.astype(np.uint8), crs, transform)
    field_ids = label_path.with_name(f"{label_path.stem}{FIELD_IDS_SUFFIX}.tif")
    write_geotiff(field_ids, _field_numbers(labels), crs, transform)
    for band in AgriFieldNet.native_bands():
        plane = image[S2_FILE_ORDER.index(band)].astype(np.uint16)
        write_geotiff(_band_path(root, field_id, band), plane, crs, transform)


def _field_numbers(labels: npt.NDArray[np.generic]) -> npt.NDArray[np.uint16]:
    """A field number per labelled pixel (1 + rank of its class among the chip's classes), 0 where unlabelled."""
    codes = np.unique(labels[labels != 0])
    ranks = np.searchsorted(codes, labels) + 1
    return np.where(labels != 0, ranks, 0).astype(np.uint16)
