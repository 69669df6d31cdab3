"""What the validate and chips stages read: sources from params, chip discovery, chip years and image months."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from curation.core.bands import S2_FILE_ORDER
from curation.core.errors import Problem
from curation.core.failures import fill
from curation.inputs.chip_refs import (
    CHIP_ID,
    SourceInput,
    by_source,
    chip_year,
    crs_name,
    list_chips,
    read_image,
    read_labels,
    scan_chips,
    source_inputs,
)
from curation.inputs.images import band_name
from curation.inputs.links import link_problems
from curation.sources.base import SourceError
from tests.curation.stage_world import (
    ALL_SOURCES,
    CHIP_PRODUCTS,
    FOLDER_SOURCES,
    TINY,
    copy_world,
    demo_world,
    image_chips,
    shared_params,
    with_source,
)

SA = "south_africa_crop_type"


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_world(tmp_path_factory)


def source(raw: Path, name: str, **changes: object) -> SourceInput:
    shared = with_source(shared_params(raw), name, **changes) if changes else shared_params(raw)
    return next(s for s in source_inputs(shared) if s.name == name)


def test_source_inputs_follow_params_order_under_the_raw_root(world: Path) -> None:
    inputs = source_inputs(shared_params(world))
    assert [s.name for s in inputs] == list(ALL_SOURCES)
    cdl = inputs[0]
    assert cdl.labels == world / "cdl" and cdl.images == world / "sentinel2" / "cdl"
    assert (cdl.label_crs, cdl.year, cdl.month) == ("EPSG:5070", None, None)
    sa = inputs[ALL_SOURCES.index(SA)]
    assert sa.images is None and (sa.year, sa.month) == (2017, 7)


@pytest.mark.parametrize("name", FOLDER_SOURCES)
def test_folder_sources_list_their_image_chips_sorted_with_the_year_of_the_name(world: Path, name: str) -> None:
    refs = list_chips(source(world, name))
    files = image_chips(world, name)
    assert len(refs) == TINY.chips_per_source == len(files)
    assert [r.image for r in refs] == files
    assert [r.chip_id for r in refs] == [p.stem for p in files] == sorted(r.chip_id for r in refs)
    assert {r.year for r in refs} == {int(files[0].stem.split("_")[0])}
    assert all(r.source.name == name for r in refs)


@pytest.mark.parametrize(("name", "year"), [(SA, 2017), ("agrifieldnet", 2021)])
def test_chip_products_list_their_fields_as_chips_without_image_files(world: Path, name: str, year: int) -> None:
    refs = list_chips(source(world, name))
    assert len(refs) == TINY.chips_per_source
    assert all(r.image is None and r.year == year for r in refs)
    assert all(r.chip_id.startswith(f"{year}_") for r in refs)
    assert [r.chip_id for r in refs] == sorted(r.chip_id for r in refs)
    image = read_image(refs[0])
    assert image.data.shape == (13, TINY.chip_px, TINY.chip_px) and image.dtype == "uint16"
    assert image.zero_filled == ("B10",) and not image.data[S2_FILE_ORDER.index("B10")].any()
    assert read_labels(refs[0], image.grid).shape == (TINY.chip_px, TINY.chip_px)


def test_a_folder_chip_reads_with_its_own_grid_and_labels_on_it(world: Path) -> None:
    ref = list_chips(source(world, "nccm"))[0]
    image = read_image(ref)
    with rasterio.open(ref.image) as src:
        assert np.array_equal(image.data, src.read())
        assert image.grid.transform == src.transform and image.grid.crs == src.crs
    assert image.res == (10.0, 10.0) and image.zero_filled == ()
    codes = read_labels(ref, image.grid)
    assert codes.shape == (TINY.chip_px, TINY.chip_px)
    assert set(np.unique(codes).tolist()) <= {0, 1, 2, 3, 15}  # NCCM's codes in the demo


def test_chip_year_comes_from_the_name_prefix_else_from_params(world: Path) -> None:
    cdl = source(world, "cdl", year=2020)
    assert chip_year(Path("2019_12_-34.tif"), cdl) == 2019  # the name wins over params
    assert chip_year(Path("tile_12_-34.tif"), cdl) == 2020
    assert chip_year(Path("20190_1_2.tif"), cdl) == 2020  # five digits are no year prefix


def test_a_chip_without_a_year_and_no_year_in_params_names_the_fix(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    first = image_chips(raw, "cdl")[0]
    renamed = first.with_name("tile_" + first.name.split("_", 1)[1])
    first.rename(renamed)
    with pytest.raises(SourceError) as caught:
        list_chips(source(raw, "cdl"))
    message = str(caught.value)
    assert str(renamed) in message
    assert "chip year" in message and "shared.sources.cdl.year is null" in message
    assert "{year}_{col}_{row}.tif" in message and "set the year in params" in message
    refs = list_chips(source(raw, "cdl", year=2023))  # the fix the message names works
    assert {r.chip_id: r.year for r in refs}[renamed.stem] == 2023


def test_a_missing_image_folder_names_the_path_and_the_fix(world: Path, tmp_path: Path) -> None:
    missing = source(world, "eurocrops", images=tmp_path / "nowhere")
    with pytest.raises(SourceError) as caught:
        list_chips(missing)
    message = str(caught.value)
    assert str(tmp_path / "nowhere") in message and "image folder exists" in message
    assert "source 'eurocrops'" in message and "shared.sources.eurocrops.images" in message


def test_an_empty_image_folder_says_what_to_put_there(world: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"no \*\.tif \(or \*\.tiff\) chip in the folder of source 'cdl'") as caught:
        list_chips(source(world, "cdl", images=tmp_path / "empty"))
    assert str(tmp_path / "empty") in str(caught.value)


def test_a_folder_source_without_images_is_refused(world: Path) -> None:
    with pytest.raises(SourceError, match=r"shared\.sources\.nccm\.images"):
        list_chips(source(world, "nccm", images=None))


def add_april(raw: Path) -> tuple[str, str]:
    """Give the first South Africa field a second, earlier date (April) with different pixels."""
    chip_id = list_chips(source(raw, SA))[0].chip_id
    field = chip_id.split("_", 1)[1]
    folder = raw / SA / "train" / "imagery" / "s2" / field
    july = folder / "2017_07_01"
    april = folder / "2017_04_01"
    april.mkdir()
    for band_file in july.glob("*.tif"):
        target = april / band_file.name.replace("2017_07_01", "2017_04_01")
        shutil.copyfile(band_file, target)
        with rasterio.open(target, "r+") as dst:
            dst.write(dst.read(1) + 7, 1)
    return chip_id, field


def test_south_africa_takes_the_month_params_ask_for(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    chip_id, _ = add_april(raw)

    def first_image(month: int | None) -> np.ndarray:
        ref = next(r for r in list_chips(source(raw, SA, month=month)) if r.chip_id == chip_id)
        return read_image(ref).data

    july, first, april = first_image(7), first_image(None), first_image(4)
    b04 = S2_FILE_ORDER.index("B04")
    assert np.array_equal(april, first)  # no month: the first complete date
    assert np.array_equal(april[b04], july[b04] + 7)
    assert not april[S2_FILE_ORDER.index("B10")].any() and not july[S2_FILE_ORDER.index("B10")].any()


def test_a_month_without_imagery_names_the_field_folder(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    chip_id, field = add_april(raw)
    ref = next(r for r in list_chips(source(raw, SA, month=5)) if r.chip_id == chip_id)
    with pytest.raises(SourceError) as caught:
        read_image(ref)
    message = str(caught.value)
    assert str(raw / SA / "train" / "imagery" / "s2" / field) in message
    assert "complete Sentinel-2 date" in message and "in month 5" in message and "choose another month" in message


def test_a_month_on_agrifieldnet_is_an_error_naming_the_fix(world: Path) -> None:
    ref = list_chips(source(world, "agrifieldnet", month=7))[0]
    with pytest.raises(SourceError) as caught:
        read_image(ref)
    message = str(caught.value)
    assert ref.chip_id in message and "one image per chip" in message and "month 7" in message
    assert "set the source's month to null" in message


@pytest.mark.parametrize("name", CHIP_PRODUCTS)
def test_chip_products_refuse_a_year_they_do_not_cover(world: Path, name: str) -> None:
    with pytest.raises(SourceError, match="year covered"):
        list_chips(source(world, name, year=2005))


def test_crs_name_is_the_epsg_code_when_there_is_one() -> None:
    assert crs_name(CRS.from_epsg(3857)) == "EPSG:3857"
    assert crs_name(None) is None
    custom = CRS.from_proj4("+proj=aeqd +lat_0=10 +lon_0=20 +datum=WGS84 +units=m")
    assert crs_name(custom) == custom.to_wkt()


def test_scan_reads_tif_and_tiff_in_any_case_and_names_every_other_entry(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    first, second = image_chips(raw, "cdl")[:2]
    first.rename(first.with_suffix(".TIF"))
    second.rename(second.with_suffix(".tiff"))
    folder = raw / "sentinel2" / "cdl"
    (folder / "README").write_text("chips\n")
    (folder / ".DS_Store").write_bytes(b"\0")
    listing = scan_chips(source(raw, "cdl"))
    assert len(listing.refs) == TINY.chips_per_source and not listing.errors
    assert {r.image for r in listing.refs} >= {first.with_suffix(".TIF"), second.with_suffix(".tiff")}
    assert [r.chip_id for r in listing.refs] == sorted(r.chip_id for r in listing.refs)
    reasons = {Path(p.file).name: p.detail for p in listing.unused}
    assert set(reasons) == {"README", ".DS_Store"} and {p.rule for p in listing.unused} == {"unused file"}
    assert "'no extension' files are not read" in reasons["README"] and "hidden file" in reasons[".DS_Store"]


def test_two_files_with_one_chip_id_are_an_error(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    chip = image_chips(raw, "cdl")[0]
    shutil.copyfile(chip, chip.with_suffix(".TIF"))
    listing = scan_chips(source(raw, "cdl"))
    (problem,) = listing.errors  # names the second file in sorted order, and the first in its detail
    assert problem.rule == "unique chip id" and problem.file == str(chip)
    assert f"also the id of {chip.with_suffix('.TIF').name}" in problem.detail
    with pytest.raises(SourceError, match="unique chip id"):
        list_chips(source(raw, "cdl"))


@pytest.mark.parametrize(("chip_id", "ok"), [("2021_1_-2", True), ("a.b-c_D", True), ("a,b", False),
                                             ("a\nb", False), ("a b", False), ("-a", False), ("é", False)])  # fmt: skip
def test_the_chip_id_pattern(chip_id: str, ok: bool) -> None:
    assert bool(CHIP_ID.match(chip_id)) is ok


def test_links_below_and_above_a_source_folder_are_named_once(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    assert link_problems(source(raw, "nccm")) == []
    real = tmp_path / "real-nccm"
    shutil.move(raw / "nccm", real)
    (raw / "nccm").symlink_to(real, target_is_directory=True)  # the label folder itself is a link
    (real / "extra").symlink_to(tmp_path / "missing")  # a broken link inside it
    problems = link_problems(source(raw, "nccm"))
    assert [p.file for p in problems] == [str(raw / "nccm"), str(raw / "nccm" / "extra")]
    assert {p.rule for p in problems} == {"no symbolic links"}
    assert f"a link to the folder {real}" in problems[0].detail and "file" in problems[1].detail


def test_problems_go_to_the_source_whose_folder_holds_their_file(world: Path) -> None:
    sources = source_inputs(shared_params(world))
    cdl_image = Problem(str(world / "sentinel2" / "cdl" / "x.txt"), "unused file", "d", "f")
    nccm_label = Problem(str(world / "nccm" / "CDL2018_clip.tif"), "unused file", "d", "f")
    other = Problem(str(world / "legends" / "x.csv"), "unused file", "d", "f")
    grouped = by_source([cdl_image, nccm_label, other, cdl_image], sources)
    assert grouped == {"cdl": [cdl_image], "nccm": [nccm_label], None: [other]}


def test_band_names_follow_sentinel_2_naming() -> None:
    assert [band_name(t) for t in ("B1", "b01", "B8A", "b8a", "B12", " B05 ", None, "red")] == [
        "B01", "B01", "B8A", "B8A", "B12", "B05", "", "red",
    ]  # fmt: skip


def test_a_detail_template_with_a_field_the_row_lacks_never_raises() -> None:
    assert fill("code {code} ({pixels} px)", {"code": 7}) is None
    assert fill("value {nodata:g}", {"nodata": "none"}) is None
    assert fill("parcel {feature} has {code!r}", {"feature": 3, "code": "x"}) == "parcel 3 has 'x'"
