"""`dvc repro` on a copy of the project: the README's first command, and DVC's caching of it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", ".dvcignore", ".dvc/config", ".dvc/.gitignore", "curation"]


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_dvc_repro_runs_and_then_has_nothing_to_do(tmp_path: Path) -> None:
    for name in PROJECT_FILES:
        source, target = ROOT / name, tmp_path / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    run(["git", "init", "-q"], tmp_path)
    dvc = [sys.executable, "-m", "dvc"]
    first = run([*dvc, "repro"], tmp_path)
    assert "Running stage 'crosswalks'" in first
    assert (tmp_path / "reports" / "crosswalks.json").is_file()
    second = run([*dvc, "repro"], tmp_path)
    assert "Data and pipelines are up to date" in second
    dag = run([*dvc, "dag"], tmp_path)
    assert "crosswalks" in dag
