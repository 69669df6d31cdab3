"""`unused_inputs`: every file under the configured label roots and the legends folder that nothing reads, with
the reason, sorted; the demo world and the shipped legends have none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation.core.errors import Problem
from curation.core.legends import unlisted_crosswalks
from curation.inputs.chip_refs import reader, source_inputs
from curation.inputs.unused import read_years, source_unused, unused_inputs
from tests.curation.stage_world import LEGENDS, copy_world, demo_world, shared_params, with_source

RULE = "unused file"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_world(tmp_path_factory)


def eurocrops_layer(raw: Path) -> Path:
    (layer,) = sorted((raw / "eurocrops").rglob("*_EC*.shp"))
    return layer


def copy_layer(layer: Path, folder: Path, stem: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for part in layer.parent.glob(f"{layer.stem}.*"):
        shutil.copy(part, folder / f"{stem}{part.suffix}")
    return folder / f"{stem}.shp"


def test_the_demo_world_and_the_shipped_legends_leave_nothing_unused(world: Path) -> None:
    assert unused_inputs(shared_params(world)) == []
    assert unlisted_crosswalks(LEGENDS) == []


def test_chip_years_decide_what_is_read(world: Path) -> None:
    shared = shared_params(world)
    years = {source.name: read_years(source) for source in source_inputs(shared)}
    assert years == {
        "cdl": [2023],
        "eurocrops": [2021],
        "nccm": [2019],
        "south_america_soybean": [2021],
        "south_africa_crop_type": [2017],
        "agrifieldnet": [2021],
    }


def test_files_left_by_every_reader_are_rows_with_reasons(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    layer = eurocrops_layer(raw)
    ro = copy_layer(layer, raw / "eurocrops" / "RO", "RO_ny_EC21")
    old_cdl = raw / "cdl" / "2022_30m_cdls.tif"
    shutil.copy(raw / "cdl" / "2023_30m_cdls" / "2023_30m_cdls.tif", old_cdl)
    stray = raw / "nccm" / "NCCM_2019_legend.xlsx"
    stray.write_bytes(b"")
    (raw / "nccm" / "README.md").write_text("documentation is not an input")
    rows = unused_inputs(shared_params(raw))
    assert [row.file for row in rows] == sorted(str(p) for p in (old_cdl, ro, stray))
    assert all(row.rule == RULE and row.fix for row in rows)
    by_file = {row.file: row for row in rows}
    assert by_file[str(old_cdl)].detail == "a file of 2022: read only for chips of 2022 (the chips are of 2023)"
    assert by_file[str(ro)].detail == "no year in the name (RO_ny): read only when no year is set"
    assert by_file[str(stray)].detail.startswith("not a Northeast China Crop Map product file")
    assert by_file[str(stray)].fix == "remove it, or name it as the layout expects: <root>/CDL<year>_clip*.tif"
    assert unused_inputs(shared_params(raw)) == rows  # deterministic


def test_without_listable_chips_the_year_param_decides(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    ro = copy_layer(eurocrops_layer(raw), raw / "eurocrops" / "RO", "RO_ny_EC21")
    shared = with_source(shared_params(raw), "eurocrops", images=Path("sentinel2/missing"))
    (source,) = [s for s in source_inputs(shared) if s.name == "eurocrops"]
    assert read_years(source) == [None]
    assert source_unused(source) == []  # with no year set, the layer without a year is read
    dated = with_source(shared, "eurocrops", year=2021)
    (source,) = [s for s in source_inputs(dated) if s.name == "eurocrops"]
    assert [row.file for row in source_unused(source)] == [str(ro)]


def test_a_layer_in_its_zip_and_extracted_is_read_once(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    layer = eurocrops_layer(raw)
    archive = raw / "eurocrops" / f"{layer.parent.name}.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", raw / "eurocrops", layer.parent.name)
    rows = unused_inputs(shared_params(raw))
    assert [row.file for row in rows] == [str(archive)]
    assert f"the same layer as {layer}: read once, from the extracted file" in rows[0].detail
    (source,) = [s for s in source_inputs(shared_params(raw)) if s.name == "eurocrops"]
    assert len(reader(source, 2021).layer_uris()) == 1  # its parcels are counted once


def test_image_chips_inside_a_label_root_are_not_label_rows(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    shutil.copytree(raw / "sentinel2" / "cdl", raw / "cdl" / "chips")
    shared = with_source(shared_params(raw), "cdl", images=Path("cdl/chips"))
    assert unused_inputs(shared) == []


def test_a_missing_label_root_is_no_row(world: Path, tmp_path: Path) -> None:
    raw = copy_world(world, tmp_path)
    shutil.rmtree(raw / "nccm")
    assert unused_inputs(shared_params(raw)) == []  # the readers report the missing root


def test_crosswalk_csvs_no_set_lists_are_rows(world: Path, tmp_path: Path) -> None:
    legends = tmp_path / "legends"
    shutil.copytree(LEGENDS, legends)
    shutil.copy(legends / "cdl.csv", legends / "cdl_2019.csv")
    shutil.copy(legends / "cdl.csv", legends / "paper" / "cdl_v2.CSV")
    (legends / "paper" / "old").mkdir()
    shutil.copy(legends / "cdl.csv", legends / "paper" / "old" / "cdl.csv")
    (legends / "paper" / "notes.md").write_text("not a CSV")
    expected = [
        Problem(
            str(legends / "cdl_2019.csv"),
            RULE,
            f"a crosswalk CSV that {legends / 'sources.csv'} does not list: no source of set 'toolkit' reads it",
            f"name it in the crosswalk column of its source's row in {legends / 'sources.csv'}, or remove it",
        ),
        Problem(
            str(legends / "paper" / "cdl_v2.CSV"),
            RULE,
            f"a crosswalk CSV that {legends / 'sources.csv'} does not list: no source of set 'paper' reads it",
            f"name it in the crosswalk column of its source's row in {legends / 'sources.csv'}, or remove it",
        ),
        Problem(
            str(legends / "paper" / "old" / "cdl.csv"),
            RULE,
            "a CSV below the crosswalk set folders (a set is the legends folder or a folder directly in it)",
            "move it into a set folder and list it in sources.csv, or remove it",
        ),
    ]
    assert unlisted_crosswalks(legends) == expected
    shared = shared_params(world).model_copy(update={"legends_dir": legends})
    assert unused_inputs(shared) == expected


def test_a_crosswalk_named_in_the_crosswalk_column_is_listed(tmp_path: Path) -> None:
    legends = tmp_path / "legends"
    shutil.copytree(LEGENDS, legends)
    table = legends / "sources.csv"
    lines = table.read_text().splitlines()
    lines = [lines[0] + ",crosswalk"] + [
        line + (",cdl_2019.csv" if line.startswith("cdl,") else ",") for line in lines[1:]
    ]
    table.write_text("\n".join(lines) + "\n")
    (legends / "cdl.csv").rename(legends / "cdl_2019.csv")
    (legends / "paper" / "cdl.csv").rename(legends / "paper" / "cdl_2019.csv")
    assert unlisted_crosswalks(legends) == []
    table.write_text("source,match\nbroken")  # a table that does not load: its own problems, no rows here
    assert unlisted_crosswalks(legends) == []
