"""Seeded AgriFieldNet fixture in torchgeo's layout: run `uv run python tests/data/agrifieldnet/data.py`.

Writes two 16x16 labelled chips at 10 m in EPSG:32643 (UTM 43N, India) as
`train_labels/ref_agrifieldnet_competition_v1_labels_train_<id>.tif`, each with its `..._field_ids.tif` beside it,
and their Sentinel-2 bands as `source/ref_agrifieldnet_competition_v1_source_<id>/..._<id>_<band>_10m.tif`. A third
chip (001c1) has imagery but no train labels, like the product's test chips. Every band file is a constant,
`band_value(band)`, so tests can check the band order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin

from curation.core.bands import S2_FILE_ORDER
from curation.demo.writers import write_agrifieldnet_field as write_field

SIZE = 16
RES = 10.0
CRS_ = CRS.from_epsg(32643)
CODES = np.array([0, 1, 2, 3, 4, 5, 6, 8, 9, 13, 14, 15, 16, 36], dtype=np.uint8)
LABELLED: dict[str, tuple[float, float]] = {  # chip id -> (left, top), in Rajasthan
    "f2eb7": (500000.0, 2960000.0),
    "849f6": (510000.0, 2950000.0),
}
UNLABELLED: dict[str, tuple[float, float]] = {"001c1": (520000.0, 2940000.0)}


def band_value(band: str) -> int:
    """The constant written in a band file: 100 times the band's S2_FILE_ORDER position (1-based)."""
    return 100 * (S2_FILE_ORDER.index(band) + 1)


def image() -> npt.NDArray[np.uint16]:
    """The 13-band stack: each band a constant (B10 too; the writer drops it)."""
    return np.stack([np.full((SIZE, SIZE), band_value(band), dtype=np.uint16) for band in S2_FILE_ORDER])


def synthesize() -> dict[str, tuple[npt.NDArray[np.uint8], Affine]]:
    """Each labelled chip's class codes and transform, from one seeded generator."""
    rng = np.random.default_rng(0)
    return {
        chip: (rng.choice(CODES, size=(SIZE, SIZE)).astype(np.uint8), from_origin(left, top, RES, RES))
        for chip, (left, top) in LABELLED.items()
    }


def write_fixture(root: Path) -> None:
    """Write the fixture under `root`."""
    for chip, (labels, transform) in synthesize().items():
        write_field(root, chip, labels, image(), CRS_, transform)
    for chip, (left, top) in UNLABELLED.items():  # imagery only: write a chip, then take its labels away
        write_field(root, chip, np.zeros((SIZE, SIZE), np.uint8), image(), CRS_, from_origin(left, top, RES, RES))
        for suffix in ("", "_field_ids"):
            (root / "train_labels" / f"ref_agrifieldnet_competition_v1_labels_train_{chip}{suffix}.tif").unlink()


if __name__ == "__main__":
    write_fixture(Path(__file__).resolve().parent)
