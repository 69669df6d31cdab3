"""A copy of the project run through `dvc repro` with a tiny profile: the end-to-end test and the app tests share it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from curation.core.artifacts import Artifacts
from curation.core.io import DEMO_MARKER

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", ".dvcignore", ".dvc/config", ".dvc/.gitignore", ".dvc/plots", "curation"]
PROJECT_FILES += ["training", "reference"]  # reference/: the study's lists and numbers (report.reference)


def app_artifacts(params: Path) -> list[str]:
    """What the app reads, from the project's artifact catalogue: copied aside right after the run (tests that
    re-run stages change the project itself)."""
    paths = Artifacts.load(params)
    found = [paths.chips, paths.subsets, paths.validation, paths.crosswalks_report, paths.chips_report]
    found += [paths.subsets_report, paths.metrics]
    shared = yaml.safe_load(params.read_text(encoding="utf-8"))["shared"]
    names = [params.name, shared["legends_dir"], (paths.demo_world.path / DEMO_MARKER).as_posix()]
    return names + [artifact.path.as_posix() for artifact in found]


@dataclass(frozen=True)
class TinyProject:
    """The project folder, what `dvc repro` printed, and an untouched copy of the app's artifacts."""

    root: Path
    output: str
    artifacts: Path


TINY_SEEDS = (0, 1)


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def tiny_profile(params: dict[str, Any]) -> dict[str, Any]:
    """The demo profile scaled down: 32 px chips, 28 per source, sets of 2/4/8 train, 4 test and 4 random test."""
    params["shared"]["chip_px"] = 32
    params["shared"]["dask"]["scheduler"] = "synchronous"
    params["demo"].update(chip_px=32, chips_per_source=28)
    params["subsets"].update(train_sizes=[2, 4, 8], test_size=4, random_test_size=4, block_m=960.0, buffer_m=320.0)
    params["train"]["matrix"].update(protocol=["all"], backbone=["all"], source=["cdl"], size=["all"])
    params["train"].update(sizes=[4], others_size=2, batch_size=4, crop_scale=[0.5, 1.0], val_block_m=960.0)
    params["train"]["targets"] = "all"
    params["train"]["seeds"] = list(TINY_SEEDS)  # two repeats: the report's intervals over seeds and paired comparisons
    # One torch thread: float sums depend on the thread count, and a Dask LocalCluster started by another test
    # leaves OMP_NUM_THREADS=1 in this process's environment, which the forced re-run's stages would inherit.
    params["train"]["threads"] = 1
    params["train"]["model"]["decoder_channels"] = [16] * params["train"]["model"]["encoder_depth"]
    params["publish"]["train_sizes"] = [2, 4, 8]
    for phases in params["train"]["protocols"].values():
        for phase in phases:
            phase["epochs"] = 1
    return params


def copy_paths(source: Path, target: Path, names: list[str]) -> None:
    for name in names:
        src, dst = source / name, target / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def build(workdir: Path) -> TinyProject:
    """Copy the project into `workdir/project`, run `dvc repro` on the tiny profile, snapshot the app's artifacts."""
    root = workdir / "project"
    copy_paths(ROOT, root, PROJECT_FILES)
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_profile(yaml.safe_load(params.read_text())), sort_keys=False))
    run(["git", "init", "-q"], root)
    output = run([sys.executable, "-m", "dvc", "repro"], root)
    artifacts = workdir / "artifacts"
    with contextlib.chdir(root):
        copy_paths(root, artifacts, app_artifacts(Path("params.yaml")))
    return TinyProject(root, output, artifacts)
