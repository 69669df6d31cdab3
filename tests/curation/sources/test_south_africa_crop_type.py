"""South Africa Crop Type reader on the seeded fixture in tests/data/south_africa_crop_type."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from curation.core.bands import S2_FILE_ORDER
from curation.core.geotiff import write_geotiff
from curation.demo.writers import write_sact_field as write_field
from curation.sources import ChipGrid, SourceError, get_source
from curation.sources.south_africa_crop_type import SouthAfricaCropType

ROOT = Path(__file__).resolve().parents[2] / "data" / "south_africa_crop_type"


def _load_fixture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sact_fixture_data", ROOT / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


data = _load_fixture()


@pytest.fixture(scope="module")
def source() -> SouthAfricaCropType:
    return SouthAfricaCropType(ROOT)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A fresh fixture to damage."""
    data.write_fixture(tmp_path)
    return tmp_path


def band_file(root: Path, field: str, date: str, band: str) -> Path:
    return root / "train" / "imagery" / "s2" / field / date / f"{field}_{date}_{band}_10m.tif"


def test_registry_and_info() -> None:
    assert get_source("south_africa_crop_type") is SouthAfricaCropType
    info = SouthAfricaCropType.info
    assert (info.kind, info.continent, info.years, info.licence) == ("chips", "Africa", (2017,), "CC BY 4.0")
    assert info.doi == "10.34911/rdnt.j0co8q"
    assert info.crosswalk == "south_africa_crop_type.csv"
    assert SouthAfricaCropType.ZERO_FILLED == ("B10",)
    assert SouthAfricaCropType.native_bands() == tuple(b for b in S2_FILE_ORDER if b != "B10")


def test_discovers_label_rasters_and_chip_ids(source: SouthAfricaCropType) -> None:
    assert [p.relative_to(ROOT).as_posix() for p in source.files()] == [
        "train/labels/17.tif",
        "train/labels/2199.tif",
        "train/labels/2642.tif",
    ]
    assert source.chip_ids() == ["2017_17", "2017_2199", "2017_2642"]
    assert source.year == 2017


def test_chip_id_and_bare_field_id_name_the_same_chip(source: SouthAfricaCropType) -> None:
    assert source.label_path("2017_2199") == source.label_path("2199") == ROOT / "train" / "labels" / "2199.tif"
    assert source.grid_of("2199").chip_id == "2017_2199"


def test_labels_read_back_equal_the_codes_written(source: SouthAfricaCropType) -> None:
    for field, (labels, transform) in data.synthesize().items():
        grid = source.grid_of(f"2017_{field}")
        assert (grid.crs, grid.transform, grid.shape) == (data.CRS_, transform, labels.shape)
        got = source.read_labels(grid)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, labels)


def test_shifted_grid_reads_the_overlap_and_fills_no_data(source: SouthAfricaCropType) -> None:
    labels, transform = data.synthesize()["2199"]
    shifted = transform * Affine.translation(4, 4)  # 4 px right and 4 px down
    got = source.read_labels(ChipGrid(data.CRS_, shifted, 16, 16, "2017_2199"))
    np.testing.assert_array_equal(got[:12, :12], labels[4:, 4:])
    assert (got[12:, :] == 0).all() and (got[:, 12:] == 0).all()


def test_other_crs_grid_agrees_with_a_direct_reproject(source: SouthAfricaCropType) -> None:
    path = ROOT / "train" / "labels" / "2642.tif"
    dst_crs = CRS.from_epsg(32735)  # the neighbouring UTM zone
    with rasterio.open(path) as src:
        native = src.read(1)
        transform, width, height = calculate_default_transform(
            src.crs, dst_crs, src.width, src.height, *src.bounds, resolution=7.0
        )
        expected = np.full((height + 4, width + 4), -1, dtype=np.int64)  # 2 px margin beyond the label raster
        origin = transform * Affine.translation(-2, -2)
        reproject(
            native.astype(np.int64), expected, src_transform=src.transform, src_crs=src.crs, dst_transform=origin,
            dst_crs=dst_crs, resampling=Resampling.nearest, src_nodata=None, dst_nodata=-1, init_dest_nodata=False,
        )  # fmt: skip
    expected[expected < 0] = 0
    got = source.read_labels(ChipGrid(dst_crs, origin, width + 4, height + 4, "2642"))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    assert (got[0, :] == 0).all()  # the margin is No Data
    assert set(np.unique(got[2:-2, 2:-2])) - {0} <= set(np.unique(native))


def test_grid_outside_the_label_raster_is_refused(source: SouthAfricaCropType) -> None:
    _, transform = data.synthesize()["2199"]
    far = transform * Affine.translation(100, 0)
    with pytest.raises(SourceError, match=r"chip 2017_2199: inside product: .*2199\.tif \(345000, 6.22984e\+06"):
        source.read_labels(ChipGrid(data.CRS_, far, 16, 16, "2017_2199"))


def test_image_is_13_bands_in_file_order_with_b10_zero(source: SouthAfricaCropType) -> None:
    image, grid = source.read_image("2017_2642")
    assert image.shape == (13, 16, 16) and image.dtype == np.uint16
    assert grid == source.grid_of("2642")
    for i, band in enumerate(S2_FILE_ORDER):
        expected = 0 if band == "B10" else data.band_value(0, band)
        assert (image[i] == expected).all(), band
    assert image[-1][0, 0] == 1013  # B8A (position 13) comes last, although torchgeo lists it after B08


def test_earliest_complete_date_is_chosen(source: SouthAfricaCropType) -> None:
    assert source.dates("2199") == ["2017_04_01", "2017_05_04", "2017_07_22"]
    image, _ = source.read_image("2199")
    chosen = data.DATES["2199"].index(data.EARLIEST_COMPLETE["2199"])
    assert chosen == 1  # the fixture's first date lacks B8A
    assert image[0, 0, 0] == data.band_value(chosen, "B01")
    later, _ = source.read_image("2017_2199", date="2017-07-22")
    assert later[0, 0, 0] == data.band_value(2, "B01")


def test_incomplete_explicit_date_names_folder_and_band(source: SouthAfricaCropType) -> None:
    folder = ROOT / "train" / "imagery" / "s2" / "2199" / "2017_04_01"
    with pytest.raises(SourceError, match=rf"{folder}: band files present: missing B8A of chip 2017_2199"):
        source.read_image("2199", date="2017_04_01")
    with pytest.raises(SourceError, match="missing B01, B02"):
        source.read_image("2199", date="2017_12_31")
    with pytest.raises(SourceError, match="date format"):
        source.read_image("2199", date="July")


def test_no_complete_date_lists_what_each_date_lacks(copy: Path) -> None:
    band_file(copy, "2642", "2017_07_22", "B03").unlink()
    with pytest.raises(SourceError, match=r"s2/2642: complete Sentinel-2 date: .*\(2017_07_22 lacks B03\)"):
        SouthAfricaCropType(copy).read_image("2642")


def test_band_on_another_grid_is_refused(copy: Path) -> None:
    _, transform = data.synthesize()["17"]
    path = band_file(copy, "17", "2017_11_28", "B05")
    write_geotiff(path, np.ones((16, 16), np.uint16), data.CRS_, transform * Affine.translation(1, 0))
    with pytest.raises(SourceError, match=rf"{path}: same grid as label"):
        SouthAfricaCropType(copy).read_image("17")


def test_corrupt_geotiffs_are_named(copy: Path) -> None:
    label = copy / "train" / "labels" / "2642.tif"
    label.write_bytes(b"not a tiff at all")
    source = SouthAfricaCropType(copy)
    with pytest.raises(SourceError, match=rf"{label}: readable GeoTIFF"):
        source.read_labels(ChipGrid(data.CRS_, Affine.identity(), 4, 4, "2642"))
    band = band_file(copy, "2199", "2017_05_04", "B11")
    band.write_bytes(b"\x00" * 64)
    with pytest.raises(SourceError, match=rf"{band}: readable GeoTIFF"):
        source.read_image("2199")


def test_unknown_chip_id_names_root_and_known_ids(source: SouthAfricaCropType) -> None:
    with pytest.raises(SourceError, match=rf"chip 2017_9999: known chip: .*under {ROOT} \(3 chips, e\.g\..*2017_"):
        source.read_labels(ChipGrid(data.CRS_, Affine.identity(), 4, 4, "2017_9999"))
    with pytest.raises(SourceError, match="Fix: use a chip id like those"):
        source.read_image("9999")


def test_missing_root_and_unmatched_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="raw root exists"):
        SouthAfricaCropType(tmp_path / "nowhere")
    (tmp_path / "train" / "labels").mkdir(parents=True)
    (tmp_path / "train" / "labels" / "field_a.tif").write_bytes(b"")  # not digits: not a field of the product
    with pytest.raises(SourceError, match=r"file pattern: no file matches train/labels/<field_id>\.tif"):
        SouthAfricaCropType(tmp_path).files()


def test_year_outside_the_product_is_refused() -> None:
    with pytest.raises(SourceError, match=r"year covered: .*2017 only, not 2018"):
        SouthAfricaCropType(ROOT, year=2018)
    assert SouthAfricaCropType(ROOT, year=2017).chip_ids()[0] == "2017_17"


def test_write_image_is_atomic_deterministic_and_described(source: SouthAfricaCropType, tmp_path: Path) -> None:
    out = tmp_path / "images" / "2017_2199.tif"
    grid = source.write_image("2017_2199", out)
    first = out.read_bytes()
    source.write_image("2199", out)
    assert out.read_bytes() == first
    assert sorted(p.name for p in out.parent.iterdir()) == ["2017_2199.tif"]  # no temp file left behind
    expected, _ = source.read_image("2199")
    with rasterio.open(out) as src:
        assert (src.count, src.dtypes[0], src.crs, src.transform) == (13, "uint16", grid.crs, grid.transform)
        assert src.descriptions == S2_FILE_ORDER
        assert src.tags()["CROPHARMONY_ZERO_FILLED_BANDS"] == "B10"  # recorded, not silently zero
        assert src.compression is not None and src.compression.value == "DEFLATE"
        np.testing.assert_array_equal(src.read(), expected)
    assert ChipGrid.of_raster(out) == grid


def test_committed_fixture_is_what_data_py_writes(tmp_path: Path) -> None:
    data.write_fixture(tmp_path)
    written = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*.tif")}
    committed = {p.relative_to(ROOT).as_posix(): p.read_bytes() for p in ROOT.rglob("*.tif")}
    assert written.keys() == committed.keys()
    assert [name for name in written if written[name] != committed[name]] == []


def test_write_field_refuses_bad_input(tmp_path: Path) -> None:
    labels = np.zeros((4, 4), np.uint8)
    image = np.zeros((13, 4, 4), np.uint16)
    with pytest.raises(SourceError, match="field ids are digits"):
        write_field(tmp_path, "f1", "2017_07_01", labels, image, 32734, Affine.identity())
    with pytest.raises(SourceError, match="array shapes"):
        write_field(tmp_path, "1", "2017_07_01", labels, image[:12], 32734, Affine.identity())
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_torchgeo_reads_the_fixture_as_this_reader_does(source: SouthAfricaCropType) -> None:
    datasets = pytest.importorskip("torchgeo.datasets")
    dataset = datasets.SouthAfricaCropType(str(ROOT))  # torchgeo indexes July dates only
    grid = source.grid_of("2199")
    minx, miny, maxx, maxy = grid.bounds
    sample = dataset[minx:maxx:10.0, miny:maxy:10.0, dataset.bounds[2]]
    np.testing.assert_array_equal(sample["mask"].numpy(), source.read_labels(grid))
    image, _ = source.read_image("2199", date="2017_07_22")
    order = [S2_FILE_ORDER.index(b) for b in dataset.bands]
    np.testing.assert_array_equal(sample["image"].numpy().astype(np.uint16), image[order])
