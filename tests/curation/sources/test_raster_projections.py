"""Where pyproj and GDAL's PROJ map a CRS pair differently, a raster read is GDAL's alone: window and warp.

rasterio and pyproj ship separate PROJ builds. For EPSG:2163 over CDL's Albers (EPSG:5070) they land kilometres
apart (both read it as NAD27-based EPSG:9311 and shift the datum differently), and GDAL's warper lands elsewhere
again than `rasterio.warp.transform`, so the fast path gave other pixels than GDAL's warp. The check
(`projection_gap`) sends such chips to GDAL's warp of a window wide enough for either; common pairs keep the fast
path, and both give GDAL's full-raster warp.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject, transform

from curation.sources import raster_grid
from curation.sources.base import ChipGrid
from curation.sources.raster import RasterFile, open_raster_file, warp_window, warp_window_gdal

ALBERS = CRS.from_epsg(5070)
ORIGIN = (105.0, 2_299_995.0)  # CDL's 30 m grid, in Iowa
SIZE = 400


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> tuple[RasterFile, np.ndarray]:
    rng = np.random.default_rng(3)
    data = np.repeat(np.repeat(rng.integers(1, 250, (SIZE // 5,) * 2, dtype=np.uint8), 5, 0), 5, 1)
    path = tmp_path_factory.mktemp("projections") / "2023_30m_cdls.tif"
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 1, "width": SIZE, "height": SIZE, "crs": ALBERS,
               "transform": from_origin(*ORIGIN, 30, 30)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return open_raster_file(path), data


def chip(file: RasterFile, epsg: int, size: int = 64, res: float = 10.0) -> ChipGrid:
    """A chip in `epsg` at the product's centre, placed there by GDAL's transformation."""
    left, bottom, right, top = file.bounds
    crs = CRS.from_epsg(epsg)
    (cx,), (cy,) = transform(file.crs, crs, [(left + right) / 2], [(bottom + top) / 2])
    half = size * res / 2
    return ChipGrid(crs, Affine(res, 0, cx - half, 0, -res, cy + half), size, size, "chip")


def full_warp(file: RasterFile, data: np.ndarray, grid: ChipGrid) -> np.ndarray:
    """GDAL's nearest warp of the whole product onto the chip (-1: not covered): the reference of every read."""
    out = np.full(grid.shape, -1, dtype=np.int64)
    reproject(data.astype(np.int64), out, src_transform=file.transform, src_crs=file.crs, src_nodata=-1,
              dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=-1,
              resampling=Resampling.nearest)  # fmt: skip
    return out


@pytest.mark.parametrize("epsg", [3857, 32615, 26915])
def test_common_pairs_agree_and_keep_the_fast_path(product: tuple[RasterFile, np.ndarray], epsg: int) -> None:
    file, data = product
    grid = chip(file, epsg)
    assert raster_grid.projections_agree(grid, file.crs, file.transform)
    assert np.array_equal(warp_window(file, grid), full_warp(file, data, grid))


def test_a_pair_pyproj_maps_elsewhere_is_read_by_gdal_alone(
    product: tuple[RasterFile, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    file, data = product
    grid = chip(file, 2163)
    assert raster_grid.projection_gap(grid, file.crs) > 100.0  # metres: the two PROJ builds' operations differ
    assert not raster_grid.projections_agree(grid, file.crs, file.transform)
    calls: list[object] = []
    monkeypatch.setattr("curation.sources.raster.nearest", lambda *args: calls.append(args))
    expected = full_warp(file, data, grid)
    assert (expected >= 0).all()  # the chip lies inside the product: every pixel has a code
    assert np.array_equal(warp_window(file, grid), expected) and not calls  # GDAL's warp, not the fast path
    assert np.array_equal(warp_window_gdal(file, grid), expected)


def test_the_check_is_made_once_per_pair_and_region(product: tuple[RasterFile, np.ndarray]) -> None:
    file, _ = product
    raster_grid._GAPS.clear()
    grid = chip(file, 3857)
    nearby = ChipGrid(grid.crs, grid.transform * Affine.translation(7, 3), grid.width, grid.height, "other")
    raster_grid.projection_gap(grid, file.crs)
    raster_grid.projection_gap(nearby, file.crs)
    assert len(raster_grid._GAPS) == 1
    far = ChipGrid(grid.crs, Affine.translation(2_000_000, 0) * grid.transform, grid.width, grid.height, "far")
    raster_grid.projection_gap(far, file.crs)
    assert len(raster_grid._GAPS) == 2
