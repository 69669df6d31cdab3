"""South America Soybean reader on the seeded fixture (`SouthAmerica_Soybean_<year>.tif`, EPSG:4326)."""

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
from curation.sources.south_america_soybean import SouthAmericaSoybean

DATA = Path(__file__).resolve().parents[2] / "data" / "south_america_soybean"
PRODUCT = DATA / "SouthAmerica_Soybean_2021.tif"
UTM = "EPSG:32721"  # zone 21S holds 55.5 W, 12.5 S
SENTINEL = 77  # not a code of the product: marks chip pixels the product does not cover


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sas_fixture_data", DATA / "data.py")
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
    """The oracle: a full-raster nearest reproject; SENTINEL where the product does not cover the grid."""
    out = np.full(grid.shape, SENTINEL, dtype=np.uint8)
    with rasterio.open(PRODUCT) as src:
        reproject(
            rasterio.band(src, 1),
            out,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            resampling=Resampling.nearest,
            init_dest_nodata=False,  # rasterio would otherwise zero the destination first
        )
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
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [PRODUCT.name]
    assert (tmp_path / "a" / PRODUCT.name).read_bytes() == (tmp_path / "b" / PRODUCT.name).read_bytes()
    assert (tmp_path / "a" / PRODUCT.name).read_bytes() == PRODUCT.read_bytes(), f"rerun {DATA / 'data.py'}"


def test_fixture_is_soybean_like() -> None:
    with rasterio.open(PRODUCT) as src:
        data = src.read(1)
        assert src.crs == CRS.from_epsg(4326)
        assert src.nodata is None
    assert set(np.unique(data).tolist()) == {0, 1, 255}


def test_discovery_and_year_filter(tmp_path: Path) -> None:
    assert SouthAmericaSoybean(DATA).files() == [PRODUCT]
    assert SouthAmericaSoybean(DATA, year=2021).files() == [PRODUCT]
    with pytest.raises(SourceError, match=r"no file matches \*\*/SouthAmerica_Soybean_2020\.tif"):
        SouthAmericaSoybean(DATA, year=2020).files()
    for year in (2001, 2020):
        (tmp_path / f"SouthAmerica_Soybean_{year}.tif").write_bytes(PRODUCT.read_bytes())
    (tmp_path / "SouthAmerica_Soybean_2020.tif.aux.xml").write_text("<PAMDataset/>")
    with pytest.raises(SourceError, match="one year per read: south_america_soybean files of 2001, 2020"):
        SouthAmericaSoybean(tmp_path).files()
    assert SouthAmericaSoybean(tmp_path, year=2020).files() == [tmp_path / "SouthAmerica_Soybean_2020.tif"]


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"raw root exists: no such folder for source 'south_america_soybean'"):
        SouthAmericaSoybean(tmp_path / "missing")


def test_unmatched_pattern(tmp_path: Path) -> None:
    (tmp_path / "Soybean_2021.tif").write_bytes(PRODUCT.read_bytes())
    with pytest.raises(SourceError, match=r"file pattern: no file matches \*\*/SouthAmerica_Soybean_\*\.tif") as info:
        SouthAmericaSoybean(tmp_path).read_labels(grid_at(*centre(), UTM, 8))
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("crs", [UTM, "EPSG:3857"])
def test_read_equals_a_direct_nearest_reproject(crs: str) -> None:
    grid = grid_at(*centre(), crs, 96)  # 960 m inside a product about 1.7 km wide
    expected = direct(grid)
    assert (expected != SENTINEL).all()
    labels = SouthAmericaSoybean(DATA, year=2021).read_labels(grid)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, expected)
    assert {0, 1} <= set(np.unique(labels).tolist())


def test_chip_across_the_south_edge_gets_255_beyond_it() -> None:
    w, s, e, _ = product_bounds()
    grid = grid_at((w + e) / 2, s, UTM, 64)
    covered = direct(grid)
    labels = SouthAmericaSoybean(DATA).read_labels(grid)
    np.testing.assert_array_equal(labels, np.where(covered == SENTINEL, SouthAmericaSoybean.fill_code, covered))
    rows, cols = np.indices(grid.shape)
    xs, ys = grid.transform @ (cols + 0.5, rows + 0.5)
    _, lats = transform(grid.crs, CRS.from_epsg(4326), xs.ravel(), ys.ravel())
    lat = np.asarray(lats).reshape(grid.shape)
    outside, inside = lat < s - 0.00025, lat > s + 0.00025
    assert outside.sum() > 1000 and inside.sum() > 1000
    assert (labels[outside] == 255).all()
    assert (covered[outside] == SENTINEL).all()
    np.testing.assert_array_equal(labels[inside], covered[inside])
    assert {0, 1} <= set(np.unique(labels[inside]).tolist())


def test_chip_outside_the_product() -> None:
    w, s, e, n = product_bounds()
    grid = grid_at(e + 0.05, n, UTM, 16, chip_id="sas_east_of_map")
    with pytest.raises(SourceError, match="inside product") as info:
        SouthAmericaSoybean(DATA).read_labels(grid)
    message = str(info.value)
    assert "sas_east_of_map" in message
    assert f"SouthAmerica_Soybean_2021.tif {format_bounds((w, s, e, n))} in EPSG:4326" in message


def test_corrupt_geotiff(tmp_path: Path) -> None:
    (tmp_path / PRODUCT.name).write_bytes(b"not a tiff at all\n" * 64)
    with pytest.raises(SourceError, match="readable GeoTIFF") as info:
        SouthAmericaSoybean(tmp_path).read_labels(grid_at(*centre(), UTM, 8))
    assert str(tmp_path / PRODUCT.name) in str(info.value)


def test_label_raster_without_crs(tmp_path: Path) -> None:
    with rasterio.open(PRODUCT) as src:
        profile, data = src.profile, src.read(1)
    del profile["crs"]
    with rasterio.open(tmp_path / PRODUCT.name, "w", **profile) as dst:
        dst.write(data, 1)
    with pytest.raises(SourceError, match="CRS present") as info:
        SouthAmericaSoybean(tmp_path).read_labels(grid_at(*centre(), UTM, 8))
    assert str(tmp_path / PRODUCT.name) in str(info.value)
