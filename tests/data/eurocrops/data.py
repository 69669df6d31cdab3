"""Seeded EuroCrops fixture in the release layout: run `uv run python tests/data/eurocrops/data.py` to rewrite it.

Writes `SI/SI_2021/SI_2021_EC21.shp` (Slovenia, EPSG:3794 D96/TM) with six rectangular parcels carrying the real
attribute names `EC_trans_n`, `EC_hcat_n` and `EC_hcat_c` (HCAT codes as text, one parcel without a code), and
`HCAT2.csv` at the root. The date in the .dbf header is pinned so the bytes do not depend on the day of writing.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
from shapely.geometry import box

CRS_ = "EPSG:3794"
LEFT, BOTTOM = 492000.0, 95000.0  # central Slovenia
CELL = 400.0  # parcels are drawn inside a 3x2 grid of cells this many metres wide, so they never overlap
LAYER = Path("SI") / "SI_2021" / "SI_2021_EC21.shp"
# (national name translated, HCAT name, HCAT code as text)
PARCELS = [
    ("Winter wheat", "winter_common_soft_wheat", "3301010101"),
    ("Maize for grain", "grain_maize_corn_popcorn", "3301010600"),
    ("Soybean", "soy_soybeans", "3301160000"),
    ("Permanent grassland", "pasture_meadow_grassland_grass", "3302000000"),
    ("Unknown", "", ""),
    ("Winter wheat", "winter_common_soft_wheat", "3301010101"),
]
HCAT_ROWS = [
    ("winter_common_soft_wheat", "3301010101"),
    ("grain_maize_corn_popcorn", "3301010600"),
    ("soy_soybeans", "3301160000"),
    ("pasture_meadow_grassland_grass", "3302000000"),
]
DBF_DATE = bytes([121, 1, 1])  # 2021-01-01 as (year - 1900, month, day)


def parcels(rng: np.random.Generator) -> gpd.GeoDataFrame:
    """One random rectangle (80 to 300 m a side, whole metres) inside each grid cell."""
    rows = []
    for i, (trans, name, code) in enumerate(PARCELS):
        cell_x, cell_y = LEFT + (i % 3) * CELL, BOTTOM + (i // 3) * CELL
        width, height = rng.integers(80, 301, size=2)
        x0 = cell_x + rng.integers(10, CELL - width - 10 + 1)
        y0 = cell_y + rng.integers(10, CELL - height - 10 + 1)
        geometry = box(float(x0), float(y0), float(x0 + width), float(y0 + height))
        rows.append({"ID": i + 1, "EC_trans_n": trans, "EC_hcat_n": name, "EC_hcat_c": code, "geometry": geometry})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS_)


def pin_dbf_date(path: Path) -> None:
    """Overwrite the last-update date (bytes 1..3) of a .dbf header."""
    with path.open("r+b") as handle:
        handle.seek(1)
        handle.write(DBF_DATE)


def write_fixture(root: Path) -> None:
    """Write the Slovenian 2021 layer and the HCAT table under `root`."""
    rng = np.random.default_rng(0)
    shapefile = root / LAYER
    shapefile.parent.mkdir(parents=True, exist_ok=True)
    parcels(rng).to_file(shapefile, driver="ESRI Shapefile", engine="pyogrio", encoding="UTF-8")
    pin_dbf_date(shapefile.with_suffix(".dbf"))
    lines = ["HCAT2_name,HCAT2_code", *(f"{name},{code}" for name, code in HCAT_ROWS)]
    (root / "HCAT2.csv").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write_fixture(Path(__file__).resolve().parent)
