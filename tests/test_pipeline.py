"""`dvc repro` end to end on a copy of the project with a tiny demo profile: demo -> validate -> chips -> subsets."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from curation.crosswalks import load_set
from curation.schemas import class_column, failures, manifest_schema, subsets_schema
from curation.sources import SOURCES

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dvc.yaml", "params.yaml", ".dvcignore", ".dvc/config", ".dvc/.gitignore", "curation"]
STAGES = ("crosswalks", "demo", "validate", "chips", "subsets")


def run(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def tiny_profile(params: dict[str, Any]) -> dict[str, Any]:
    """The demo profile scaled down: 32 px chips, 24 per source, sets of 2/4/8 train and 4 test."""
    params["shared"]["chip_px"] = 32
    params["shared"]["dask"]["scheduler"] = "synchronous"
    params["demo"].update(chip_px=32, chips_per_source=28)
    params["subsets"].update(train_sizes=[2, 4, 8], test_size=4, block_m=960.0, buffer_m=320.0)
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A copy of the project after one `dvc repro`, and what that printed."""
    root = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        source, target = ROOT / name, root / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump(tiny_profile(yaml.safe_load(params.read_text())), sort_keys=False))
    run(["git", "init", "-q"], root)
    return root, run([sys.executable, "-m", "dvc", "repro"], root)


def test_repro_runs_every_stage_and_dag_shows_them(project: tuple[Path, str]) -> None:
    root, output = project
    for stage in STAGES:
        assert f"Running stage '{stage}'" in output
    dag = run([sys.executable, "-m", "dvc", "dag"], root)
    assert all(stage in dag for stage in STAGES)
    assert (root / "reports" / "validation" / "summary.json").is_file()


def test_manifest_matches_its_schema_and_the_files(project: tuple[Path, str]) -> None:
    root, _ = project
    manifest = pl.read_parquet(root / "data" / "chips" / "manifest.parquet")
    names = load_set(ROOT / "curation" / "legends", "toolkit").taxonomy.names
    assert failures(manifest, manifest_schema(names, list(SOURCES))) == []
    assert manifest.group_by("source").len().sort("source")["len"].to_list() == [28] * len(SOURCES)
    for row in manifest.iter_rows(named=True):
        assert (root / "data" / "chips" / row["image_path"]).is_file()
        assert (root / "data" / "chips" / row["label_path"]).is_file()


def test_subsets_are_nested_disjoint_and_stratified(project: tuple[Path, str]) -> None:
    root, _ = project
    subsets = pl.read_parquet(root / "data" / "subsets" / "subsets.parquet")
    assert failures(subsets, subsets_schema(nested=True)) == []
    manifest = pl.read_parquet(root / "data" / "chips" / "manifest.parquet")
    names = [n for n in load_set(ROOT / "curation" / "legends", "toolkit").taxonomy.names if n != "ignore"]
    report = yaml.safe_load((root / "reports" / "subsets.json").read_text())
    for source in SOURCES:
        ids = {
            (split, size): set(group["chip_id"])
            for (split, size), group in subsets.filter(pl.col("source") == source).group_by("split", "size")
        }
        small, middle, large = (ids[("train", k)] for k in (2, 4, 8))
        test = ids[("test", 4)]
        assert small < middle < large and len(large) == 8 and len(test) == 4
        assert not test & large
        chosen = manifest.filter(pl.col("source") == source, pl.col("chip_id").is_in(list(middle)))
        area = chosen["height"] * chosen["width"]
        present = {n for n in names if ((chosen[class_column(n)] / area) >= 0.01).any()}
        pool = set(report["sources"][source]["classes_in_pool"])
        assert pool and pool <= present, (source, pool, present)
    audit = yaml.safe_load((root / "data" / "subsets" / "leakage_audit.json").read_text())
    assert audit["clean"] is True
    lists = sorted(p.name for p in (root / "data" / "subsets" / "lists").glob("sentinel2_cdl_2023_*.csv"))
    assert lists == [f"sentinel2_cdl_2023_subsampled_{n}.csv" for n in ("2", "4", "8", "test")]


def test_outputs_are_deterministic_and_subsets_params_rerun_only_subsets(project: tuple[Path, str]) -> None:
    root, _ = project
    dvc = [sys.executable, "-m", "dvc"]
    assert "Data and pipelines are up to date" in run([*dvc, "repro"], root)
    lock = (root / "dvc.lock").read_text()
    forced = run([*dvc, "repro", "--force", "--single-item", "chips", "subsets"], root)  # demo: tests/curation
    assert "Running stage 'chips'" in forced and "Running stage 'subsets'" in forced
    assert (root / "dvc.lock").read_text() == lock  # every output hash unchanged: byte-identical
    params = root / "params.yaml"
    values = yaml.safe_load(params.read_text())
    values["subsets"]["seed"] = 1
    params.write_text(yaml.safe_dump(values, sort_keys=False))
    rerun = run([*dvc, "repro"], root)
    assert "Running stage 'subsets'" in rerun
    assert not any(f"Running stage '{stage}'" in rerun for stage in STAGES if stage != "subsets")
