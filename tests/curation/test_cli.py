from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from curation.cli.commands import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def all_commands() -> list[list[str]]:
    """Every command path of the CLI, so a new command gets its --help test for free."""
    paths: list[list[str]] = [[]]

    def walk(command: object, prefix: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*prefix, name])
            walk(sub, [*prefix, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "cropharmony")
def test_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_top_level_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert "legends" in result.output and "params" in result.output
    assert len(all_commands()) >= 5


def test_legends_check_passes_for_both_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["legends", "check", "--set", "toolkit", "--set", "paper"])
    assert result.exit_code == 0, result.output
    assert "ok: toolkit, paper valid" in result.output


def test_legends_check_reads_sets_from_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["legends", "check"])
    assert result.exit_code == 0, result.output
    assert "crosswalk set 'paper'" in result.output


def test_legends_check_fails_listing_every_problem(tmp_path: Path) -> None:
    legends = tmp_path / "legends"
    shutil.copytree(ROOT / "curation" / "legends", legends)
    cdl = legends / "cdl.csv"
    cdl.write_text(cdl.read_text() + "5,Soybeans again,soybean,\n7,Mystery,barley,\n")
    result = runner.invoke(app, ["legends", "check", "--legends-dir", str(legends), "--set", "toolkit"])
    assert result.exit_code == 1
    assert "crosswalks are invalid (3 problems)" in result.output
    assert "unique code" in result.output and "known target" in result.output and "barley" in result.output
    assert "Traceback" not in result.output


def test_legends_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["legends", "diff", "toolkit", "paper"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Rice" in result.output and "green_silo_maize" in result.output


def test_params_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert runner.invoke(app, ["params", "check"]).exit_code == 0
    bad = tmp_path / "params.yaml"
    bad.write_text((ROOT / "params.yaml").read_text().replace("crosswalk_set:", "crosswalkset:"))
    result = runner.invoke(app, ["params", "check", "--params", str(bad)])
    assert result.exit_code == 1
    assert "did you mean 'crosswalk_set'" in result.output
