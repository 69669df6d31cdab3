"""Seeded South Africa Crop Type fixture in torchgeo's layout (rewrite: `uv run python <this file>`).

Writes three 16x16 fields at 10 m in EPSG:32734 (UTM 34S, Western Cape) under `train/labels/<field>.tif` with
Sentinel-2 bands under `train/imagery/s2/<field>/<date>/<field>_<date>_<band>_10m.tif`. Field 2199 has three dates:
the earliest (2017_04_01) lacks B8A, so the earliest complete date is 2017_05_04; it also carries a CLM cloud-mask
file as the product does. Every band file is a constant, `band_value(date_index, band)`, so tests can check the
band order and the date chosen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin

from curation.core.bands import S2_FILE_ORDER
from curation.core.geotiff import write_geotiff
from curation.demo.writers import write_sact_field as write_field

SIZE = 16
RES = 10.0
CRS_ = CRS.from_epsg(32734)
FIELDS: dict[str, tuple[float, float]] = {  # field id -> (left, top), in the Overberg
    "2199": (345000.0, 6230000.0),
    "2642": (352000.0, 6224000.0),
    "17": (360000.0, 6218000.0),
}
DATES: dict[str, tuple[str, ...]] = {
    "2199": ("2017_04_01", "2017_05_04", "2017_07_22"),
    "2642": ("2017_07_22",),
    "17": ("2017_11_28",),
}
INCOMPLETE: dict[tuple[str, str], str] = {("2199", "2017_04_01"): "B8A"}  # (field, date) -> band left out
EARLIEST_COMPLETE = {"2199": "2017_05_04", "2642": "2017_07_22", "17": "2017_11_28"}


def band_value(date_index: int, band: str) -> int:
    """The constant written in a band file: 1000 per date (1-based) plus the band's S2_FILE_ORDER position (1-based)."""
    return 1000 * (date_index + 1) + S2_FILE_ORDER.index(band) + 1


def image_of(date_index: int) -> npt.NDArray[np.uint16]:
    """The 13-band stack of one date: each band a constant (B10 too; the writer drops it)."""
    planes = [np.full((SIZE, SIZE), band_value(date_index, band), dtype=np.uint16) for band in S2_FILE_ORDER]
    return np.stack(planes)


def synthesize() -> dict[str, tuple[npt.NDArray[np.uint8], Affine]]:
    """Each field's label codes (0..9) and transform, from one seeded generator."""
    rng = np.random.default_rng(0)
    return {
        field: (rng.integers(0, 10, size=(SIZE, SIZE), dtype=np.uint8), from_origin(left, top, RES, RES))
        for field, (left, top) in FIELDS.items()
    }


def write_fixture(root: Path) -> None:
    """Write the fixture under `root`."""
    for field, (labels, transform) in synthesize().items():
        for index, date in enumerate(DATES[field]):
            write_field(root, field, date, labels, image_of(index), CRS_, transform)
            left_out = INCOMPLETE.get((field, date))
            if left_out:
                (root / "train" / "imagery" / "s2" / field / date / f"{field}_{date}_{left_out}_10m.tif").unlink()
        date = DATES[field][0]
        clouds = np.zeros((SIZE, SIZE), dtype=np.uint8)
        write_geotiff(
            root / "train" / "imagery" / "s2" / field / date / f"{field}_{date}_CLM_10m.tif", clouds, CRS_, transform
        )


if __name__ == "__main__":
    write_fixture(Path(__file__).resolve().parent)
