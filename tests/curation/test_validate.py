"""Stage `validate` on the tiny demo world: it passes, and each broken input gives one error naming file and rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import polars as pl
import pytest
import rasterio
from affine import Affine
from rasterio.io import DatasetReader
from shapely.geometry import Polygon

from curation.core.errors import ProblemsError
from curation.core.fact_schemas import LABEL_HISTOGRAMS_SCHEMA
from curation.core.failures import failures
from curation.core.geotiff import write_geotiff
from curation.core.shared import SharedParams
from curation.inputs import images
from curation.inputs.chip_refs import ChipImage, ChipRef, SourceInput, by_source, list_chips, source_inputs
from curation.inputs.unused import unused_inputs
from curation.validate import stage as validate
from curation.validate.config import ValidateParams
from tests.curation.stage_world import (
    ALL_SOURCES,
    CHIP_PRODUCTS,
    LEGENDS,
    PARAMS,
    TINY,
    copy_world,
    corrupt,
    demo_world,
    image_chips,
    keep_bands,
    paint_window,
    raster_product,
    reproject_raster,
    shared_params,
    with_source,
    zero_band,
)

COLUMNS = ["severity", "source", "file", "rule", "detail", "fix"]
SHAPEFILE = Path("eurocrops") / "LV_2021" / "LV_2021_EC21.shp"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_world(tmp_path_factory)


def validate_params(folder: Path, max_ignore_share: float = 0.6, max_nodata_share: float = 0.5) -> ValidateParams:
    return ValidateParams(
        max_ignore_share=max_ignore_share, max_nodata_share=max_nodata_share, out=folder / "reports" / "validation"
    )


def test_the_tiny_world_passes_and_every_report_is_written(world: Path, tmp_path: Path) -> None:
    params = validate_params(tmp_path)
    shared = shared_params(world)
    summary = validate.check(shared, params)
    assert summary["ok"] is True and summary["crosswalk_set"] == "toolkit"
    assert list(summary["sources"]) == list(ALL_SOURCES)
    unused = by_source(unused_inputs(shared), source_inputs(shared))  # the only warnings the demo world may give
    for name in ALL_SOURCES:
        warned = len(unused.get(name, []))
        assert summary["sources"][name] == {"chips": TINY.chips_per_source, "errors": 0, "warnings": warned}
        report = json.loads((params.out / f"{name}.json").read_text())
        assert report["source"] == name and report["ok"] is True and report["errors"] == []
        assert report["chips"] == TINY.chips_per_source
        assert report["rows_checked"]["image chips"] == TINY.chips_per_source
        assert report["rows_checked"]["label windows"] > 0
    assert json.loads((params.out / "summary.json").read_text()) == summary
    table = pl.read_parquet(params.out / "failures.parquet")
    assert table.columns == COLUMNS and table.height == sum(len(found) for found in unused.values())
    assert summary["inputs"] == {"warnings": len(unused.get(None, []))}
    assert set(table["severity"]) <= {"warning"} and set(table["rule"]) <= {"unused file"}
    histograms = pl.read_parquet(params.out / "label_histograms.parquet")
    assert failures(histograms, LABEL_HISTOGRAMS_SCHEMA) == []
    rows = histograms.group_by("source").len()
    for name, count in rows.iter_rows():
        assert count == json.loads((params.out / f"{name}.json").read_text())["rows_checked"]["label windows"]
    per_chip = histograms.group_by("source", "chip_id").agg(pl.col("pixels").sum())
    assert per_chip.height == TINY.chips_per_source * len(ALL_SOURCES)  # every chip window, before harmonization
    assert set(per_chip["pixels"]) == {TINY.chip_px**2}
    assert sorted(p.name for p in params.out.parent.iterdir()) == ["validation"]  # no .tmp folder left behind


def make_bowtie(raw: Path) -> Path:
    path = raw / SHAPEFILE
    frame = gpd.read_file(path)
    x0, y0, x1, y1 = frame.geometry.iloc[3].bounds
    frame.loc[3, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # edges cross: a bow tie
    frame.to_file(path, engine="pyogrio")
    return path


def make_text_code(raw: Path) -> Path:
    path = raw / SHAPEFILE
    frame = gpd.read_file(path)
    frame.loc[5, "EC_hcat_c"] = "33010101a"
    frame.to_file(path, engine="pyogrio")
    return path


def twelve_bands(raw: Path) -> Path:
    path = image_chips(raw, "cdl")[0]
    keep_bands(path, 12)
    return path


def reprojected(raw: Path) -> Path:
    path = raster_product(raw, "south_america_soybean")
    reproject_raster(path, "EPSG:3857")
    return path


def unmapped(raw: Path) -> Path:
    chip = image_chips(raw, "nccm")[0]  # label windows are reported on their image chip
    with rasterio.open(chip) as src:
        paint_window(raster_product(raw, "nccm"), tuple(src.bounds), src.crs, 77)  # a code the crosswalk lacks
    return chip


def corrupted(raw: Path) -> Path:
    path = image_chips(raw, "nccm")[1]
    corrupt(path)
    return path


def zeroed(raw: Path) -> Path:
    path = image_chips(raw, "eurocrops")[0]
    zero_band(path, 4)  # B04
    return path


CASES: dict[str, tuple[Callable[[Path], Path], str, tuple[str, ...]]] = {
    # case: (break the copy, returning the file the error must name; rule; other words the message must hold)
    "12 bands": (twelve_bands, "13 bands", ("bands = 12", "13 Sentinel-2 bands")),
    "other CRS": (reprojected, "declared CRS", ("is in EPSG:3857 but params declare EPSG:4326", "label_crs")),
    "unmapped code": (unmapped, "code in crosswalk", ("code 77", str(LEGENDS / "nccm.csv"))),
    "corrupt GeoTIFF": (corrupted, "readable GeoTIFF", ("not recognized", "regenerate the chip")),
    "all-zero band": (zeroed, "no all-zero band", ("zero_bands = B04", "re-export the chip")),
    "text HCAT code": (make_text_code, "integer code", ("parcel 5 has code '33010101a'", "EC_hcat_c")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_input_gives_one_error_naming_the_file_and_the_rule(world: Path, tmp_path: Path, case: str) -> None:
    breaker, rule, words = CASES[case]
    raw = copy_world(world, tmp_path)
    broken = breaker(raw)
    params = validate_params(tmp_path)
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared_params(raw), params)
    error = caught.value
    message = str(error)
    assert message.startswith("validation failed: ") and str(params.out / "failures.parquet") in message
    assert f"{broken}: {rule}: " in message
    for word in words:
        assert word in message
    assert any(p.file == str(broken) and p.rule == rule for p in error.problems)
    assert {p.file for p in error.problems} == {str(broken)} or case == "unmapped code"
    table = pl.read_parquet(params.out / "failures.parquet")  # the reports are written even when rules break
    assert table.columns == COLUMNS
    errors = table.filter(pl.col("severity") == "error")
    assert str(broken) in errors.filter(pl.col("rule") == rule)["file"].to_list()
    summary = json.loads((params.out / "summary.json").read_text())
    assert summary["ok"] is False
    failing = {name for name, counts in summary["sources"].items() if counts["errors"]}
    assert len(failing) == 1  # only the broken source fails


def test_an_unmapped_code_is_reported_on_every_chip_it_touches(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    unmapped(raw)
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared_params(raw), validate_params(tmp_path))
    problems = caught.value.problems
    assert {p.rule for p in problems} == {"code in crosswalk"}
    assert {p.file for p in problems} <= {str(p) for p in image_chips(raw, "nccm")}
    assert all("code 77" in p.detail and "px) is missing from" in p.detail for p in problems)


def test_a_label_crs_unlike_the_params_is_an_error_naming_the_key(world: Path, tmp_path: Path) -> None:
    shared = with_source(shared_params(world), "nccm", label_crs="EPSG:3857")
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared, validate_params(tmp_path))
    (problem,) = caught.value.problems
    assert problem.file == str(raster_product(world, "nccm")) and problem.rule == "declared CRS"
    assert "EPSG:4326 but params declare EPSG:3857" in problem.detail
    assert "shared.sources.nccm.label_crs" in problem.fix


def test_a_high_ignore_share_only_warns(world: Path, tmp_path: Path) -> None:
    params = validate_params(tmp_path, max_ignore_share=0.05)
    summary = validate.check(shared_params(world), params)
    assert summary["ok"] is True
    warned = {name: counts["warnings"] for name, counts in summary["sources"].items() if counts["warnings"]}
    assert warned and all(counts["errors"] == 0 for counts in summary["sources"].values())
    name = next(n for n in warned if any(r["rule"] == "ignore share" for r in report_of(params, n)["warnings"]))
    report = report_of(params, name)
    assert report["ok"] is True and len(report["warnings"]) == warned[name]
    warning = report["warnings"][0]
    assert warning["rule"] == "ignore share" and warning["severity"] == "warning"
    assert "of its label pixels are ignore (above 5%)" in warning["detail"]
    table = pl.read_parquet(params.out / "failures.parquet")
    assert set(table["severity"].to_list()) == {"warning"}
    assert table.height == sum(warned.values()) + summary["inputs"]["warnings"]


def report_of(params: ValidateParams, name: str) -> dict[str, Any]:
    return dict(json.loads((params.out / f"{name}.json").read_text()))


def write_params(folder: Path, typo: bool) -> Path:
    text = PARAMS.read_text()
    text = text.replace("legends_dir: curation/legends", f"legends_dir: {LEGENDS}")
    text = text.replace("out: reports/validation", "out: out/validation")
    if typo:
        text = text.replace("  chip_px: 64 ", "  chip_pxx: 64 ", 1)
        assert "chip_pxx" in text
    path = folder / "params.yaml"
    path.write_text(text)
    return path


def test_a_params_typo_exits_1_with_did_you_mean_and_writes_nothing(tmp_path: Path) -> None:
    params = write_params(tmp_path, typo=True)
    done = subprocess.run(
        [sys.executable, "-m", "curation.validate", "--params", str(params)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "did you mean 'chip_px'?" in done.stderr and "'shared.chip_pxx'" in done.stderr
    assert str(params) in done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_the_shared_params_helper_matches_the_profile(world: Path) -> None:
    shared = shared_params(world)
    assert isinstance(shared, SharedParams) and shared.raw_root == world and shared.dask.scheduler == "synchronous"


def test_a_text_code_is_named_by_the_same_feature_number_everywhere(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    make_text_code(raw)
    with pytest.raises(ProblemsError) as caught:
        validate.check(shared_params(raw), validate_params(tmp_path))
    details = [p.detail for p in caught.value.problems]
    assert "parcel 5 has code '33010101a'" in details
    from_reader = [d for d in details if d.startswith("feature ")]
    assert from_reader and all(d.startswith("feature 5 has") for d in from_reader)


def test_pixel_facts_are_read_once_and_a_changed_chip_is_read_again(tmp_path: Path) -> None:
    """Validate leaves each chip's pixel facts in the cache for chips; a rewritten file (same size) misses it."""
    path = tmp_path / "2020_1_1.tif"
    data = np.arange(13 * 16 * 16, dtype=np.uint16).reshape(13, 16, 16)
    write_geotiff(path, data, "EPSG:3857", Affine(10, 0, 0, 0, -10, 0))
    ref = ChipRef(SourceInput("cdl", tmp_path, tmp_path, None, None, None), path.stem, 2020, path)
    reads: list[Path] = []
    strips = images._strips

    def counted(src: DatasetReader, header: images.ChipHeader) -> images.ChipPixels:
        reads.append(Path(src.name))
        return strips(src, header)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(images, "_strips", counted)
        first = images.inspect_image(ref, 13, 16)
        assert images.inspect_image(ref, 13, 16).pixels == first.pixels and len(reads) == 1  # the second: cached
        assert first.pixels is not None and first.pixels.maxima[12] == float(data[12].max())
        before = path.stat().st_ctime_ns
        os.link(path, tmp_path / "linked.tif")  # what chips' `link: auto` and DVC's hardlink cache do to a chip
        assert path.stat().st_nlink == 2 and path.stat().st_ctime_ns >= before  # a new ctime, the same bytes
        assert images.inspect_image(ref, 13, 16).pixels == first.pixels and len(reads) == 1  # same bytes: cached
        data[12] = 0  # a zero band now: same size on disk is not enough to hit the cache
        write_geotiff(path, data, "EPSG:3857", Affine(10, 0, 0, 0, -10, 0))
        again = images.inspect_image(ref, 13, 16)
        assert len(reads) == 2 and again.pixels is not None and again.pixels.maxima[12] == 0.0


def test_a_products_pixel_facts_are_cached_by_every_band_file(world: Path, tmp_path: Path) -> None:
    """A chip product's chip is assembled once; `assemble=False` then reads none of its 12 band files until one changes.

    That is what lets chips link the band files under a VRT without reading them (`chips.product_images: vrt`).
    """
    raw = copy_world(world, tmp_path)  # new paths: nothing of these chips is cached yet
    source = next(s for s in source_inputs(shared_params(raw)) if s.name == CHIP_PRODUCTS[0])
    ref = list_chips(source)[0]
    assembled: list[str] = []
    read_image = images.read_image

    def counted(chip: ChipRef) -> ChipImage:
        assembled.append(chip.chip_id)
        return read_image(chip)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(images, "read_image", counted)
        first = images.inspect_image(ref, 13, TINY.chip_px, assemble=False)
        assert len(assembled) == 1 and first.assembled is not None and first.bands is not None
        cached = images.inspect_image(ref, 13, TINY.chip_px, assemble=False)
        assert len(assembled) == 1 and cached.assembled is None  # from the cache: no band file read
        assert (cached.header, cached.pixels) == (first.header, first.pixels)
        assert images.inspect_image(ref, 13, TINY.chip_px).assembled is not None and len(assembled) == 2
        band = first.bands.files["B03"]
        with rasterio.open(band) as src:
            data, crs, transform = src.read(1), src.crs, src.transform
        band.unlink()  # the DVC cache's files are read-only hard links: replace, never write through
        write_geotiff(band, np.zeros_like(data), crs, transform)
        again = images.inspect_image(ref, 13, TINY.chip_px, assemble=False)
        assert len(assembled) == 3 and again.pixels is not None and again.pixels.maxima[2] == 0.0
        assert first.pixels is not None and first.pixels.maxima[2] > 0.0
