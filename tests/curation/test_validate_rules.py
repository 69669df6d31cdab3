"""validate's rules on inputs the demo world lacks: unknown parcel codes, several product years, links, unused and
badly named files, band order, per-band files, nodata, oversized headers, invalid geometries."""

from __future__ import annotations

import json
import os
import shutil
import tracemalloc
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import polars as pl
import pytest
import rasterio
from shapely.geometry import Polygon

from curation.core.bands import S2_FILE_ORDER
from curation.core.errors import Problem, ProblemsError
from curation.core.shared import SharedParams
from curation.inputs.chip_refs import scan_chips, source_inputs
from curation.inputs.facts import ChipTask, chip_facts
from curation.validate import stage as validate
from curation.validate.config import ValidateParams
from tests.curation.stage_world import (
    CHIP_PX,
    LEGENDS,
    TINY,
    copy_world,
    demo_world,
    image_chips,
    raster_product,
    shared_params,
    zero_band,
)

SHAPEFILE = Path("eurocrops") / "LV_2021" / "LV_2021_EC21.shp"
REVERSED = tuple(reversed(S2_FILE_ORDER))


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_world(tmp_path_factory)


def params_in(folder: Path, max_nodata_share: float = 0.5) -> ValidateParams:
    return ValidateParams(max_ignore_share=1.0, max_nodata_share=max_nodata_share, out=folder / "validation")


def errors_of(raw: Path, folder: Path, shared: SharedParams | None = None) -> tuple[str, list[Problem]]:
    """The message and every error row (not only the first shown) of a validate run expected to fail."""
    params = params_in(folder)
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared or shared_params(raw), params)
    table = pl.read_parquet(params.out / "failures.parquet").filter(pl.col("severity") == "error")
    rows = [Problem(r["file"], r["rule"], r["detail"], r["fix"]) for r in table.iter_rows(named=True)]
    return str(caught.value), rows


def warnings_of(params: ValidateParams, source: str) -> list[dict[str, Any]]:
    return list(json.loads((params.out / f"{source}.json").read_text())["warnings"])


def set_code(raw: Path, feature: int, code: str) -> Path:
    path = raw / SHAPEFILE
    frame = gpd.read_file(path)
    frame.loc[feature, "EC_hcat_c"] = code
    frame.to_file(path, engine="pyogrio")
    return path


def test_an_unknown_hcat_code_in_a_parcel_layer_names_the_layer_the_rule_and_the_fix(
    world: Path, tmp_path: Path
) -> None:
    raw = copy_world(world, tmp_path)
    layer = set_code(raw, 2, "1100000000")  # no HCAT branch starts with 11: the crosswalk has no row for it
    set_code(raw, 7, "1100000000")
    message, errors = errors_of(raw, tmp_path)
    assert "KeyError" not in message and f"{layer}: code in crosswalk: " in message
    (parcels,) = [p for p in errors if p.file == str(layer)]
    assert "HCAT code 1100000000 of 2 parcel(s) (parcel 2, 7) is missing from" in parcels.detail
    assert parcels.fix.startswith(f"add a row (code,name,target) for it to {LEGENDS / 'eurocrops.csv'}")


def test_a_root_holding_several_product_years_passes_and_checks_each_chip_year(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    product = raster_product(raw, "nccm")
    shutil.copyfile(product, product.with_name("CDL2018_clip.tif"))  # torchgeo keeps every year under one root
    chip = image_chips(raw, "nccm")[0]
    chip.rename(chip.with_name(chip.name.replace("2019_", "2018_", 1)))
    params = params_in(tmp_path)
    summary = validate.check(shared_params(raw), params)  # year: null, as in the profile
    assert summary["ok"] is True and summary["sources"]["nccm"]["errors"] == 0
    report = json.loads((params.out / "nccm.json").read_text())
    assert report["rows_checked"]["raster products"] == 2  # the 2018 and the 2019 file, each read with its year


def test_a_linked_folder_under_a_source_is_an_error_naming_the_link(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    real = tmp_path / "elsewhere" / "LV_2021"
    shutil.move(raw / "eurocrops" / "LV_2021", real)
    (raw / "eurocrops" / "LV_2021").symlink_to(real, target_is_directory=True)
    chip = image_chips(raw, "cdl")[0]
    moved = tmp_path / "elsewhere" / chip.name
    shutil.move(chip, moved)
    chip.symlink_to(moved)
    message, errors = errors_of(raw, tmp_path)
    links = {p.file: p for p in errors if p.rule == "no symbolic links"}
    assert set(links) == {str(raw / "eurocrops" / "LV_2021"), str(chip)}
    assert f"a link to the folder {real}" in links[str(raw / "eurocrops" / "LV_2021")].detail
    assert "shared.sources.eurocrops.labels" in links[str(raw / "eurocrops" / "LV_2021")].fix
    assert "copy the data in" in links[str(chip)].fix and "shared.sources.cdl.images" in links[str(chip)].fix
    assert "DVC" in message


def test_unused_files_in_an_image_folder_are_named_and_upper_case_chips_are_read(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    folder = raw / "sentinel2" / "cdl"
    chip = image_chips(raw, "cdl")[0]
    chip.rename(chip.with_suffix(".TIF"))
    (folder / "notes.txt").write_text("exported from QGIS\n")
    (folder / "old").mkdir()
    (folder / "old" / "2023_1_2.tif").write_bytes(b"")
    params = params_in(tmp_path)
    summary = validate.check(shared_params(raw), params)
    assert summary["ok"] is True and summary["sources"]["cdl"]["chips"] == TINY.chips_per_source
    unused = {w["file"]: w for w in warnings_of(params, "cdl") if w["rule"] == "unused file"}
    assert set(unused) == {str(folder / "notes.txt"), str(folder / "old")}
    assert "'.txt' files are not read" in unused[str(folder / "notes.txt")]["detail"]
    assert "a subfolder (1 file(s))" in unused[str(folder / "old")]["detail"]
    table = pl.read_parquet(params.out / "failures.parquet")
    assert str(folder / "notes.txt") in table.filter(pl.col("rule") == "unused file")["file"].to_list()


@pytest.mark.parametrize("name", ["2023_1,2.tif", "2023_1\n2.tif", ".-x.tif"])
def test_a_chip_id_outside_the_safe_pattern_is_an_error(world: Path, tmp_path: Path, name: str) -> None:
    raw = copy_world(world, tmp_path)
    chip = image_chips(raw, "cdl")[0]
    bad = chip.with_name(name)
    chip.rename(bad)
    if name.startswith("."):  # a hidden file is not a chip: named as unused, and not read
        listing = scan_chips(next(s for s in source_inputs(shared_params(raw)) if s.name == "cdl"))
        assert [p.file for p in listing.unused] == [str(bad)] and not listing.errors
        return
    _, errors = errors_of(raw, tmp_path)
    (problem,) = errors
    assert (problem.file, problem.rule, problem.fix) == (str(bad), "chip id", "rename the file")


def describe(path: Path, names: tuple[str, ...]) -> None:
    with rasterio.open(path, "r+") as dst:
        for i, name in enumerate(names, start=1):
            dst.set_band_description(i, name)


def test_band_descriptions_unlike_shared_bands_are_an_error_naming_both_orders(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    chip = image_chips(raw, "nccm")[0]
    describe(chip, REVERSED)
    _, errors = errors_of(raw, tmp_path)
    (problem,) = errors
    assert (problem.file, problem.rule) == (str(chip), "band order")
    assert f"order {','.join(REVERSED)}, but shared.bands is {','.join(S2_FILE_ORDER)}" in problem.detail
    assert f"set shared.bands to their order ({','.join(REVERSED)})" in problem.fix


def test_a_reordered_shared_bands_names_every_chip_and_zero_bands_by_their_description(
    world: Path, tmp_path: Path
) -> None:
    raw = copy_world(world, tmp_path)
    chip = image_chips(raw, "eurocrops")[0]
    zero_band(chip, 4)  # B04 by its description; B03 by its place in the reordered shared.bands
    swapped = list(S2_FILE_ORDER)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    shared = shared_params(raw).model_copy(update={"bands": tuple(swapped)})
    _, errors = errors_of(raw, tmp_path, shared)
    assert {p.rule for p in errors} == {"band order", "no all-zero band"}
    (zero,) = [p for p in errors if p.rule == "no all-zero band"]
    assert zero.file == str(chip) and zero.detail.endswith("zero_bands = B04")
    assert {p.file for p in errors if p.rule == "band order"} >= {str(p) for p in image_chips(raw, "cdl")}


def test_a_folder_of_per_band_files_gives_one_error_with_the_stacking_hint(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    folder = raw / "sentinel2" / "nccm"
    for chip in image_chips(raw, "nccm"):
        with rasterio.open(chip) as src:
            data, profile = src.read(), src.profile
        profile.update(count=1)
        for band, name in zip(data, S2_FILE_ORDER, strict=True):
            with rasterio.open(folder / f"{chip.stem}_{name}.tif", "w", **profile) as dst:
                dst.write(band, 1)
        chip.unlink()
    _, errors = errors_of(raw, tmp_path)
    (problem,) = errors
    assert (problem.file, problem.rule) == (str(folder), "one file per chip")
    assert "gdal_merge.py -separate" in problem.fix and "shared.bands order" in problem.fix


def set_nodata(path: Path, value: float, rows: slice | None = None) -> None:
    """Declare `value` as the chip's nodata and write it into every band over `rows` (all rows: None)."""
    with rasterio.open(path, "r+") as dst:
        dst.nodata = value
        data = dst.read()
        data[:, rows if rows is not None else slice(None)] = value
        dst.write(data)


def test_an_all_nodata_chip_is_an_error_and_a_mostly_nodata_chip_a_warning(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    empty, mostly = image_chips(raw, "cdl")[:2]
    set_nodata(empty, 0)
    set_nodata(mostly, 0, slice(0, CHIP_PX * 3 // 4))
    _, errors = errors_of(raw, tmp_path)
    (problem,) = errors
    assert (problem.file, problem.rule) == (str(empty), "not all nodata")
    assert problem.fix.startswith("remove the chip")
    empty.unlink()
    params = params_in(tmp_path / "again")
    assert validate.check(shared_params(raw), params)["ok"] is True
    (warning,) = [w for w in warnings_of(params, "cdl") if w["rule"] == "nodata share"]
    assert warning["file"] == str(mostly) and "75% of its pixels hold no data" in warning["detail"]


def test_a_raster_nodata_value_mapped_to_a_real_class_is_an_error(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    product = raster_product(raw, "nccm")
    with rasterio.open(product, "r+") as dst:
        dst.nodata = 1  # maize in the crosswalk
    _, errors = errors_of(raw, tmp_path)
    (problem,) = errors
    assert (problem.file, problem.rule) == (str(product), "nodata maps to ignore")
    assert "nodata value 1 maps to maize" in problem.detail
    assert f"set the target of code 1 to ignore in {LEGENDS / 'nccm.csv'}" in problem.fix


def write_huge(path: Path, like: Path) -> None:
    """A 6000 x 6000 x 13 uint16 chip of zeros, deflate and sparse (no tile written): a few KiB on disk."""
    with rasterio.open(like) as src:
        crs, transform = src.crs, src.transform
    with rasterio.open(
        path, "w", driver="GTiff", width=6000, height=6000, count=13, dtype="uint16", crs=crs,
        transform=transform, compress="deflate", tiled=True, blockxsize=256, blockysize=256, sparse_ok=True,
    ):  # fmt: skip
        pass


def test_an_oversized_chip_is_reported_by_its_header_without_reading_its_pixels(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    chip = image_chips(raw, "nccm")[0]
    write_huge(chip, image_chips(world, "nccm")[0])
    assert chip.stat().st_size < 1_000_000  # 936 MB of pixels when read
    shared = shared_params(raw)
    ref = next(r for r in scan_chips(source_inputs(shared)[2]).refs if r.image == chip)
    tracemalloc.start()
    try:
        facts = chip_facts(ChipTask(ref, shared.legends_dir, shared.crosswalk_set, shared.bands, shared.chip_px))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000 and facts.histogram == [] and facts.image is not None
    assert (facts.image["height"], facts.image["zero_bands"], facts.image["nodata_share"]) == (6000, "", None)
    _, errors = errors_of(raw, tmp_path)
    assert {(p.file, p.rule) for p in errors} == {(str(chip), f"{CHIP_PX} px high"), (str(chip), f"{CHIP_PX} px wide")}


def test_invalid_geometries_warn_once_per_layer_with_the_make_valid_repair(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    path = raw / SHAPEFILE
    frame = gpd.read_file(path)
    for feature in (3, 4):
        x0, y0, x1, y1 = frame.geometry.iloc[feature].bounds
        frame.loc[feature, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # a bow tie
    frame.to_file(path, engine="pyogrio")
    params = params_in(tmp_path)
    assert validate.check(shared_params(raw), params)["ok"] is True
    (warning,) = [w for w in warnings_of(params, "eurocrops") if w["rule"] == "valid geometry"]
    assert warning["file"] == str(path) and warning["detail"].startswith("2 parcel(s) have an invalid geometry")
    assert "shapely.make_valid" in warning["detail"] and "Fix geometries" in warning["fix"]


def test_the_fact_rows_name_pixels_by_band_and_hold_no_nan(world: Path) -> None:
    shared = shared_params(world)
    ref = scan_chips(source_inputs(shared)[0]).refs[0]
    facts = chip_facts(ChipTask(ref, shared.legends_dir, shared.crosswalk_set, shared.bands, shared.chip_px))
    assert facts.image is not None and facts.image["band_order"] == ",".join(S2_FILE_ORDER)
    assert facts.image["nodata_share"] is None and not np.isnan(sum(r["pixels"] for r in facts.histogram))
    assert os.fspath(ref.image) == facts.image["file"]
