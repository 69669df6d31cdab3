"""Seeded CDL fixture in both torchgeo layouts: run `uv run python tests/data/cdl/data.py` to rewrite it.

Writes `2023_30m_cdls/2023_30m_cdls.tif` (the nested layout torchgeo downloads) and a flat `2022_30m_cdls.tif`:
64x64 uint8 pixels at 30 m in EPSG:5070 (CONUS Albers, on the national CDL grid) over central Iowa, with real CDL
codes laid out as 8x8-pixel fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

SIZE = 64  # pixels per side
FIELD = 8  # pixels per field side
RES = 30.0
LEFT, TOP = 198525.0, 2068665.0  # on the CONUS CDL grid (origin -2356095, 3172605)
CRS_ = CRS.from_epsg(5070)
# 0 background, 1 corn, 3 rice, 5 soybeans, 24 winter wheat, 26 dbl crop winwht/soybeans, 111 open water, 176 grass
CODES = np.array([0, 1, 3, 5, 24, 26, 111, 176], dtype=np.uint8)
FILES = ("2022_30m_cdls.tif", "2023_30m_cdls/2023_30m_cdls.tif")  # written in this order from one generator


def fields(rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """A SIZE x SIZE map of FIELD x FIELD blocks, each one random code."""
    n = SIZE // FIELD
    blocks = rng.choice(CODES, size=(n, n))
    return np.repeat(np.repeat(blocks, FIELD, axis=0), FIELD, axis=1).astype(np.uint8)


def write_fixture(root: Path) -> None:
    """Write both CDL years under `root`."""
    rng = np.random.default_rng(0)
    transform = from_origin(LEFT, TOP, RES, RES)
    for name in FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = fields(rng)
        profile = {
            "driver": "GTiff",
            "dtype": "uint8",
            "width": SIZE,
            "height": SIZE,
            "count": 1,
            "crs": CRS_,
            "transform": transform,
            "compress": "deflate",
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)


if __name__ == "__main__":
    write_fixture(Path(__file__).resolve().parent)
