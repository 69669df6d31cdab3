from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from typer.testing import CliRunner

from curation.cli.commands import app
from curation.core.legends import CrosswalkSet
from curation.core.registry import demo_sources
from curation.core.remap import remap_raster
from curation.demo.config import DemoParams
from curation.demo.stage import MARKER, build
from curation.demo.synth import S2_BANDS
from curation.sources import SOURCES
from curation.sources.base import ChipGrid

ROOT = Path(__file__).resolve().parents[2]
LEGENDS = ROOT / "curation" / "legends"
TINY = DemoParams(seed=7, out=Path("unused"), chip_px=32, chips_per_source=6, cloud_probability=0.2)
CHIP_SOURCES = ["cdl", "eurocrops", "nccm", "south_america_soybean"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "raw"
    build(TINY, LEGENDS, out)
    return out


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(world: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    build(TINY, LEGENDS, again)
    assert files_of(world) == files_of(again)
    other = tmp_path / "other"
    build(TINY.model_copy(update={"seed": 8}), LEGENDS, other)
    assert files_of(world) != files_of(other)
    assert not list(tmp_path.glob(".*.tmp"))


def test_native_formats_and_layouts(world: Path) -> None:
    with rasterio.open(world / "cdl" / "2023_30m_cdls" / "2023_30m_cdls.tif") as src:
        assert src.crs.to_epsg() == 5070 and src.res == (30.0, 30.0) and src.dtypes[0] == "uint8"
        assert src.tags()["CROPHARMONY_SYNTHETIC"] == MARKER
        codes = set(np.unique(src.read(1)).tolist())
    assert {1, 5, 3, 26, 111} <= codes  # maize, soybean, rice, a double crop, non-crop land
    for path in (
        world / "nccm" / "CDL2019_clip.tif",
        world / "south_america_soybean" / "SouthAmerica_Soybean_2021.tif",
    ):
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 4326
    info = pyogrio.read_info(world / "eurocrops" / "LV_2021" / "LV_2021_EC21.shp")
    assert "3059" in info["crs"]
    assert {"EC_trans_n", "EC_hcat_n", "EC_hcat_c"} <= set(info["fields"])
    assert (world / "eurocrops" / "HCAT2.csv").is_file()
    for source in ("south_africa_crop_type", "agrifieldnet"):
        reader = SOURCES[source](world / source)
        assert reader.grid_of(reader.chip_ids()[0]).crs.to_epsg() // 100 in (326, 327)  # UTM
    manifest = json.loads((world / "DEMO_WORLD.json").read_text())
    assert manifest["synthetic"] is True and manifest["seed"] == 7
    assert all((world / s / "SYNTHETIC.txt").read_text().strip() == MARKER for s in demo_sources())


def test_chips_are_13_band_uint16_in_web_mercator(world: Path) -> None:
    for source in CHIP_SOURCES:
        chips = sorted((world / "sentinel2" / source).glob("*.tif"))
        assert len(chips) == TINY.chips_per_source
        for chip in chips:
            year, col, row = chip.stem.split("_")
            with rasterio.open(chip) as src:
                assert (src.count, src.dtypes[0], src.width, src.crs.to_epsg()) == (13, "uint16", 32, 3857)
                assert src.descriptions == S2_BANDS
                assert src.bounds.left == pytest.approx(int(col) * 320) and src.bounds.top == pytest.approx(
                    -int(row) * 320
                )
                assert int(year) in SOURCES[source].info.years


def test_every_source_reads_back_through_its_reader(world: Path, toolkit: CrosswalkSet) -> None:
    for source in CHIP_SOURCES:
        reader = SOURCES[source](world / source)
        for chip in sorted((world / "sentinel2" / source).glob("*.tif")):
            classes = remap_raster(reader.read_labels(ChipGrid.of_raster(chip)), toolkit[source], where=chip.name)
            assert (classes > 0).mean() > 0.5  # mostly labelled, not edge fill
    for source in ("south_africa_crop_type", "agrifieldnet"):
        reader = SOURCES[source](world / source)
        ids = reader.chip_ids()
        assert len(ids) == TINY.chips_per_source
        image, grid = reader.read_image(ids[0])
        assert image.shape == (13, 32, 32) and image.dtype == np.uint16
        assert not image[S2_BANDS.index("B10")].any()
        remap_raster(reader.read_labels(grid), toolkit[source])


def class_means(world: Path, source: str, toolkit: CrosswalkSet) -> tuple[np.ndarray, np.ndarray]:
    reader = SOURCES[source](world / source)
    pixels, labels = [], []
    for chip in sorted((world / "sentinel2" / source).glob("*.tif")):
        classes = remap_raster(reader.read_labels(ChipGrid.of_raster(chip)), toolkit[source])
        with rasterio.open(chip) as src:
            image = src.read().reshape(13, -1).T.astype(np.float64)
        pixels.append(image)
        labels.append(classes.ravel())
    return np.concatenate(pixels), np.concatenate(labels)


def test_imagery_carries_the_class_and_shifts_across_regions(world: Path, toolkit: CrosswalkSet) -> None:
    """A nearest-centroid model fit on CDL does well on CDL and measurably worse on NCCM (maize and soybean)."""
    x_us, y_us = class_means(world, "cdl", toolkit)
    x_cn, y_cn = class_means(world, "nccm", toolkit)
    classes = [1, 2]  # maize, soybean: present in both regions
    centroids = np.stack([x_us[y_us == c].mean(0) for c in classes])

    def accuracy(x: np.ndarray, y: np.ndarray) -> float:
        keep = np.isin(y, classes)
        predicted = np.array(classes)[np.argmin(((x[keep, None, :] - centroids[None]) ** 2).sum(-1), axis=1)]
        return float((predicted == y[keep]).mean())

    in_region, cross_region = accuracy(x_us, y_us), accuracy(x_cn, y_cn)
    assert in_region > 0.8
    assert in_region - cross_region > 0.05


def test_cli_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "world"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--chips-per-source", "2", "--chip-px", "16"])
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output
    assert len(list((out / "sentinel2" / "cdl").glob("*.tif"))) == 2
    bad = CliRunner().invoke(app, ["demo", "--out", str(out), "--chip-px", "3"])
    assert bad.exit_code == 1 and "chip_px" in bad.output


def test_chip_folders_add_the_products_13_band_chips_and_change_nothing_else(world: Path, tmp_path: Path) -> None:
    out = tmp_path / "raw"
    build(TINY.model_copy(update={"chip_folders": ("south_africa_crop_type",)}), LEGENDS, out)
    before, after = files_of(world), files_of(out)
    folder = "sentinel2/south_africa_crop_type/"
    added = sorted(name for name in after if name not in before)
    assert added == sorted(name for name in after if name.startswith(folder))
    changed = [name for name in before if before[name] != after.get(name)]
    assert sorted(changed) == [".cropharmony-stage", "DEMO_WORLD.json"]  # the stage's file list, the manifest
    assert json.loads(after["DEMO_WORLD.json"])["chip_folders"] == ["south_africa_crop_type"]
    assert "chip_folders" not in json.loads(before["DEMO_WORLD.json"])  # the default world's bytes are kept
    reader = SOURCES["south_africa_crop_type"](out / "south_africa_crop_type")
    assert [Path(name).stem for name in added] == reader.chip_ids()  # the study's names: `2017_<field>`
    for name in added:
        with rasterio.open(out / name) as src:
            assert (src.count, src.dtypes[0], src.width, src.crs.to_epsg()) == (13, "uint16", 32, 3857)
            assert src.descriptions == S2_BANDS and src.tags()["CROPHARMONY_SYNTHETIC"] == MARKER
            assert src.read(S2_BANDS.index("B10") + 1).any()  # a real B10, as the study's chips
        cut = reader.cut_labels(ChipGrid.of_raster(out / name))
        assert cut.outside == 0  # each chip lies over its own field


def test_chip_folders_are_refused_for_other_sources_and_taken_from_the_cli(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cdl: not a chip product"):
        DemoParams.model_validate(TINY.model_dump() | {"chip_folders": ["cdl"]})
    out = tmp_path / "world"
    args = ["demo", "--out", str(out), "--chips-per-source", "2", "--chip-px", "16", "--chip-folders", "agrifieldnet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list((out / "sentinel2" / "agrifieldnet").glob("2021_*.tif"))) == 2
    assert not (out / "sentinel2" / "south_africa_crop_type").exists()
