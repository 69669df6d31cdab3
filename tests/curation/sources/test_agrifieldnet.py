"""AgriFieldNet reader on the seeded fixture in tests/data/agrifieldnet."""

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
from curation.demo.writers import write_agrifieldnet_field as write_field
from curation.sources import ChipGrid, SourceError, get_source
from curation.sources.agrifieldnet import AgriFieldNet

ROOT = Path(__file__).resolve().parents[2] / "data" / "agrifieldnet"
STEM = "ref_agrifieldnet_competition_v1_labels_train_"


def _load_fixture() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agrifieldnet_fixture_data", ROOT / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


data = _load_fixture()


@pytest.fixture(scope="module")
def source() -> AgriFieldNet:
    return AgriFieldNet(ROOT)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A fresh fixture to damage."""
    data.write_fixture(tmp_path)
    return tmp_path


def band_file(root: Path, chip: str, band: str) -> Path:
    folder = root / "source" / f"ref_agrifieldnet_competition_v1_source_{chip}"
    return folder / f"ref_agrifieldnet_competition_v1_source_{chip}_{band}_10m.tif"


def test_registry_and_info() -> None:
    assert get_source("agrifieldnet") is AgriFieldNet
    info = AgriFieldNet.info
    assert (info.kind, info.region, info.continent, info.years, info.licence) == (
        "chips", "India", "Asia", (2021,), "CC BY 4.0",
    )  # fmt: skip
    assert info.doi == "10.34911/rdnt.wu92p1"
    assert AgriFieldNet.ZERO_FILLED == ("B10",)


def test_discovers_labels_but_not_field_id_rasters(source: AgriFieldNet) -> None:
    beside = sorted(p.name for p in (ROOT / "train_labels").iterdir())
    assert len(beside) == 4 and sum(n.endswith("_field_ids.tif") for n in beside) == 2
    assert [p.name for p in source.files()] == [f"{STEM}849f6.tif", f"{STEM}f2eb7.tif"]
    assert source.chip_ids() == [f"2021_{STEM}849f6", f"2021_{STEM}f2eb7"]  # 001c1 has imagery only


def test_chip_id_stem_and_short_id_name_the_same_chip(source: AgriFieldNet) -> None:
    path = ROOT / "train_labels" / f"{STEM}f2eb7.tif"
    assert source.label_path(f"2021_{STEM}f2eb7") == source.label_path(f"{STEM}f2eb7") == path
    assert source.label_path("f2eb7") == path
    assert source.grid_of("f2eb7").chip_id == f"2021_{STEM}f2eb7"


def test_labels_read_back_equal_the_codes_written(source: AgriFieldNet) -> None:
    for chip, (labels, transform) in data.synthesize().items():
        grid = source.grid_of(chip)
        assert (grid.crs, grid.transform, grid.shape) == (data.CRS_, transform, labels.shape)
        got = source.read_labels(grid)
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, labels)
        assert set(np.unique(got).tolist()) <= set(data.CODES.tolist())


def test_field_id_rasters_mark_the_labelled_pixels() -> None:
    for chip, (labels, _) in data.synthesize().items():
        with rasterio.open(ROOT / "train_labels" / f"{STEM}{chip}_field_ids.tif") as src:
            numbers = src.read(1)
            assert src.dtypes[0] == "uint16"
        np.testing.assert_array_equal(numbers > 0, labels > 0)


def test_shifted_grid_reads_the_overlap_and_fills_no_data(source: AgriFieldNet) -> None:
    labels, transform = data.synthesize()["849f6"]
    shifted = transform * Affine.translation(-3, 5)  # 3 px left and 5 px down
    got = source.read_labels(ChipGrid(data.CRS_, shifted, 16, 16, "849f6"))
    np.testing.assert_array_equal(got[:11, 3:], labels[5:, :13])
    assert (got[11:, :] == 0).all() and (got[:, :3] == 0).all()


def test_other_crs_grid_agrees_with_a_direct_reproject(source: AgriFieldNet) -> None:
    path = ROOT / "train_labels" / f"{STEM}f2eb7.tif"
    dst_crs = CRS.from_epsg(32644)  # the neighbouring UTM zone
    with rasterio.open(path) as src:
        native = src.read(1)
        transform, width, height = calculate_default_transform(
            src.crs, dst_crs, src.width, src.height, *src.bounds, resolution=8.0
        )
        origin = transform * Affine.translation(-2, -2)
        expected = np.full((height + 4, width + 4), -1, dtype=np.int64)
        reproject(
            native.astype(np.int64), expected, src_transform=src.transform, src_crs=src.crs, dst_transform=origin,
            dst_crs=dst_crs, resampling=Resampling.nearest, src_nodata=None, dst_nodata=-1, init_dest_nodata=False,
        )  # fmt: skip
    expected[expected < 0] = 0
    got = source.read_labels(ChipGrid(dst_crs, origin, width + 4, height + 4, f"2021_{STEM}f2eb7"))
    np.testing.assert_array_equal(got, expected)
    assert (got[-1, :] == 0).all()


def test_grid_outside_the_label_raster_is_refused(source: AgriFieldNet) -> None:
    _, transform = data.synthesize()["f2eb7"]
    with pytest.raises(SourceError, match=rf"chip 2021_{STEM}f2eb7: inside product: .*f2eb7\.tif \(500000"):
        source.read_labels(ChipGrid(data.CRS_, transform * Affine.translation(0, 40), 16, 16, "f2eb7"))


def test_image_is_13_bands_in_file_order_with_b10_zero(source: AgriFieldNet) -> None:
    image, grid = source.read_image(f"2021_{STEM}849f6")
    assert image.shape == (13, 16, 16) and image.dtype == np.uint16
    assert grid == source.grid_of("849f6")
    assert [int(plane[0, 0]) for plane in image] == [
        100, 200, 300, 400, 500, 600, 700, 800, 900, 0, 1100, 1200, 1300,
    ]  # fmt: skip
    assert (image[S2_FILE_ORDER.index("B10")] == 0).all()
    assert all((image[i] == data.band_value(b)).all() for i, b in enumerate(S2_FILE_ORDER) if b != "B10")


def test_date_is_refused_for_a_single_composite(source: AgriFieldNet) -> None:
    with pytest.raises(SourceError, match="one Sentinel-2 composite per chip"):
        source.read_image("f2eb7", date="2021_05_01")


def test_missing_band_names_folder_and_band(copy: Path) -> None:
    band_file(copy, "f2eb7", "B8A").unlink()
    band_file(copy, "f2eb7", "B02").unlink()
    folder = copy / "source" / "ref_agrifieldnet_competition_v1_source_f2eb7"
    with pytest.raises(SourceError, match=rf"{folder}: band files present: missing B02, B8A of chip 2021_"):
        AgriFieldNet(copy).read_image("f2eb7")


def test_band_on_another_grid_is_refused(copy: Path) -> None:
    path = band_file(copy, "849f6", "B12")
    write_geotiff(path, np.ones((8, 8), np.uint16), data.CRS_, data.synthesize()["849f6"][1])
    with pytest.raises(SourceError, match=rf"{path}: same grid as label: the band is 8x8 px"):
        AgriFieldNet(copy).read_image("849f6")


def test_corrupt_geotiffs_are_named(copy: Path) -> None:
    label = copy / "train_labels" / f"{STEM}849f6.tif"
    label.write_bytes(b"II*\x00garbage")
    source = AgriFieldNet(copy)
    with pytest.raises(SourceError, match=rf"{label}: readable GeoTIFF"):
        source.grid_of("849f6")
    band = band_file(copy, "f2eb7", "B01")
    band.write_bytes(b"garbage")
    with pytest.raises(SourceError, match=rf"{band}: readable GeoTIFF"):
        source.read_image("f2eb7")


def test_unknown_chip_id_names_root_and_known_ids(source: AgriFieldNet) -> None:
    with pytest.raises(SourceError, match=rf"chip 001c1: known chip: .*under {ROOT} \(2 chips, e\.g\. 2021_"):
        source.read_image("001c1")  # imagery without train labels is not a chip


def test_missing_root_and_only_field_id_rasters(copy: Path, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="raw root exists"):
        AgriFieldNet(tmp_path / "nowhere")
    for chip in data.LABELLED:
        (copy / "train_labels" / f"{STEM}{chip}.tif").unlink()
    with pytest.raises(SourceError, match=r"file pattern: no file matches train_labels/\*\*/.*excluding \*_field_ids"):
        AgriFieldNet(copy).files()


def test_write_image_matches_read_image(source: AgriFieldNet, tmp_path: Path) -> None:
    out = tmp_path / f"2021_{STEM}f2eb7.tif"
    grid = source.write_image(f"2021_{STEM}f2eb7", out)
    expected, _ = source.read_image("f2eb7")
    with rasterio.open(out) as src:
        assert src.descriptions == S2_FILE_ORDER
        assert src.tags()["CROPHARMONY_ZERO_FILLED_BANDS"] == "B10"
        assert src.tags()["CROPHARMONY_SOURCE"] == "agrifieldnet"
        assert (src.crs, src.transform, src.dtypes[0]) == (grid.crs, grid.transform, "uint16")
        np.testing.assert_array_equal(src.read(), expected)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_committed_fixture_is_what_data_py_writes(tmp_path: Path) -> None:
    data.write_fixture(tmp_path)
    written = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*.tif")}
    committed = {p.relative_to(ROOT).as_posix(): p.read_bytes() for p in ROOT.rglob("*.tif")}
    assert written.keys() == committed.keys()
    assert [name for name in written if written[name] != committed[name]] == []


def test_write_field_refuses_bad_input(tmp_path: Path) -> None:
    labels = np.zeros((4, 4), np.uint8)
    image = np.zeros((13, 4, 4), np.uint16)
    with pytest.raises(SourceError, match="5 lower-case letters or digits"):
        write_field(tmp_path, "F2EB7", labels, image, 32643, Affine.identity())
    with pytest.raises(SourceError, match="array shapes"):
        write_field(tmp_path, "f2eb7", labels, image[:, :2], 32643, Affine.identity())
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_torchgeo_reads_the_fixture_as_this_reader_does(source: AgriFieldNet) -> None:
    datasets = pytest.importorskip("torchgeo.datasets")
    dataset = datasets.AgriFieldNet(str(ROOT))
    grid = source.grid_of("f2eb7")
    minx, miny, maxx, maxy = grid.bounds
    sample = dataset[minx:maxx:10.0, miny:maxy:10.0]
    labels = source.read_labels(grid)
    np.testing.assert_array_equal(sample["mask"].numpy(), dataset.ordinal_map[labels.astype(np.int64)].numpy())
    image, _ = source.read_image("f2eb7")
    order = [S2_FILE_ORDER.index(b) for b in dataset.bands]
    np.testing.assert_array_equal(sample["image"].numpy().astype(np.uint16), image[order])


def test_band_values_that_are_not_uint16_are_refused(copy: Path) -> None:
    _, transform = data.synthesize()["849f6"]
    path = band_file(copy, "849f6", "B03")
    write_geotiff(path, np.full((16, 16), -5, np.int16), data.CRS_, transform)
    with pytest.raises(SourceError, match=rf"{path}: uint16 reflectance: band dtype int16"):
        AgriFieldNet(copy).read_image("849f6")
    write_geotiff(path, np.full((16, 16), 7, np.int16), data.CRS_, transform)  # integers that fit are kept
    image, _ = AgriFieldNet(copy).read_image("849f6")
    assert (image[2] == 7).all()
