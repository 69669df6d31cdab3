"""Outputs never overlap inputs, the project or each other; a user's files inside a stage's output are named; params
with a key given twice are refused; a full disk is a message, not a traceback."""

from __future__ import annotations

import argparse
import errno
from pathlib import Path

import pytest
import yaml

from curation.core.errors import ParamsError
from curation.core.io import stage_output
from curation.core.layout import check_layout
from curation.core.params import check_all, read_params, reading_for
from curation.core.runner import run_stage

ROOT = Path(__file__).resolve().parents[3]
PARAMS = ROOT / "params.yaml"


def project_params(tmp_path: Path, **changes: str) -> Path:
    """The project's params.yaml with some `section.key: value` changes, in `tmp_path`."""
    raw = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        raw[section][key] = value
    raw["shared"]["legends_dir"] = str(ROOT / "curation" / "legends")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_the_project_params_have_apart_outputs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    check_layout(read_params(PARAMS), PARAMS)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"chips__out": "data"}, "'chips.out' (%s/data) overlaps input 'shared.raw_root'"),
        ({"subsets__out": "data/chips/sets"}, "'chips.out' (%s/data/chips) overlaps 'subsets.out'"),
        ({"train__out": "."}, "'train.out' (%s) would replace"),
        ({"report__out": "curation"}, "'report.out' (%s/curation) would replace curation"),
        ({"chips__out": "data/demo/chips"}, "'chips.out' (%s/data/demo/chips) overlaps input 'shared.raw_root'"),
    ],
)
def test_overlapping_outputs_are_refused_by_params_check_and_by_every_stage(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    params = project_params(tmp_path, **changes)
    with pytest.raises(ParamsError) as caught:
        check_all(params)
    assert expected % tmp_path.resolve() in str(caught.value) and "Fix:" in str(caught.value)
    ran = []
    with pytest.raises(SystemExit) as stopped:
        run_stage("chips", lambda args: ran.append(1) or None, ["--params", str(params)])
    assert stopped.value.code == 1 and not ran
    assert expected % tmp_path.resolve() in capsys.readouterr().err


def test_user_files_inside_the_demo_world_are_named_before_dvc_deletes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    params = project_params(tmp_path)
    with reading_for("demo"), stage_output(tmp_path / "data" / "demo") as tmp:
        (tmp / "cdl").mkdir()
        (tmp / "cdl" / "2023_30m_cdls.tif").write_text("demo")
    real = tmp_path / "data" / "demo" / "sentinel2" / "cdl"
    real.mkdir(parents=True)
    (real / "2023_1_1.tif").write_text("a real chip")
    with pytest.raises(SystemExit):
        run_stage("validate", lambda args: None, ["--params", str(params)])
    err = capsys.readouterr().err
    assert "inputs apart from outputs" in err and "sentinel2/cdl/2023_1_1.tif" in err and "data/real" in err
    run_stage("demo", lambda args: None, ["--params", str(params)])  # the demo's own check is its output's


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    text = PARAMS.read_text(encoding="utf-8").replace("  seed: 0\n", "  seed: 0\n  seed: 1\n", 1)
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ParamsError, match=r"unique keys: key 'seed' appears twice \(lines \d+ and \d+\)"):
        check_all(path)


def test_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("a: &x {k: 1}\nb:\n  <<: *x\n  k: 2\n", encoding="utf-8")
    assert read_params(path) == {"a": {"k": 1}, "b": {"k": 2}}


@pytest.mark.parametrize(("code", "rule"), [(errno.ENOSPC, "disk space"), (errno.EACCES, "permission")])
def test_a_full_disk_is_a_message_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], code: int, rule: str
) -> None:
    monkeypatch.chdir(tmp_path)
    params = project_params(tmp_path)

    def body(args: argparse.Namespace) -> None:
        raise OSError(code, "No space left on device", "data/chips/cdl/images/2023_1_1.tif")

    with pytest.raises(SystemExit) as stopped:
        run_stage("chips", body, ["--params", str(params)])
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "Traceback" not in err
    assert f"error: data/chips/cdl/images/2023_1_1.tif: {rule}:" in err and "Fix:" in err


def test_other_os_errors_are_not_hidden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    params = project_params(tmp_path)

    def body(args: argparse.Namespace) -> None:
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output"):
        run_stage("chips", body, ["--params", str(params)])


def test_every_output_of_the_artifact_catalogue_is_kept_apart() -> None:
    from curation.core import artifacts
    from curation.core.layout import OUTPUTS

    catalogue = {
        (entry.section, entry.key) for entry in vars(artifacts.Artifacts).values() if isinstance(entry, artifacts._Out)
    }
    assert set(OUTPUTS) == catalogue
