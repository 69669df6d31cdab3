"""CDL reader on the seeded fixture (both torchgeo layouts) and on the real 2021 clip in ../shared/samples."""

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
from curation.sources.cdl import CDL

DATA = Path(__file__).resolve().parents[2] / "data" / "cdl"
FLAT = DATA / "2022_30m_cdls.tif"
NESTED = DATA / "2023_30m_cdls" / "2023_30m_cdls.tif"
SENTINEL = 250  # a code absent from the fixture and the sample: marks chip pixels the product does not cover


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cdl_fixture_data", DATA / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid_at(x: float, y: float, src_crs: str, dst_crs: str, size: int, chip_id: str = "chip") -> ChipGrid:
    """A 10 m chip grid in `dst_crs`, aligned to 10 m, centred on (x, y) given in `src_crs`."""
    xs, ys = transform(CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs), [x], [y])
    left = math.floor(xs[0] / 10) * 10 - size // 2 * 10
    top = math.floor(ys[0] / 10) * 10 + size // 2 * 10
    return ChipGrid(CRS.from_user_input(dst_crs), from_origin(left, top, 10, 10), size, size, chip_id)


def direct(path: Path, grid: ChipGrid) -> npt.NDArray[np.uint8]:
    """The oracle: a full-raster nearest reproject of the product onto the grid; SENTINEL where it is not covered."""
    out = np.full(grid.shape, SENTINEL, dtype=np.uint8)
    with rasterio.open(path) as src:
        reproject(
            rasterio.band(src, 1),
            out,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            resampling=Resampling.nearest,
            init_dest_nodata=False,  # rasterio would otherwise zero the destination first
        )
    return out


def centre_of(path: Path) -> tuple[float, float, str]:
    with rasterio.open(path) as src:
        b = src.bounds
        return (b.left + b.right) / 2, (b.bottom + b.top) / 2, src.crs.to_string()


# ---------------------------------------------------------------- fixture


def test_fixture_is_seeded_and_committed_outputs_are_current(tmp_path: Path) -> None:
    generator = load_generator()
    generator.write_fixture(tmp_path / "a")
    generator.write_fixture(tmp_path / "b")
    written = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert written == [Path("2022_30m_cdls.tif"), Path("2023_30m_cdls/2023_30m_cdls.tif")]
    for rel in written:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
        assert (tmp_path / "a" / rel).read_bytes() == (DATA / rel).read_bytes(), f"rerun {DATA / 'data.py'}"


def test_fixture_holds_real_cdl_codes_on_the_cdl_grid() -> None:
    with rasterio.open(NESTED) as src:
        data = src.read(1)
        assert src.crs == CRS.from_epsg(5070)
        assert src.res == (30.0, 30.0)
        assert src.dtypes[0] == "uint8"
        # the national CDL grid's origin is (-2356095, 3172605): every fixture edge lies on it
        assert (src.bounds.left + 2356095) % 30 == 0 and (3172605 - src.bounds.top) % 30 == 0
    assert set(np.unique(data).tolist()) <= {0, 1, 3, 5, 24, 26, 111, 176}
    assert len(np.unique(data)) >= 6
    with rasterio.open(FLAT) as src:
        assert not np.array_equal(src.read(1), data)  # the two years differ, so a year mix-up shows


# ---------------------------------------------------------------- discovery


def test_discovers_both_layouts_but_never_mixes_years() -> None:
    with pytest.raises(SourceError, match="one year per read: cdl files of 2022, 2023") as info:
        CDL(DATA).files()
    assert "pass the chip's year" in str(info.value)


@pytest.mark.parametrize(("year", "expected"), [(2022, FLAT), (2023, NESTED)])
def test_year_filter_picks_one_layout(year: int, expected: Path) -> None:
    assert CDL(DATA, year=year).files() == [expected]


def test_year_without_a_file_is_an_unmatched_pattern() -> None:
    with pytest.raises(SourceError, match=r"no file matches \*\*/2021_30m_cdls\.tif"):
        CDL(DATA, year=2021).files()


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"raw root exists: no such folder for source 'cdl'") as info:
        CDL(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)


def test_root_without_product_files(tmp_path: Path) -> None:
    (tmp_path / "2023_cdls.tif").write_bytes(b"")  # wrong name: torchgeo's glob is *_30m_cdls.tif
    source = CDL(tmp_path)
    with pytest.raises(SourceError, match=r"file pattern: no file matches \*\*/\*_30m_cdls\.tif") as info:
        source.files()
    assert str(tmp_path) in str(info.value)
    with pytest.raises(SourceError, match="file pattern"):
        source.read_labels(grid_at(*centre_of(NESTED), "EPSG:32615", 8))


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("crs", ["EPSG:32615", "EPSG:3857"])
@pytest.mark.parametrize(("year", "path"), [(2022, FLAT), (2023, NESTED)])
def test_read_equals_a_direct_nearest_reproject(crs: str, year: int, path: Path) -> None:
    grid = grid_at(*centre_of(path), crs, 128)  # 1280 m inside a 1920 m product
    expected = direct(path, grid)
    assert (expected != SENTINEL).all()
    labels = CDL(DATA, year=year).read_labels(grid)
    assert labels.dtype == np.uint8
    assert labels.shape == (128, 128)
    np.testing.assert_array_equal(labels, expected)
    assert len(np.unique(labels)) >= 4


def test_read_of_an_off_centre_window_with_odd_size() -> None:
    with rasterio.open(NESTED) as src:
        x, y = src.xy(12, 47)
    grid = grid_at(x, y, "EPSG:5070", "EPSG:32615", 37)
    expected = direct(NESTED, grid)
    assert (expected != SENTINEL).all()
    np.testing.assert_array_equal(CDL(DATA, year=2023).read_labels(grid), expected)


def test_chip_across_the_edge_gets_the_fill_code_beyond_it() -> None:
    with rasterio.open(NESTED) as src:
        bounds = src.bounds
        x, y = bounds.right, (bounds.bottom + bounds.top) / 2
    grid = grid_at(x, y, "EPSG:5070", "EPSG:32615", 64)
    covered = direct(NESTED, grid)
    labels = CDL(DATA, year=2023).read_labels(grid)
    expected = np.where(covered == SENTINEL, CDL.fill_code, covered)
    np.testing.assert_array_equal(labels, expected)
    # independent of the oracle: pixel centres clearly east of the product's edge are background (0) ...
    rows, cols = np.indices(grid.shape)
    xs, ys = grid.transform @ (cols + 0.5, rows + 0.5)
    px, _ = transform(grid.crs, CRS.from_epsg(5070), xs.ravel(), ys.ravel())
    east = np.asarray(px).reshape(grid.shape)
    outside, inside = east > bounds.right + 30, east < bounds.right - 30
    assert outside.sum() > 1000 and inside.sum() > 1000
    assert (labels[outside] == 0).all()
    # ... and inside it the fixture's fields are read (it has no background along its east edge)
    assert (labels[inside] != 0).any()
    np.testing.assert_array_equal(labels[inside], covered[inside])


def test_files_of_one_year_are_mosaicked(tmp_path: Path) -> None:
    with rasterio.open(NESTED) as src:
        profile, data = src.profile, src.read(1)
    west = dict(profile, width=30)
    east = dict(profile, width=34, transform=profile["transform"] @ profile["transform"].translation(30, 0))
    with rasterio.open(tmp_path / "2023_30m_cdls.tif", "w", **west) as dst:
        dst.write(data[:, :30], 1)
    (tmp_path / "2023_30m_cdls").mkdir()
    with rasterio.open(tmp_path / "2023_30m_cdls" / "2023_30m_cdls.tif", "w", **east) as dst:
        dst.write(data[:, 30:], 1)
    with rasterio.open(NESTED) as src:
        x, y = src.xy(32, 30)
    grid = grid_at(x, y, "EPSG:5070", "EPSG:32615", 96)
    expected = direct(NESTED, grid)
    assert (expected != SENTINEL).all()
    np.testing.assert_array_equal(CDL(tmp_path, year=2023).read_labels(grid), expected)


def test_a_single_year_root_needs_no_year(tmp_path: Path) -> None:
    (tmp_path / "deep" / "folder").mkdir(parents=True)
    copy = tmp_path / "deep" / "folder" / FLAT.name  # found recursively, like torchgeo's **/ glob
    copy.write_bytes(FLAT.read_bytes())
    grid = grid_at(*centre_of(FLAT), "EPSG:32615", 32)
    np.testing.assert_array_equal(CDL(tmp_path).read_labels(grid), direct(FLAT, grid))


def test_chip_outside_the_product_names_the_chip_and_the_bounds() -> None:
    with rasterio.open(NESTED) as src:
        product = (src.bounds.left, src.bounds.bottom, src.bounds.right, src.bounds.top)
    grid = grid_at(product[2] + 5000, product[3], "EPSG:5070", "EPSG:32615", 64, chip_id="far_east_chip")
    with pytest.raises(SourceError, match="inside product") as info:
        CDL(DATA, year=2023).read_labels(grid)
    message = str(info.value)
    assert "far_east_chip" in message
    assert format_bounds(product) in message
    assert "2023_30m_cdls.tif" in message and "EPSG:5070" in message


def test_corrupt_geotiff_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "2023_30m_cdls.tif").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(SourceError, match="readable GeoTIFF") as info:
        CDL(tmp_path).read_labels(grid_at(*centre_of(NESTED), "EPSG:32615", 8))
    assert str(tmp_path / "2023_30m_cdls.tif") in str(info.value)


def test_truncated_geotiff_fails_on_read_naming_the_file(tmp_path: Path) -> None:
    with rasterio.open(NESTED) as src:
        profile, data = src.profile, src.read(1)
    profile.update(compress=None, tiled=True, blockxsize=16, blockysize=16)
    path = tmp_path / "2023_30m_cdls.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the header survives, half the blocks do not
    source = CDL(tmp_path)
    assert source.index()[0].crs == CRS.from_epsg(5070)
    with pytest.raises(SourceError, match="readable GeoTIFF") as info:
        source.read_labels(grid_at(*centre_of(NESTED), "EPSG:32615", 128))
    assert str(path) in str(info.value)


def test_label_raster_without_crs(tmp_path: Path) -> None:
    with rasterio.open(NESTED) as src:
        profile, data = src.profile, src.read(1)
    profile.pop("crs")
    with rasterio.open(tmp_path / "2023_30m_cdls.tif", "w", **profile) as dst:
        dst.write(data, 1)
    with pytest.raises(SourceError, match="CRS present: the label raster has no CRS") as info:
        CDL(tmp_path).read_labels(grid_at(*centre_of(NESTED), "EPSG:32615", 8))
    assert str(tmp_path / "2023_30m_cdls.tif") in str(info.value)


# ---------------------------------------------------------------- real sample


@pytest.fixture(scope="module")
def clip_root(samples: Path) -> Path:
    return samples / "cdl_2021_clip"


def test_sample_tiles_are_not_product_files(clip_root: Path) -> None:
    assert sorted(p.name for p in (clip_root / "tiles").glob("*.tif"))  # the tiles are there ...
    assert CDL(clip_root).files() == [clip_root / "2021_30m_cdls.tif"]  # ... but only the clip matches
    assert CDL(clip_root, year=2021).files() == [clip_root / "2021_30m_cdls.tif"]
    with pytest.raises(SourceError, match="file pattern"):
        CDL(clip_root / "tiles").files()


@pytest.mark.parametrize("crs", ["utm", "EPSG:3857"])
def test_sample_read_equals_a_direct_reproject(clip_root: Path, crs: str) -> None:
    path = clip_root / "2021_30m_cdls.tif"
    x, y, src_crs = centre_of(path)
    (lon,), (lat,) = transform(CRS.from_user_input(src_crs), CRS.from_epsg(4326), [x], [y])
    zone = math.floor((lon + 180) / 6) + 1
    assert zone == 14 and lat > 0
    grid = grid_at(x + 3000, y - 2000, src_crs, f"EPSG:{32600 + zone}" if crs == "utm" else crs, 256, "sample")
    expected = direct(path, grid)
    assert (expected != SENTINEL).all()
    labels = CDL(clip_root, year=2021).read_labels(grid)
    np.testing.assert_array_equal(labels, expected)
    codes = set(np.unique(labels).tolist())
    assert {1, 5, 176} <= codes  # corn, soybeans and grass/pasture are all over the clip
