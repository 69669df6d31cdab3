"""A tiny seeded chip world in the chips stage's layout: GeoTIFF chips, label chips, manifest and subsets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import rasterio
from rasterio.transform import from_origin

BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
SOURCES = ("cdl", "eurocrops", "nccm")  # real names: params only accept registered sources


def write_chip(root: Path, source: str, chip_id: str, x0: float, rng: np.random.Generator, px: int) -> dict[str, Any]:
    """One 13-band uint16 chip whose spectrum depends on the class of each pixel, and its uint8 label chip."""
    labels = np.repeat(rng.integers(0, 6, size=(px // 8, px // 8), dtype=np.uint8), 8, axis=0).repeat(8, axis=1)
    spectra = 500 + 700 * np.arange(6)[:, None] * (1 + np.arange(13)[None, :] / 13)  # class x band
    image = spectra[labels].transpose(2, 0, 1) + rng.normal(0, 50, size=(13, px, px))
    image = np.clip(image, 0, 65535).astype(np.uint16)
    image[0, 0, 0] = 40000  # above int16: the bank must keep uint16 values exact
    transform = from_origin(x0, 4_000_000.0, 10.0, 10.0)
    paths = {"image_path": f"{source}/images/{chip_id}.tif", "label_path": f"{source}/labels/{chip_id}.tif"}
    for key, data in (("image_path", image), ("label_path", labels[None])):
        path = root / paths[key]
        path.parent.mkdir(parents=True, exist_ok=True)
        profile = {"driver": "GTiff", "height": px, "width": px, "count": data.shape[0], "dtype": data.dtype.name}
        with rasterio.open(path, "w", crs="EPSG:32633", transform=transform, **profile) as dst:
            dst.write(data)
    return {"chip_id": chip_id, "source": source, "lon": 15.0 + x0 / 100_000, "lat": 36.0, **paths}


def make_world(
    root: Path, chips_per_source: int = 10, px: int = 32, seed: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Write the chips under `root`; return (manifest, subsets) with train sets of 2 and 4 and a test set of 3."""
    rng = np.random.default_rng(seed)
    rows, subsets = [], []
    for source in SOURCES:
        for number in range(chips_per_source):
            chip_id = f"{source}_{number:03d}"
            rows.append(write_chip(root, source, chip_id, 500_000.0 + number * 2_000.0, rng, px))
            if number < 4:
                subsets += [(chip_id, source, "train", 4)] + ([(chip_id, source, "train", 2)] if number < 2 else [])
            elif number >= chips_per_source - 3:
                subsets.append((chip_id, source, "test", 3))
    manifest = pl.DataFrame(rows)
    manifest.write_parquet(root / "manifest.parquet")
    return manifest, pl.DataFrame(subsets, schema=["chip_id", "source", "split", "size"], orient="row")
