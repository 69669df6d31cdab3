"""Seeded South America Soybean fixture: run `uv run python tests/data/south_america_soybean/data.py` to rewrite it.

Writes `SouthAmerica_Soybean_2021.tif`: 64x64 uint8 pixels of 0.00025 degrees (about 30 m) in EPSG:4326 in Mato
Grosso, 1 soybean and 0 other as 8x8-pixel fields, with a few 255 (no data) fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

SIZE = 64
FIELD = 8
RES = 0.00025
WEST, NORTH = -55.5, -12.5
CODES = np.array([0, 1, 255], dtype=np.uint8)
WEIGHTS = [0.45, 0.45, 0.1]
NAME = "SouthAmerica_Soybean_2021.tif"


def write_fixture(root: Path) -> None:
    """Write the 2021 soybean raster under `root`."""
    rng = np.random.default_rng(0)
    n = SIZE // FIELD
    blocks = rng.choice(CODES, size=(n, n), p=WEIGHTS)
    data = np.repeat(np.repeat(blocks, FIELD, axis=0), FIELD, axis=1).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "crs": CRS.from_epsg(4326),
        "transform": from_origin(WEST, NORTH, RES, RES),
        "compress": "deflate",
    }
    with rasterio.open(root / NAME, "w", **profile) as dst:
        dst.write(data, 1)


if __name__ == "__main__":
    write_fixture(Path(__file__).resolve().parent)
