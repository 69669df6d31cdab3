"""Shared helpers of the validate, chips and inputs tests: one tiny demo world per session, and ways to break it.

Import as `from tests.curation.stage_world import ...` (the project root is on sys.path through the editable
install). The world is built once per process and cached here, so every test module that asks for it shares one
build; tests that break files work on a copy (`copy_world`), never on the shared world.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject

from curation.core.params import load_section
from curation.core.shared import SharedParams
from curation.demo.config import DemoParams
from curation.demo.stage import build

ROOT = Path(__file__).resolve().parents[2]
LEGENDS = ROOT / "curation" / "legends"
PARAMS = ROOT / "params.yaml"
CHIP_PX = 32
TINY = DemoParams(seed=0, out=Path("unused"), chip_px=CHIP_PX, chips_per_source=4, cloud_probability=0.2)
FOLDER_SOURCES = ("cdl", "eurocrops", "nccm", "south_america_soybean")  # image chips in sentinel2/<source>/
CHIP_PRODUCTS = ("south_africa_crop_type", "agrifieldnet")  # imagery assembled from per-band files
ALL_SOURCES = FOLDER_SOURCES + CHIP_PRODUCTS

_WORLDS: dict[str, Path] = {}


def demo_world(factory: pytest.TempPathFactory) -> Path:
    """The raw root of the tiny demo world, built on first use in this process (treat it as read-only)."""
    if "tiny" not in _WORLDS:
        out = factory.mktemp("stage-world") / "raw"
        build(TINY, LEGENDS, out)
        _WORLDS["tiny"] = out
    return _WORLDS["tiny"]


def copy_world(world: Path, folder: Path) -> Path:
    """A private copy of the world's raw root under `folder`, for tests that break files."""
    raw = folder / "raw"
    shutil.copytree(world, raw)
    return raw


def shared_params(
    raw: Path, scheduler: str = "synchronous", workers: int = 1, crosswalk_set: str = "toolkit"
) -> SharedParams:
    """The demo profile's shared params, pointed at `raw` with the tiny world's chip size."""
    shared = load_section(SharedParams, PARAMS)
    dask = shared.dask.model_copy(update={"scheduler": scheduler, "workers": workers})
    return shared.model_copy(
        update={
            "raw_root": raw,
            "legends_dir": LEGENDS,
            "chip_px": CHIP_PX,
            "dask": dask,
            "crosswalk_set": crosswalk_set,
        }
    )


def with_source(shared: SharedParams, name: str, **changes: object) -> SharedParams:
    """`shared` with some keys of one source's params changed."""
    sources = dict(shared.sources)
    sources[name] = sources[name].model_copy(update=changes)
    return shared.model_copy(update={"sources": sources})


def image_chips(raw: Path, source: str) -> list[Path]:
    """The image chip files of a folder source, sorted."""
    return sorted((raw / "sentinel2" / source).glob("*.tif"))


def raster_product(raw: Path, source: str) -> Path:
    """The single GeoTIFF of a raster label product in the demo world."""
    names = {
        "cdl": "cdl/2023_30m_cdls/2023_30m_cdls.tif",
        "nccm": "nccm/CDL2019_clip.tif",
        "south_america_soybean": "south_america_soybean/SouthAmerica_Soybean_2021.tif",
    }
    return raw / names[source]


def keep_bands(path: Path, count: int) -> None:
    """Rewrite a chip with only its first `count` bands (same grid, dtype and compression)."""
    with rasterio.open(path) as src:
        data, profile = src.read(), src.profile
    profile.update(count=count)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data[:count])


def zero_band(path: Path, band: int) -> None:
    """Overwrite one band (1-based) of a chip with zeros."""
    with rasterio.open(path, "r+") as dst:
        dst.write(np.zeros((dst.height, dst.width), dtype=dst.dtypes[0]), band)


def corrupt(path: Path) -> None:
    """Overwrite the header bytes of a file, so it is no longer a GeoTIFF."""
    data = bytearray(path.read_bytes())
    data[:256] = b"\x00" * 256
    path.write_bytes(bytes(data))


def paint_window(path: Path, bounds: tuple[float, float, float, float], crs: object, code: int) -> None:
    """Paint `code` into a label raster wherever its pixels fall inside `bounds` (given in `crs`)."""
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    with rasterio.open(path, "r+") as dst:
        native = transform_bounds(crs, dst.crs, *bounds, densify_pts=21)
        window = from_bounds(*native, transform=dst.transform).round_offsets().round_lengths()
        data = dst.read(1, window=window)
        dst.write(np.full_like(data, code), 1, window=window)


def reproject_raster(path: Path, crs: str) -> None:
    """Rewrite a label raster in another CRS (nearest resampling): the codes stay, the declared CRS no longer holds."""
    with rasterio.open(path) as src:
        transform, width, height = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds)
        profile = src.profile
        out = np.zeros((height, width), dtype=src.dtypes[0])
        reproject(rasterio.band(src, 1), out, dst_transform=transform, dst_crs=crs, resampling=Resampling.nearest)
    profile.update(crs=crs, transform=transform, width=width, height=height)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)
