"""Seeded NCCM fixture in torchgeo's layout: run `uv run python tests/data/nccm/data.py` to rewrite it.

Writes `CDL2019_clip.tif`: 64x64 uint8 pixels of 0.0001 degrees (about 10 m) in EPSG:4326 near Harbin, with the
NCCM classes 0 rice, 1 maize, 2 soybean, 3 others as 8x8-pixel fields and a strip of 15 (nodata).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

SIZE = 64
FIELD = 8
RES = 0.0001
WEST, NORTH = 126.5, 45.75
CODES = np.array([0, 1, 2, 3], dtype=np.uint8)
NODATA = 15
NAME = "CDL2019_clip.tif"


def write_fixture(root: Path) -> None:
    """Write the NCCM 2019 raster under `root`."""
    rng = np.random.default_rng(0)
    n = SIZE // FIELD
    blocks = rng.choice(CODES, size=(n, n))
    data = np.repeat(np.repeat(blocks, FIELD, axis=0), FIELD, axis=1).astype(np.uint8)
    data[:, -4:] = NODATA  # the map's ragged east edge
    root.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "dtype": "uint8",
        "width": SIZE,
        "height": SIZE,
        "count": 1,
        "crs": CRS.from_epsg(4326),
        "transform": from_origin(WEST, NORTH, RES, RES),
        "nodata": NODATA,
        "compress": "deflate",
    }
    with rasterio.open(root / NAME, "w", **profile) as dst:
        dst.write(data, 1)


if __name__ == "__main__":
    write_fixture(Path(__file__).resolve().parent)
