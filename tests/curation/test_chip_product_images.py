"""validate and chips on a chip product read with a folder of 13-band chips (`shared.sources.<name>.images`).

A tiny seeded raw root written by the tests: South Africa Crop Type in torchgeo's layout (three 16 x 16 px fields
at 10 m in UTM 34S, with their per-band files) and `sentinel2/south_africa_crop_type/`, one 13-band chip per field
in EPSG:3857 named as the study named its chips (`2017_<field>.tif`), with a real B10. Then the demo world's own
chip folders (`demo.chip_folders`), end to end.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_points

from curation.chips import stage as chips
from curation.chips.config import ChipsParams
from curation.core.artifacts import MANIFEST
from curation.core.bands import S2_FILE_ORDER
from curation.core.errors import ProblemsError, SourceError
from curation.core.geotiff import write_geotiff
from curation.core.legends import load_set
from curation.core.remap import remap_raster
from curation.core.shared import SharedParams, SourceParams
from curation.demo.stage import build as build_demo
from curation.demo.writers import write_sact_field
from curation.inputs.chip_refs import label_cut, list_chips, scan_chips, source_inputs
from curation.sources.base import ChipGrid
from curation.sources.chip_product import OUTSIDE_RULE
from curation.sources.south_africa_crop_type import SouthAfricaCropType
from curation.validate import stage as validate
from curation.validate.config import ValidateParams
from tests.curation.stage_world import LEGENDS, TINY, keep_bands, shared_params

SA = "south_africa_crop_type"
AFN = "agrifieldnet"
PX = 16
UTM34S = CRS.from_epsg(32734)
MERCATOR = CRS.from_epsg(3857)
FIELDS = {"10": (345000.0, 6230000.0), "11": (352000.0, 6224000.0), "12": (360000.0, 6218000.0)}
TOOLKIT = load_set(LEGENDS, "toolkit")


def chip_grid(field: str, shift: tuple[float, float] = (0.0, 0.0)) -> ChipGrid:
    """A PX x PX chip at 10 m in EPSG:3857 over a field's centre (moved by `shift` metres of Web Mercator)."""
    left, top = FIELDS[field]
    x, y = warp_points(UTM34S, MERCATOR, [left + PX * 5], [top - PX * 5])
    x0 = round((x[0] + shift[0]) / 10) * 10 - PX * 5
    y0 = round((y[0] + shift[1]) / 10) * 10 + PX * 5
    return ChipGrid(MERCATOR, Affine(10, 0, x0, 0, -10, y0), PX, PX, f"2017_{field}")


def write_chip(raw: Path, grid: ChipGrid, bands: tuple[str, ...] = S2_FILE_ORDER) -> Path:
    """A 13-band uint16 chip with every band non-zero (B10 too), its bands described in `bands` order."""
    path = raw / "sentinel2" / SA / f"{grid.chip_id}.tif"
    stack = np.stack([np.full(grid.shape, 100 * (i + 1), dtype=np.uint16) for i in range(len(bands))])
    write_geotiff(path, stack, grid.crs, grid.transform, bands)
    return path


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    rng = np.random.default_rng(0)
    for field, (left, top) in FIELDS.items():
        labels = rng.integers(1, 10, size=(PX, PX), dtype=np.uint8)
        image = np.ones((13, PX, PX), dtype=np.uint16)
        write_sact_field(root / SA, field, "2017_07_01", labels, image, UTM34S, from_origin(left, top, 10, 10))
        write_chip(root, chip_grid(field))
    return root


def shared_of(raw: Path, month: int | None = None) -> SharedParams:
    """The demo profile's shared params with one source: South Africa read from its image folder."""
    conf = SourceParams(labels=Path(SA), images=Path("sentinel2") / SA, label_crs=None, year=2017, month=month)
    return shared_params(raw).model_copy(update={"chip_px": PX, "sources": {SA: conf}})


def validate_params(folder: Path) -> ValidateParams:
    return ValidateParams(max_ignore_share=0.6, max_nodata_share=0.5, out=folder / "reports" / "validation")


def run_chips(folder: Path, shared: SharedParams, link: str = "hardlink") -> tuple[Path, dict[str, object]]:
    params = ChipsParams(
        out=folder / "chips", report=folder / "chips.json", link=link, product_images="vrt", skip_failed=False
    )
    return params.out, chips.build(shared, params, params.report)


def test_the_folder_lists_the_chips_and_the_product_cuts_their_labels(raw: Path) -> None:
    source = next(iter(source_inputs(shared_of(raw))))
    refs = list_chips(source)
    assert [r.chip_id for r in refs] == ["2017_10", "2017_11", "2017_12"]
    assert [r.image for r in refs] == sorted((raw / "sentinel2" / SA).glob("*.tif"))
    assert {r.year for r in refs} == {2017}
    product = SouthAfricaCropType(raw / SA)
    for ref in refs:
        assert ref.image is not None
        grid = ChipGrid.of_raster(ref.image)
        cut = label_cut(ref, grid)
        assert cut.outside == 0 and cut.codes.shape == (PX, PX)
        np.testing.assert_array_equal(cut.codes, product.cut_labels(grid).codes)


def test_validate_and_chips_read_the_folder_and_link_its_chips(raw: Path, tmp_path: Path) -> None:
    shared = shared_of(raw)
    summary = validate.check(shared, validate_params(tmp_path))
    assert summary["sources"] == {SA: {"chips": 3, "errors": 0, "warnings": 0}}  # per-band files are not scanned
    out, report = run_chips(tmp_path, shared)
    assert report["chips"] == 3 and report["warnings"] == [] and report["skipped"] == []
    manifest = pl.read_parquet(out / MANIFEST)
    assert manifest["chip_id"].to_list() == ["2017_10", "2017_11", "2017_12"]
    assert set(manifest["crs"]) == {"EPSG:3857"}
    product = SouthAfricaCropType(raw / SA)
    for row in manifest.iter_rows(named=True):
        image = out / row["image_path"]
        source_chip = raw / "sentinel2" / SA / f"{row['chip_id']}.tif"
        assert image.samefile(source_chip)  # linked, not re-stacked: stored once
        assert row["grid"] == row["label_grid"]
        with rasterio.open(out / row["label_path"]) as label:
            written = label.read(1)
        grid = ChipGrid.of_raster(source_chip)
        expected = remap_raster(product.cut_labels(grid).codes, TOOLKIT[SA])
        np.testing.assert_array_equal(written, expected)
        with rasterio.open(image) as src:
            assert src.count == 13 and src.read(S2_FILE_ORDER.index("B10") + 1).min() > 0  # a real B10


def test_a_chip_partly_outside_the_product_warns_naming_the_chip(raw: Path, tmp_path: Path) -> None:
    (raw / "sentinel2" / SA / "2017_12.tif").unlink()
    partly = write_chip(raw, chip_grid("12", shift=(0.0, 120.0)))  # its top rows lie north of the field
    params = validate_params(tmp_path)
    summary = validate.check(shared_of(raw), params)
    assert summary["ok"] is True
    report = json.loads((params.out / f"{SA}.json").read_text())
    outside = [w for w in report["warnings"] if w["rule"] == OUTSIDE_RULE]
    assert len(outside) == 1 and outside[0]["file"] == str(partly)
    assert "chip 2017_12: " in outside[0]["detail"] and " of its 256 pixels (" in outside[0]["detail"]
    detail = outside[0]["detail"]
    assert "lie outside every label raster of south_africa_crop_type and read as its no-data code 0" in detail
    assert "check the chip's georeference" in outside[0]["fix"]
    out, _ = run_chips(tmp_path, shared_of(raw))
    row = pl.read_parquet(out / MANIFEST).filter(pl.col("chip_id") == "2017_12").row(0, named=True)
    assert 0 < row["px_ignore"] < PX * PX  # the uncovered pixels are ignore, the chip is kept


def test_a_chip_entirely_outside_the_product_is_an_error_naming_its_file(raw: Path, tmp_path: Path) -> None:
    far = write_chip(raw, replace(chip_grid("12", shift=(0.0, 5000.0)), chip_id="2017_77"))
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared_of(raw), validate_params(tmp_path))
    problems = [p for p in caught.value.problems if p.rule == OUTSIDE_RULE]
    assert [p.file for p in problems] == [str(far)]
    assert "touch none of the 3 label rasters" in problems[0].detail  # the file names the chip
    assert "move the chip out of the image folder" in problems[0].fix
    with pytest.raises(ProblemsError, match=rf"{far}: {OUTSIDE_RULE}: "):
        run_chips(tmp_path, shared_of(raw))


def test_a_chip_with_12_bands_is_an_error_naming_the_file_rule_and_fix(raw: Path, tmp_path: Path) -> None:
    chip = raw / "sentinel2" / SA / "2017_11.tif"
    keep_bands(chip, 12)
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared_of(raw), validate_params(tmp_path))
    message = str(caught.value)
    assert f"{chip}: 13 bands: " in message and "bands = 12" in message and "13 Sentinel-2 bands" in message
    assert {p.file for p in caught.value.problems} == {str(chip)}


def test_a_chip_in_another_band_order_is_an_error_naming_the_file_rule_and_fix(raw: Path, tmp_path: Path) -> None:
    swapped = ("B8A", *S2_FILE_ORDER[1:-1], "B01")
    chip = write_chip(raw, chip_grid("11"), bands=swapped)
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared_of(raw), validate_params(tmp_path))
    message = str(caught.value)
    assert f"{chip}: band order: " in message
    assert f"its band descriptions give the order {','.join(swapped)}" in message
    assert "set shared.bands to their order" in message and "re-export the chips" in message


def test_a_month_with_an_image_folder_is_an_error_naming_the_param(raw: Path, tmp_path: Path) -> None:
    source = next(iter(source_inputs(shared_of(raw, month=7))))
    with pytest.raises(SourceError, match=rf"shared\.sources\.{SA}\.month: month: is 7, but the chips"):
        scan_chips(source)
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared_of(raw, month=7), validate_params(tmp_path))
    [problem] = [p for p in caught.value.problems if p.rule == "month"]
    assert problem.file == str(raw / "sentinel2" / SA)
    assert f"set shared.sources.{SA}.month to null" in problem.fix


def test_the_demo_world_with_chip_folders_runs_validate_and_chips(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    build_demo(TINY.model_copy(update={"chip_folders": (SA, AFN)}), LEGENDS, raw)
    base = shared_params(raw)
    sources = {
        SA: base.sources[SA].model_copy(update={"images": Path("sentinel2") / SA, "month": None}),
        AFN: base.sources[AFN].model_copy(update={"images": Path("sentinel2") / AFN}),
    }
    shared = base.model_copy(update={"sources": sources})
    summary = validate.check(shared, validate_params(tmp_path))
    assert summary["sources"] == {
        name: {"chips": TINY.chips_per_source, "errors": 0, "warnings": 0} for name in sources
    }
    out, report = run_chips(tmp_path, shared)
    assert report["chips"] == 2 * TINY.chips_per_source
    manifest = pl.read_parquet(out / MANIFEST)
    assert set(manifest["crs"]) == {"EPSG:3857"}
    for row in manifest.iter_rows(named=True):
        assert (out / row["image_path"]).samefile(raw / "sentinel2" / row["source"] / f"{row['chip_id']}.tif")
        assert row["px_ignore"] < TINY.chip_px**2  # labelled, not edge fill
