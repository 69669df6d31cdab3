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
    params = tmp_path / "params.yaml"  # a tiny demo profile keeps the test fast
    text = (
        params.read_text().replace("chip_px: 64", "chip_px: 32").replace("chips_per_source: 40", "chips_per_source: 4")
    )
    assert "chip_px: 32" in text and "chips_per_source: 4" in text
    params.write_text(text)
    run(["git", "init", "-q"], tmp_path)
    dvc = [sys.executable, "-m", "dvc"]
    first = run([*dvc, "repro"], tmp_path)
    assert "Running stage 'crosswalks'" in first
    assert "Running stage 'demo'" in first
    assert (tmp_path / "reports" / "crosswalks.json").is_file()
    assert len(list((tmp_path / "data" / "raw" / "sentinel2" / "cdl").glob("*.tif"))) == 4
    second = run([*dvc, "repro"], tmp_path)
    assert "Data and pipelines are up to date" in second
    dag = run([*dvc, "dag"], tmp_path)
    assert "crosswalks" in dag and "demo" in dag
