"""The stage runner (arguments, declared reads, errors as messages) and the artifact catalogue (paths from params)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest
import yaml

from curation.chips.config import ChipsParams
from curation.core.artifacts import MANIFEST, Artifacts
from curation.core.errors import LegendError, ParamsError, Problem, ProblemsError
from curation.core.legends import load_set
from curation.core.params import load_section
from curation.core.runner import run_stage

ROOT = Path(__file__).resolve().parents[3]
PARAMS = ROOT / "params.yaml"


def test_a_stage_error_is_one_message_and_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    def body(args: argparse.Namespace) -> str:
        raise ProblemsError("chips: cannot list the image chips", [Problem("data/raw/x", "rule", "detail", "fix it")])

    with pytest.raises(SystemExit) as caught:
        run_stage("chips", body, ["--params", str(PARAMS)])
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: chips: cannot list") and "data/raw/x: rule: detail. Fix: fix it" in err
    assert "Traceback" not in err


def test_the_body_reads_its_declared_params_and_its_message_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    def body(args: argparse.Namespace) -> str:
        return f"chips in {load_section(ChipsParams, args.params).out}"

    run_stage("chips", body, ["--params", str(PARAMS)])
    assert capsys.readouterr().out == "chips in data/chips\n"


def test_an_undeclared_read_stops_the_stage_naming_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    def body(args: argparse.Namespace) -> str:
        return str(load_section(ChipsParams, args.params).out)  # report declares no chips section

    with pytest.raises(SystemExit):
        run_stage("report", body, ["--params", str(PARAMS)])
    err = capsys.readouterr().err
    assert "stage report" in err and "'chips'" in err and "curation/core/stages.py and in dvc.yaml" in err


def test_matrix_stages_take_an_entry_and_their_own_options() -> None:
    seen: dict[str, object] = {}

    def body(args: argparse.Namespace) -> None:
        seen.update(vars(args))

    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", type=Path, default=None)

    run_stage("train", body, ["--params", str(PARAMS), "--backbone", "satlas", "--size", "20", "--out", "x"], options)
    assert seen["backbone"] == "satlas" and seen["size"] == "20" and seen["protocol"] == "all"
    assert seen["out"] == Path("x")


def test_the_catalogue_names_every_path_from_params_and_who_writes_it(tmp_path: Path) -> None:
    raw = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))
    raw["chips"]["out"] = "elsewhere/chips"
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw), encoding="utf-8")
    paths = Artifacts.of_project(tmp_path)
    assert paths.manifest.path == tmp_path / "elsewhere" / "chips" / MANIFEST and paths.manifest.stage == "chips"
    assert paths.raw_root == tmp_path / "data" / "demo" == paths.demo_world.path  # one value, the YAML anchor
    assert paths.evals.path == tmp_path / "evals" and paths.metrics.stage == "report"
    assert paths.chips_report.path == tmp_path / "reports" / "chips.json"
    del raw["subsets"]["report"]
    params.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ParamsError, match=r"subsets\.report.*add 'subsets\.report: <path>'"):
        _ = Artifacts.of_project(tmp_path).subsets_report


def test_a_source_can_point_at_another_legend_and_a_bad_pointer_is_named(tmp_path: Path) -> None:
    legends = tmp_path / "legends"
    shutil.copytree(ROOT / "curation" / "legends", legends)
    table = legends / "sources.csv"
    lines = table.read_text(encoding="utf-8").splitlines()
    lines = [f"{lines[0]},crosswalk", *(f"{line}," for line in lines[1:])]
    table.write_text("\n".join([*lines, "csb,exact,0,255,,CDL codes per field and year,cdl.csv"]) + "\n")
    toolkit = load_set(legends, "toolkit")
    assert toolkit["csb"].path == str(legends / "cdl.csv") and toolkit.legends["cdl"].crosswalk == "cdl.csv"
    assert list(toolkit["csb"].codes) == list(toolkit["cdl"].codes)
    table.write_text("\n".join([*lines, "csb,exact,0,255,,CDL codes,CDL.CSV"]) + "\n")
    with pytest.raises(LegendError) as caught:
        load_set(legends, "toolkit")
    assert [(p.file.rsplit("/", 1)[-1], p.rule) for p in caught.value.problems] == [
        ("sources.csv:8", "crosswalk is a file name <name>.csv")
    ]
    table.write_text("\n".join([*lines, "aci,exact,0,255,,ACI,aci.csv"]) + "\n")  # a legend with no file yet
    with pytest.raises(LegendError) as caught:
        load_set(legends, "toolkit")
    assert [(p.file, p.rule) for p in caught.value.problems] == [(str(legends / "aci.csv"), "file exists")]
