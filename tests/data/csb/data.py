"""Seeded Crop Sequence Boundaries fixture (docs/adding-a-source.md): `write_fixture(root)` writes it under `root`.

A GeoPackage `CSB_fixture.gpkg` of 4 x 4 square fields of 160 m in EPSG:5070 (CONUS Albers) over central Iowa, each
with the CDL code of 2021 and of 2022 in its own column (`CDL2021`, `CDL2022`), as the national CSB layers carry
one column per year. Written at test time (GeoPackages store write times, so a committed copy would not be stable).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import box

LEFT, TOP = 198525.0, 2068665.0  # on the CONUS CDL grid, as tests/data/cdl
FIELD_M = 160.0
FIELDS = 4  # per side
CODES = np.array([1, 5, 24, 176], dtype=np.int64)  # corn, soybeans, winter wheat, grassland/pasture
YEARS = (2021, 2022)


def write_fixture(root: Path) -> gpd.GeoDataFrame:
    """Write the layer under `root`; returns its fields (geometry and one code column per year)."""
    rng = np.random.default_rng(0)
    cells = [(i, j) for j in range(FIELDS) for i in range(FIELDS)]
    frame = gpd.GeoDataFrame(
        {
            "CSBID": [f"19162300000{k:04d}" for k in range(len(cells))],
            **{f"CDL{year}": rng.choice(CODES, size=len(cells)) for year in YEARS},
        },
        geometry=[
            box(LEFT + i * FIELD_M, TOP - (j + 1) * FIELD_M, LEFT + (i + 1) * FIELD_M, TOP - j * FIELD_M)
            for i, j in cells
        ],
        crs="EPSG:5070",
    )
    root.mkdir(parents=True, exist_ok=True)
    frame.to_file(root / "CSB_fixture.gpkg", driver="GPKG")
    return frame
