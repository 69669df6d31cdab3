"""Stage `chips` on the tiny demo world: label chips on each image's grid, the manifest, and failures that stop it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import polars as pl
import pytest
import rasterio

from curation.chips import stage as chips
from curation.chips.config import ChipsParams
from curation.chips.stage import bands_folder
from curation.core.artifacts import MANIFEST
from curation.core.bands import S2_FILE_ORDER
from curation.core.errors import ProblemsError
from curation.core.failures import failures
from curation.core.legends import load_set
from curation.core.outputs import OWNER_MARKER
from curation.core.schemas import class_column, manifest_schema
from curation.core.shared import SharedParams
from curation.core.vrt import write_stack_of
from curation.demo.stage import REGIONS
from curation.inputs.chip_refs import by_source, list_chips, product_bands, read_image, source_inputs
from curation.inputs.unused import unused_inputs
from curation.sources import SOURCES
from tests.curation.stage_world import (
    ALL_SOURCES,
    CHIP_PRODUCTS,
    FOLDER_SOURCES,
    LEGENDS,
    TINY,
    copy_world,
    corrupt,
    demo_world,
    image_chips,
    keep_bands,
    paint_window,
    raster_product,
    shared_params,
)

CLASSES = load_set(LEGENDS, "toolkit").taxonomy.names
EUROCROPS_SET_DIFFERS = "2021_8801_-24060"  # holds HCAT 3301090400 (grain maize): maize in toolkit, other in paper


@dataclass(frozen=True)
class Built:
    """One chips run: its output folder, report, the report file it wrote and its params."""

    out: Path
    report: dict[str, Any]
    report_file: Path
    shared: SharedParams

    @property
    def manifest(self) -> pl.DataFrame:
        return pl.read_parquet(self.out / MANIFEST)


def run_chips(
    folder: Path,
    shared: SharedParams,
    link: str = "copy",
    skip_failed: bool = False,
    out: str = "chips",
    product_images: str = "vrt",
) -> Built:
    """`chips.build` with `folder` as the working directory (the stage writes reports/chips.json there)."""
    report_file = folder / "reports" / "chips.json"
    params = ChipsParams(
        out=folder / out, report=report_file, link=link, product_images=product_images, skip_failed=skip_failed
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        report = chips.build(shared, params, report_file)
    return Built(params.out, report, report_file, shared)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_world(tmp_path_factory)


@pytest.fixture(scope="module")
def built(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return run_chips(tmp_path_factory.mktemp("chips"), shared_params(world))


def rows(built: Built) -> Iterator[dict[str, Any]]:
    yield from built.manifest.iter_rows(named=True)


def test_the_manifest_passes_its_schema_with_one_row_per_image_chip(built: Built) -> None:
    manifest = built.manifest
    assert failures(manifest, manifest_schema(CLASSES, list(SOURCES))) == []
    expected = sorted((s.name, r.chip_id) for s in source_inputs(built.shared) for r in list_chips(s))
    assert len(expected) == len(ALL_SOURCES) * TINY.chips_per_source
    assert list(zip(manifest["source"], manifest["chip_id"], strict=True)) == expected  # sorted, none missing
    assert set(manifest["crosswalk_set"]) == {"toolkit"}
    assert set(manifest["height"]) == set(manifest["width"]) == {TINY.chip_px}
    shown = sorted(p.name for p in built.out.iterdir() if not p.name.startswith("."))  # not the stage's own marker
    assert shown == sorted([*ALL_SOURCES, MANIFEST])


def test_the_report_counts_chips_and_pixels_per_source(built: Built) -> None:
    assert json.loads(built.report_file.read_text()) == built.report
    assert built.report["chips"] == built.manifest.height and built.report["skipped"] == []
    unused = by_source(unused_inputs(built.shared), source_inputs(built.shared))  # the demo world's only warnings
    assert len(built.report["warnings"]) == sum(len(found) for found in unused.values())
    assert built.report["crosswalk_set"] == "toolkit"
    for name in ALL_SOURCES:
        part = built.report["sources"][name]
        assert part["chips"] == TINY.chips_per_source
        assert sum(part["pixels"].values()) == TINY.chips_per_source * TINY.chip_px**2
        assert set(part["pixels"]) == set(CLASSES)


def test_pixel_counts_match_the_label_file_on_the_image_grid(built: Built) -> None:
    for row in rows(built):
        counts = [row[class_column(name)] for name in CLASSES]
        assert sum(counts) == row["height"] * row["width"]
        with (
            rasterio.open(built.out / row["label_path"]) as label,
            rasterio.open(built.out / row["image_path"]) as image,
        ):
            assert (label.crs, label.transform, label.shape) == (image.crs, image.transform, image.shape)
            assert label.count == 1 and label.dtypes[0] == "uint8"
            assert label.tags()["CROPHARMONY_CROSSWALK_SET"] == "toolkit"
            classes = label.read(1)
            assert image.count == 13 and image.dtypes[0] == "uint16"
            assert (row["minx"], row["miny"], row["maxx"], row["maxy"]) == pytest.approx(tuple(image.bounds))
        assert np.bincount(classes.ravel(), minlength=len(CLASSES)).tolist() == counts
        present = counts[1:]
        expected = CLASSES[int(np.argmax(present)) + 1] if any(present) else CLASSES[0]
        assert row["dominant"] == expected
        assert row["grid"] == row["label_grid"]
        suffix = ".vrt" if row["source"] in CHIP_PRODUCTS else ".tif"  # products: a VRT over their band files
        assert row["image_path"] == f"{row['source']}/images/{row['chip_id']}{suffix}"
        assert row["label_path"] == f"{row['source']}/labels/{row['chip_id']}.tif"


def test_folder_images_are_byte_identical_copies_and_products_are_assembled(built: Built) -> None:
    raw = built.shared.raw_root
    for name in FOLDER_SOURCES:
        for chip in image_chips(raw, name):
            copy = built.out / name / "images" / chip.name
            assert copy.read_bytes() == chip.read_bytes()
            assert copy.stat().st_ino != chip.stat().st_ino
    for source in source_inputs(built.shared):
        if source.name not in CHIP_PRODUCTS:
            continue
        for ref in list_chips(source):
            with rasterio.open(built.out / source.name / "images" / f"{ref.chip_id}.vrt") as image:
                assert np.array_equal(image.read(), read_image(ref).data)
                assert image.tags()["CROPHARMONY_ZERO_FILLED_BANDS"] == "B10"
                assert image.descriptions == S2_FILE_ORDER
                assert image.dtypes[0] == "uint16" and image.crs is not None


def test_product_vrts_read_as_the_stacks_and_link_the_band_files(world: Path, tmp_path: Path) -> None:
    """`product_images: vrt` reads as `stack` does, band for band, tag for tag, with the band files linked."""
    shared = shared_params(world)
    vrt = run_chips(tmp_path, shared, link="hardlink", out="vrt")
    stack = run_chips(tmp_path, shared, link="hardlink", out="stack", product_images="stack")
    drop = ("image_path",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in rows(vrt)] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows(stack)
    ]
    for source in source_inputs(shared):
        if source.name not in CHIP_PRODUCTS:
            continue
        for ref in list_chips(source):
            with (
                rasterio.open(vrt.out / source.name / "images" / f"{ref.chip_id}.vrt") as a,
                rasterio.open(stack.out / source.name / "images" / f"{ref.chip_id}.tif") as b,
            ):
                assert np.array_equal(a.read(), b.read())
                assert (a.crs, a.transform, a.descriptions, a.tags()) == (b.crs, b.transform, b.descriptions, b.tags())
            released = tmp_path / "released" / f"{ref.chip_id}.tif"  # what publish writes for a VRT
            write_stack_of(vrt.out / source.name / "images" / f"{ref.chip_id}.vrt", released)
            assert released.read_bytes() == (stack.out / source.name / "images" / f"{ref.chip_id}.tif").read_bytes()
            bands = product_bands(ref).files
            linked = sorted((vrt.out / bands_folder(source.name, ref.chip_id)).iterdir())
            assert [p.stem for p in linked] == sorted(bands)
            for path in linked:
                assert path.stat().st_ino == bands[path.stem].stat().st_ino  # a hard link: no pixel stored twice
        assert not list((vrt.out / source.name / "images").glob("*.tif"))
        assert not (stack.out / source.name / "bands").exists()


def test_lon_lat_lie_in_the_source_region_and_years_are_the_products(built: Built) -> None:
    regions = {region.source: region for region in REGIONS}
    for row in rows(built):
        region = regions[row["source"]]
        assert abs(row["lon"] - region.lon) < 1.0 and abs(row["lat"] - region.lat) < 1.0, row
        assert row["year"] == region.year
        assert row["region"] == SOURCES[row["source"]].info.region
        assert row["continent"] == SOURCES[row["source"]].info.continent


def test_hardlink_shares_the_inode_of_folder_chips(world: Path, tmp_path: Path) -> None:
    linked = run_chips(tmp_path, shared_params(world), link="hardlink")
    for name in FOLDER_SOURCES:
        for chip in image_chips(world, name):
            assert (linked.out / name / "images" / chip.name).stat().st_ino == chip.stat().st_ino
    for name in CHIP_PRODUCTS:  # the VRTs are new (small) files; their band files are links
        assert all(p.stat().st_nlink == 1 for p in (linked.out / name / "images").glob("*.vrt"))
        assert all(p.stat().st_nlink > 1 for p in (linked.out / name / "bands").rglob("*.tif"))


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_builds_are_byte_identical_in_process_and_on_a_local_cluster(built: Built, world: Path, tmp_path: Path) -> None:
    again = run_chips(tmp_path, shared_params(world, scheduler="local", workers=2))
    assert (again.out / MANIFEST).read_bytes() == (built.out / MANIFEST).read_bytes()
    first, second = files_of(built.out), files_of(again.out)
    assert sorted(first) == sorted(second)
    labels = [name for name in first if "/labels/" in name]
    assert len(labels) == len(ALL_SOURCES) * TINY.chips_per_source
    assert all(first[name] == second[name] for name in first)
    assert again.report == built.report


def twelve_bands(raw: Path) -> tuple[str, str, Path]:
    path = image_chips(raw, "cdl")[0]
    keep_bands(path, 12)
    return "cdl", path.stem, path


def corrupted(raw: Path) -> tuple[str, str, Path]:
    path = image_chips(raw, "nccm")[0]
    corrupt(path)
    return "nccm", path.stem, path


def unmapped(raw: Path) -> tuple[str, str, Path]:
    path = image_chips(raw, "nccm")[0]
    with rasterio.open(path) as src:
        paint_window(raster_product(raw, "nccm"), tuple(src.bounds), src.crs, 77)
    return "nccm", path.stem, path


BAD: dict[str, tuple[Callable[[Path], tuple[str, str, Path]], str, tuple[str, ...]]] = {
    # case: (break one chip of the copy: (source, chip id, image file); rule; words the message must hold)
    "12 bands": (twelve_bands, "13 bands", ("bands = 12",)),
    "corrupt GeoTIFF": (corrupted, "readable GeoTIFF", ("not recognized",)),
    "unmapped code": (unmapped, "unmapped codes", ("77 (", str(LEGENDS / "nccm.csv"))),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_broken_chip_stops_the_stage_and_writes_nothing(world: Path, tmp_path: Path, case: str) -> None:
    breaker, rule, words = BAD[case]
    _, _, path = breaker(copy_world(world, tmp_path))
    with pytest.raises(ProblemsError) as caught:
        run_chips(tmp_path, shared_params(tmp_path / "raw"))
    message = str(caught.value)
    assert message.startswith("chips: 1 chip(s) break a rule (set chips.skip_failed: true to leave them out)")
    assert f": {rule}: " in message and str(path) in message
    for word in words:
        assert word in message
    (problem,) = caught.value.problems
    assert problem.rule == rule and str(path) in str(problem)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no chips folder, no .chips.tmp, no report


def test_a_failed_run_keeps_the_previous_output(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    good = run_chips(tmp_path, shared_params(raw))
    before = files_of(good.out)
    report = good.report_file.read_bytes()
    corrupted(raw)
    with pytest.raises(ProblemsError, match="readable GeoTIFF"):
        run_chips(tmp_path, shared_params(raw))
    assert files_of(good.out) == before and good.report_file.read_bytes() == report
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("case", list(BAD))
def test_skip_failed_leaves_the_chip_out_and_lists_it(world: Path, tmp_path: Path, case: str) -> None:
    breaker, rule, _ = BAD[case]
    source, chip_id, path = breaker(copy_world(world, tmp_path))
    skipped = run_chips(tmp_path, shared_params(tmp_path / "raw"), skip_failed=True)
    manifest = skipped.manifest
    assert manifest.height == len(ALL_SOURCES) * TINY.chips_per_source - 1
    assert chip_id not in manifest.filter(pl.col("source") == source)["chip_id"].to_list()
    assert failures(manifest, manifest_schema(CLASSES, list(SOURCES))) == []
    report = json.loads(skipped.report_file.read_text())
    assert report == skipped.report and report["chips"] == manifest.height
    (entry,) = report["skipped"]
    assert (entry["source"], entry["chip_id"]) == (source, chip_id)
    assert any(f": {rule}: " in text and str(path) in text for text in entry["problems"])
    assert report["sources"][source]["chips"] == TINY.chips_per_source - 1


def test_skip_failed_leaves_no_files_of_the_skipped_chip(world: Path, tmp_path: Path) -> None:
    source, chip_id, _ = twelve_bands(copy_world(world, tmp_path))
    skipped = run_chips(tmp_path, shared_params(tmp_path / "raw"), skip_failed=True)
    listed = {r[column] for r in rows(skipped) for column in ("image_path", "label_path")}
    chips_of_bands = {(r["source"], r["chip_id"]) for r in rows(skipped) if r["image_path"].endswith(".vrt")}
    on_disk = {p.relative_to(skipped.out).as_posix() for p in skipped.out.rglob("*") if p.is_file()}
    bands = {name for name in on_disk if name.split("/")[1:2] == ["bands"]}
    assert not (skipped.out / source / "labels" / f"{chip_id}.tif").exists()
    assert on_disk - bands == listed | {MANIFEST, OWNER_MARKER}
    assert {tuple(name.split("/")[0:3:2]) for name in bands} == chips_of_bands  # (source, chip id) of each


def test_the_paper_set_shifts_grain_maize_to_other(built: Built, world: Path, tmp_path: Path) -> None:
    paper = run_chips(tmp_path, shared_params(world, crosswalk_set="paper"))
    assert paper.report["crosswalk_set"] == "paper"
    assert set(paper.manifest["crosswalk_set"]) == {"paper"}
    counts = [class_column(name) for name in CLASSES]
    joined = built.manifest.join(paper.manifest, on=["source", "chip_id"], suffix="_paper")
    assert joined.height == built.manifest.height
    differs = joined.filter(pl.any_horizontal([pl.col(c) != pl.col(f"{c}_paper") for c in counts]))
    assert (EUROCROPS_SET_DIFFERS, "eurocrops") in list(zip(differs["chip_id"], differs["source"], strict=True))
    for row in differs.filter(pl.col("source") == "eurocrops").iter_rows(named=True):
        moved = row["px_maize"] - row["px_maize_paper"]
        assert moved > 0 and row["px_other_paper"] - row["px_other"] == moved
    with rasterio.open(paper.out / "eurocrops" / "labels" / f"{EUROCROPS_SET_DIFFERS}.tif") as label:
        assert label.tags()["CROPHARMONY_CROSSWALK_SET"] == "paper"


def test_unused_files_are_named_in_the_report_and_upper_case_chips_are_cut(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    chip = image_chips(raw, "cdl")[0]
    chip.rename(chip.with_suffix(".TIF"))
    (raw / "sentinel2" / "cdl" / "notes.txt").write_text("exported from QGIS\n")
    built = run_chips(tmp_path, shared_params(raw))
    assert chip.stem in built.manifest.filter(pl.col("source") == "cdl")["chip_id"].to_list()
    assert (built.out / "cdl" / "images" / f"{chip.stem}.tif").read_bytes() == chip.with_suffix(".TIF").read_bytes()
    (warning,) = [w for w in built.report["warnings"] if w["file"].endswith("notes.txt")]
    assert (warning["source"], warning["rule"]) == ("cdl", "unused file")
    assert json.loads(built.report_file.read_text())["warnings"] == built.report["warnings"]


def test_a_link_under_a_source_folder_stops_the_stage(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    chip = image_chips(raw, "nccm")[0]
    moved = tmp_path / chip.name
    chip.rename(moved)
    chip.symlink_to(moved)
    with pytest.raises(ProblemsError) as caught:
        run_chips(tmp_path, shared_params(raw))
    (problem,) = caught.value.problems
    assert (problem.file, problem.rule) == (str(chip), "no symbolic links")
    assert not (tmp_path / "chips").exists()


def test_labels_under_image_nodata_are_ignore(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    chip = image_chips(raw, "south_america_soybean")[0]  # every label pixel is soybean or other
    with rasterio.open(chip, "r+") as dst:
        dst.nodata = 0
        data = dst.read()
        data[:, : TINY.chip_px // 2] = 0
        dst.write(data)
    built = run_chips(tmp_path, shared_params(raw))
    with rasterio.open(built.out / "south_america_soybean" / "labels" / chip.name) as label:
        classes = label.read(1)
    assert (classes[: TINY.chip_px // 2] == 0).all() and (classes[TINY.chip_px // 2 :] != 0).any()
    row = built.manifest.filter(pl.col("chip_id") == chip.stem).row(0, named=True)
    assert row["px_ignore"] >= TINY.chip_px**2 // 2


def test_an_unknown_parcel_code_stops_the_stage_naming_the_crosswalk(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    layer = raw / "eurocrops" / "LV_2021" / "LV_2021_EC21.shp"
    frame = gpd.read_file(layer)
    frame["EC_hcat_c"] = "1100000000"  # every parcel: every chip touches one
    frame.to_file(layer, engine="pyogrio")
    with pytest.raises(ProblemsError) as caught:
        run_chips(tmp_path, shared_params(raw))
    assert {p.rule for p in caught.value.problems} == {"unmapped codes"}
    assert all("1100000000" in p.detail and str(LEGENDS / "eurocrops.csv") in p.fix for p in caught.value.problems)
