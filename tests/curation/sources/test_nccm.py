"""NCCM reader on the seeded fixture in torchgeo's layout (`CDL<year>_clip*.tif`, EPSG:4326, 15 = nodata)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject, transform

from curation.sources.base import ChipGrid, SourceError, format_bounds
from curation.sources.nccm import NCCM

DATA = Path(__file__).resolve().parents[2] / "data" / "nccm"
PRODUCT = DATA / "CDL2019_clip.tif"
UTM = "EPSG:32652"  # zone 52N holds 126.5 E
SENTINEL = 77  # not a code of the product: marks chip pixels the oracle leaves unwritten


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nccm_fixture_data", DATA / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid_at(lon: float, lat: float, crs: str, size: int, chip_id: str = "chip") -> ChipGrid:
    """A 10 m chip grid in `crs`, aligned to 10 m, centred on (lon, lat)."""
    xs, ys = transform(CRS.from_epsg(4326), CRS.from_user_input(crs), [lon], [lat])
    left = math.floor(xs[0] / 10) * 10 - size // 2 * 10
    top = math.floor(ys[0] / 10) * 10 + size // 2 * 10
    return ChipGrid(CRS.from_user_input(crs), from_origin(left, top, 10, 10), size, size, chip_id)


def direct(grid: ChipGrid) -> npt.NDArray[np.uint8]:
    """The oracle: a full-raster nearest reproject; SENTINEL where the product does not cover the grid or is 15.

    The file declares 15 as nodata, so GDAL leaves those pixels unwritten as well.
    """
    out = np.full(grid.shape, SENTINEL, dtype=np.uint8)
    with rasterio.open(PRODUCT) as src:
        reproject(
            rasterio.band(src, 1),
            out,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            resampling=Resampling.nearest,
            init_dest_nodata=False,  # rasterio would otherwise fill the destination with the nodata value first
        )
    return out


def expected(grid: ChipGrid) -> npt.NDArray[np.uint8]:
    out = direct(grid)
    out[out == SENTINEL] = 15
    return out


def product_bounds() -> tuple[float, float, float, float]:
    with rasterio.open(PRODUCT) as src:
        b = src.bounds
        return (b.left, b.bottom, b.right, b.top)


def centre() -> tuple[float, float]:
    w, s, e, n = product_bounds()
    return (w + e) / 2, (s + n) / 2


def test_fixture_is_seeded_and_committed_outputs_are_current(tmp_path: Path) -> None:
    generator = load_generator()
    generator.write_fixture(tmp_path / "a")
    generator.write_fixture(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["CDL2019_clip.tif"]
    assert (tmp_path / "a" / PRODUCT.name).read_bytes() == (tmp_path / "b" / PRODUCT.name).read_bytes()
    assert (tmp_path / "a" / PRODUCT.name).read_bytes() == PRODUCT.read_bytes(), f"rerun {DATA / 'data.py'}"


def test_fixture_is_nccm_like() -> None:
    with rasterio.open(PRODUCT) as src:
        data = src.read(1)
        assert src.crs == CRS.from_epsg(4326)
        assert src.res == pytest.approx((0.0001, 0.0001))
        assert src.nodata == 15
    assert set(np.unique(data).tolist()) == {0, 1, 2, 3, 15}


def test_discovery_and_year_filter() -> None:
    assert NCCM(DATA).files() == [PRODUCT]
    assert NCCM(DATA, year=2019).files() == [PRODUCT]
    with pytest.raises(SourceError, match=r"no file matches \*\*/CDL2018_clip\*\.tif for source 'nccm'"):
        NCCM(DATA, year=2018).files()


def test_torchgeo_numbered_clip_names_are_found(tmp_path: Path) -> None:
    (tmp_path / "CDL2018_clip1.tif").write_bytes(PRODUCT.read_bytes())  # torchgeo's 2018 file is CDL2018_clip1.tif
    (tmp_path / "CDL2018.tif").write_bytes(PRODUCT.read_bytes())  # not a clip
    assert NCCM(tmp_path, year=2018).files() == [tmp_path / "CDL2018_clip1.tif"]


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"raw root exists: no such folder for source 'nccm'"):
        NCCM(tmp_path / "missing")


def test_unmatched_pattern(tmp_path: Path) -> None:
    (tmp_path / "NCCM2019.tif").write_bytes(PRODUCT.read_bytes())
    with pytest.raises(SourceError, match=r"file pattern: no file matches \*\*/CDL\*_clip\*\.tif") as info:
        NCCM(tmp_path).read_labels(grid_at(*centre(), UTM, 8))
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("crs", [UTM, "EPSG:3857"])
def test_read_equals_a_direct_nearest_reproject(crs: str) -> None:
    grid = grid_at(*centre(), crs, 32)
    oracle = direct(grid)
    assert (oracle != SENTINEL).all()  # well inside the product, off its nodata strip
    labels = NCCM(DATA, year=2019).read_labels(grid)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, oracle)
    assert set(np.unique(labels).tolist()) <= {0, 1, 2, 3} and len(np.unique(labels)) >= 3


def test_nodata_strip_is_read_as_15() -> None:
    _, s, e, n = product_bounds()
    grid = grid_at(e - 0.0008, (s + n) / 2, UTM, 24)
    labels = NCCM(DATA).read_labels(grid)
    np.testing.assert_array_equal(labels, expected(grid))
    assert (labels == 15).sum() > 50 and (labels != 15).sum() > 50


def test_chip_across_the_north_edge_gets_15_beyond_it() -> None:
    w, _, e, n = product_bounds()
    grid = grid_at((w + e) / 2, n, UTM, 40)
    labels = NCCM(DATA).read_labels(grid)
    np.testing.assert_array_equal(labels, expected(grid))
    rows, cols = np.indices(grid.shape)
    xs, ys = grid.transform @ (cols + 0.5, rows + 0.5)
    _, lats = transform(grid.crs, CRS.from_epsg(4326), xs.ravel(), ys.ravel())
    lat = np.asarray(lats).reshape(grid.shape)
    outside, inside = lat > n + 0.0001, lat < n - 0.0001
    assert outside.sum() > 400 and inside.sum() > 400
    assert NCCM.fill_code == 15
    assert (labels[outside] == 15).all()
    assert (labels[inside] != 15).all()  # the fixture's north rows are fields, not nodata


def test_chip_outside_the_product(tmp_path: Path) -> None:
    w, s, e, n = product_bounds()
    grid = grid_at(w - 0.01, s - 0.01, UTM, 16, chip_id="nccm_sw_of_clip")
    with pytest.raises(SourceError, match="inside product") as info:
        NCCM(DATA).read_labels(grid)
    assert "nccm_sw_of_clip" in str(info.value)
    assert f"CDL2019_clip.tif {format_bounds((w, s, e, n))} in EPSG:4326" in str(info.value)


def test_corrupt_geotiff(tmp_path: Path) -> None:
    (tmp_path / "CDL2019_clip.tif").write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    with pytest.raises(SourceError, match="readable GeoTIFF") as info:
        NCCM(tmp_path).read_labels(grid_at(*centre(), UTM, 8))
    assert str(tmp_path / "CDL2019_clip.tif") in str(info.value)


def test_label_raster_without_crs(tmp_path: Path) -> None:
    with rasterio.open(PRODUCT) as src:
        profile, data = src.profile, src.read(1)
    del profile["crs"]
    with rasterio.open(tmp_path / "CDL2019_clip.tif", "w", **profile) as dst:
        dst.write(data, 1)
    with pytest.raises(SourceError, match="CRS present") as info:
        NCCM(tmp_path).read_labels(grid_at(*centre(), UTM, 8))
    assert str(tmp_path / "CDL2019_clip.tif") in str(info.value)
