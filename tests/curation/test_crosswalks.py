from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from curation.core.errors import LegendError, UnmappedCodesError
from curation.core.legends import CrosswalkSet, check_sets, load_set
from curation.core.remap import remap_raster
from curation.crosswalks.stage import differences, main

ROOT = Path(__file__).resolve().parents[2]
LEGENDS = ROOT / "curation" / "legends"
REFERENCE = ROOT.parent / "shared" / "reference" / "legends"
SOURCES = ["cdl", "eurocrops", "nccm", "south_africa_crop_type", "agrifieldnet", "south_america_soybean"]


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def copy_legends(tmp_path: Path) -> Path:
    target = tmp_path / "legends"
    shutil.copytree(LEGENDS, target)
    return target


def test_both_sets_cover_every_source(toolkit: CrosswalkSet, paper: CrosswalkSet) -> None:
    assert list(toolkit.crosswalks) == SOURCES
    assert list(paper.crosswalks) == SOURCES
    assert toolkit.taxonomy.names == ("ignore", "maize", "soybean", "rice", "wheat", "other")
    assert toolkit.taxonomy.ids == (0, 1, 2, 3, 4, 5)


def test_cdl_crosswalk_lists_every_named_code_with_its_official_name(toolkit: CrosswalkSet) -> None:
    reference = REFERENCE / "cdl" / "cdl_legend_0_255_with_colors.csv"
    if not reference.is_file():
        pytest.skip(f"reference legends not found at {reference}")
    named = {int(r["code"]): r["class_name"] for r in rows(reference) if r["class_name"].strip()}
    cdl = toolkit["cdl"]
    assert dict(zip(cdl.codes.tolist(), cdl.names, strict=True)) == named


def test_eurocrops_crosswalk_covers_hcat2_and_hcat3(toolkit: CrosswalkSet) -> None:
    folder = REFERENCE / "eurocrops"
    if not folder.is_dir():
        pytest.skip(f"reference legends not found at {folder}")
    codes = set(toolkit["eurocrops"].codes.tolist())
    for name in ("HCAT2", "HCAT3"):
        assert {int(r[f"{name}_code"]) for r in rows(folder / f"{name}.csv")} <= codes


@pytest.mark.parametrize(
    ("source", "reference"),
    [
        ("nccm", "nccm"),
        ("south_africa_crop_type", "south_africa_crop_type"),
        ("agrifieldnet", "agrifieldnet"),
        ("south_america_soybean", "south_america_soybean"),
    ],
)
def test_torchgeo_products_list_every_class_value(toolkit: CrosswalkSet, source: str, reference: str) -> None:
    path = REFERENCE / "torchgeo" / f"{reference}_classes.csv"
    if not path.is_file():
        pytest.skip(f"reference legends not found at {path}")
    values = {int(r["raw_value"]) for r in rows(path)}
    assert values <= set(toolkit[source].codes.tolist())


def test_toolkit_decisions(toolkit: CrosswalkSet) -> None:
    cdl = toolkit["cdl"]
    assert cdl.target_name(3) == "rice"
    double_crops = [c for c, n in zip(cdl.codes.tolist(), cdl.names, strict=True) if n.startswith("Dbl Crop")]
    assert sorted(double_crops) == [26, 225, 226, 228, *range(230, 242), 254]
    assert {cdl.target_name(c) for c in double_crops} == {"ignore"}
    sas = toolkit["south_america_soybean"]
    assert [sas.target_name(c) for c in (0, 1, 2, 255)] == ["other", "soybean", "ignore", "ignore"]
    # every decision is explained in the CSV
    notes = dict(zip(cdl.codes.tolist(), cdl.notes, strict=True))
    assert all(notes[c] for c in [3, *double_crops])


def test_paper_set_reproduces_the_study_rules(paper: CrosswalkSet) -> None:
    cdl = paper["cdl"]
    expected = {1: "maize", 12: "maize", 13: "maize", 5: "soybean", 22: "wheat", 23: "wheat", 24: "wheat"}
    expected |= {c: "ignore" for c in (0, 225, 226, 228, 230, *range(236, 242))}
    for code in cdl.codes.tolist():
        assert cdl.target_name(code) == expected.get(code, "other"), code
    nccm = paper["nccm"]
    assert [nccm.target_name(c) for c in (15, 1, 2, 0, 3)] == ["ignore", "maize", "soybean", "rice", "other"]
    sas = paper["south_america_soybean"]
    assert [sas.target_name(c) for c in (1, 0, 2, 128, 255)] == ["soybean", "other", "rice", "rice", "rice"]
    sact = paper["south_africa_crop_type"]
    assert {c: sact.target_name(c) for c in (0, 7, 1, 9)} == {0: "ignore", 7: "wheat", 1: "other", 9: "other"}
    afn = paper["agrifieldnet"]
    assert {c: afn.target_name(c) for c in (0, 9, 36, 1, 2)} == {
        0: "ignore",
        9: "maize",
        36: "rice",
        1: "wheat",
        2: "other",
    }
    ec = paper["eurocrops"]
    assert ec.target_name(0) == "ignore"
    assert ec.target_name(3301010600) == "maize"
    assert ec.target_name(3301160000) == "soybean"
    assert ec.target_name(3301010799) == "rice"
    assert ec.target_name(3301010101) == "wheat"
    assert ec.target_name(3301010299) == "wheat"
    assert ec.target_name(3301090400) == "other"  # silage maize: the study's rule
    assert ec.target_name(3301010300) == "other"  # rye


def test_eurocrops_sub_types_follow_their_parent(toolkit: CrosswalkSet) -> None:
    ec = toolkit["eurocrops"]
    # 3301010105 is not in HCAT: it follows common soft wheat 3301010100
    assert 3301010105 not in ec.codes
    assert ec.target_name(3301010105) == "wheat"
    assert ec.target_name(3301160042) == "soybean"
    with pytest.raises(UnmappedCodesError, match="unmapped codes"):
        ec.target_name(3400000000)  # no prefix of it exists
    with pytest.raises(UnmappedCodesError, match="unmapped codes"):
        ec.target_name(42)  # short codes never climb the hierarchy into code 0


def test_differences_show_the_study_quirks(toolkit: CrosswalkSet, paper: CrosswalkSet) -> None:
    rows_ = differences(toolkit, paper)
    cdl = {r["code"]: (r["toolkit"], r["paper"]) for r in rows_ if r["source"] == "cdl"}
    assert cdl[3] == ("rice", "other")
    assert cdl[26] == ("ignore", "other")
    ec = {r["code"]: (r["toolkit"], r["paper"]) for r in rows_ if r["source"] == "eurocrops"}
    assert ec == {3301090400: ("maize", "other")}


def test_broken_crosswalk_lists_every_problem_in_one_message(tmp_path: Path) -> None:
    legends = copy_legends(tmp_path)
    cdl = legends / "cdl.csv"
    text = cdl.read_text().replace("\n2,Cotton,other,", "\n2,,other,")
    cdl.write_text(text + "5,Soybeans again,soybean,\n7,Mystery,barley,\n300,Out of range,other,\n")
    (legends / "paper" / "nccm.csv").write_text("code,name,target\nx,rice,rice\n")
    with pytest.raises(LegendError) as info:
        check_sets(legends, ["toolkit", "paper"])
    message = str(info.value)
    problems = {(p.file.rsplit(":", 1)[0] if ".csv:" in p.file else p.file, p.rule) for p in info.value.problems}
    assert (str(cdl), "unique code") in problems
    assert (str(cdl), "known target") in problems
    assert (str(cdl), "required value") in problems
    assert (str(cdl), "code range 0-255") in problems
    assert (str(legends / "paper" / "nccm.csv"), "code is a non-negative integer") in problems
    assert "use one of: ignore, maize, other, rice, soybean, wheat" in message
    assert f"{cdl}:7" in message  # duplicated code 5: both rows named by line
    assert message.count("\n  - ") == len(info.value.problems) >= 6


def test_missing_crosswalk_file_and_unknown_set(tmp_path: Path) -> None:
    legends = copy_legends(tmp_path)
    (legends / "paper" / "agrifieldnet.csv").unlink()
    with pytest.raises(LegendError) as info:
        check_sets(legends, ["paper", "nonexistent"])
    message = str(info.value)
    assert "agrifieldnet.csv: file exists" in message
    assert "no folder for set 'nonexistent'" in message
    assert "choose one of toolkit, paper" in message


def test_bad_taxonomy_is_reported(tmp_path: Path) -> None:
    legends = copy_legends(tmp_path)
    (legends / "target.csv").write_text("id,name,color\n0,nothing,#000000\n1,maize,yellow\n1,Soy,#00ff00\n")
    with pytest.raises(LegendError) as info:
        load_set(legends, "toolkit")
    rules = {p.rule for p in info.value.problems}
    assert {"class id 0 is 'ignore' (skipped by loss and metrics)", "colour is #rrggbb", "unique class id"} <= rules
    assert "class name is lower_snake_case" in rules


def test_a_class_is_added_by_editing_csvs_only(tmp_path: Path) -> None:
    legends = copy_legends(tmp_path)
    with (legends / "target.csv").open("a") as handle:
        handle.write("6,sugarcane,#ff00ff\n")
    cdl = legends / "cdl.csv"
    cdl.write_text(cdl.read_text().replace("45,Sugarcane,other,", "45,Sugarcane,sugarcane,"))
    added = load_set(legends, "toolkit")
    assert added.taxonomy.names[-1] == "sugarcane"
    out = remap_raster(np.array([[45, 1]], dtype=np.uint8), added["cdl"])
    assert out.tolist() == [[6, 1]]


def stage_params(tmp_path: Path, crosswalk_set: str, sets: list[str]) -> Path:
    """The project's params with the legends folder made absolute and the crosswalk keys set."""
    values = yaml.safe_load((ROOT / "params.yaml").read_text())
    values["shared"].update(legends_dir=str(LEGENDS), crosswalk_set=crosswalk_set)
    values["crosswalks"]["sets"] = sets
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(values))
    return params


def test_stage_writes_a_deterministic_report(tmp_path: Path) -> None:
    params = stage_params(tmp_path, "toolkit", ["toolkit", "paper"])
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    main(["--params", str(params), "--out", str(first)])
    main(["--params", str(params), "--out", str(second)])
    assert first.read_bytes() == second.read_bytes()
    report = json.loads(first.read_text())
    assert report["active_set"] == "toolkit"
    assert report["sets"]["toolkit"]["cdl"]["codes_per_class"]["rice"] == 1
    assert report["sets"]["paper"]["cdl"]["codes_per_class"]["rice"] == 0
    assert {"source": "cdl", "code": 26, "name": "Dbl Crop WinWht/Soybeans", "toolkit": "ignore", "paper": "other"} in (
        report["differences"]["paper"]
    )
    assert not list(tmp_path.glob(".*.tmp"))


def test_stage_fails_with_a_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = stage_params(tmp_path, "papr", ["toolkit"])
    with pytest.raises(SystemExit) as info:
        main(["--params", str(params), "--out", str(tmp_path / "r.json")])
    assert info.value.code == 1
    assert "no folder for set 'papr'" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()
