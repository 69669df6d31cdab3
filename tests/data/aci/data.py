"""Seeded Annual Crop Inventory fixture (docs/adding-a-source.md): `write_fixture(root)` writes it under `root`.

`aci_2021_on.tif`: 64 x 64 uint8 pixels at 30 m in EPSG:3161 (Ontario MNR Lambert) with ACI codes laid out as
8 x 8-pixel fields, codes drawn from the excerpt of the legend the guide shows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
from rasterio.transform import from_origin

from curation.core.geotiff import write_geotiff

SIZE, FIELD, RES = 64, 8, 30.0
LEFT, TOP = 1_294_260.0, 11_886_840.0  # near Guelph, Ontario, in EPSG:3161
CODES = np.array([20, 122, 136, 145, 147, 158], dtype=np.uint8)  # water, pasture, oats, winter wheat, corn, soy


def write_fixture(root: Path) -> npt.NDArray[np.uint8]:
    """Write the raster under `root`; returns its codes."""
    rng = np.random.default_rng(0)
    blocks = rng.choice(CODES, size=(SIZE // FIELD, SIZE // FIELD))
    codes = np.repeat(np.repeat(blocks, FIELD, axis=0), FIELD, axis=1).astype(np.uint8)
    write_geotiff(root / "aci_2021_on.tif", codes, "EPSG:3161", from_origin(LEFT, TOP, RES, RES))
    return codes
