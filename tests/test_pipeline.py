"""`dvc repro` end to end on a copy of the project with a tiny profile: demo -> ... -> subsets -> train -> report."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from curation.core.failures import failures
from curation.core.legends import load_set
from curation.core.registry import demo_sources
from curation.core.result_schemas import TRANSFER_SCHEMA
from curation.core.schemas import class_column, manifest_schema, subsets_schema
from tests.tiny_project import ROOT, TINY_SEEDS, TinyProject, run
from training.backbones import MATRIX_BACKBONES

STAGES = ("crosswalks", "demo", "validate", "chips", "subsets")
TRAINING_STAGES = ("train@all-all-cdl-all", "evaluate@all-all-cdl-all", "report")


@pytest.fixture(scope="module")
def project(tiny_project: TinyProject) -> tuple[Path, str]:
    """The tiny project after one `dvc repro`, and what that printed."""
    return tiny_project.root, tiny_project.output


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
    assert failures(manifest, manifest_schema(names, list(demo_sources()))) == []
    assert manifest.group_by("source").len().sort("source")["len"].to_list() == [28] * len(demo_sources())
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
    for source in demo_sources():
        ids = {
            (split, size): set(group["chip_id"])
            for (split, size), group in subsets.filter(pl.col("source") == source).group_by("split", "size")
        }
        small, middle, large = (ids[("train", k)] for k in (2, 4, 8))
        test, drawn = ids[("test", 4)], ids[("test_random", 4)]
        assert small < middle < large and len(large) == 8 and len(test) == 4 and len(drawn) == 4
        assert not test & large and not drawn & (large | test)
        chosen = manifest.filter(pl.col("source") == source, pl.col("chip_id").is_in(list(middle)))
        area = chosen["height"] * chosen["width"]
        present = {n for n in names if ((chosen[class_column(n)] / area) >= 0.01).any()}
        pool = set(report["sources"][source]["classes_in_pool"])
        assert pool and pool <= present, (source, pool, present)
    audit = yaml.safe_load((root / "data" / "subsets" / "leakage_audit.json").read_text())
    assert audit["clean"] is True
    lists = sorted(p.name for p in (root / "data" / "subsets" / "lists").glob("sentinel2_cdl_2023_*.csv"))
    assert lists == [f"sentinel2_cdl_2023_subsampled_{n}.csv" for n in ("2", "4", "8", "test", "test_random")]


def test_outputs_are_deterministic_and_subsets_params_rerun_only_subsets(project: tuple[Path, str]) -> None:
    root, _ = project
    dvc = [sys.executable, "-m", "dvc"]
    assert "Data and pipelines are up to date" in run([*dvc, "repro"], root)
    lock = (root / "dvc.lock").read_text()
    forced_stages = ("chips", "subsets", *TRAINING_STAGES, "publish")  # demo is covered in tests/curation
    forced = run([*dvc, "repro", "--force", "--single-item", *forced_stages], root)
    for stage in forced_stages:
        assert f"Running stage '{stage}'" in forced
    assert (root / "dvc.lock").read_text() == lock  # every output hash unchanged: byte-identical
    params = root / "params.yaml"
    values = yaml.safe_load(params.read_text())
    values["subsets"]["seed"] = 1
    params.write_text(yaml.safe_dump(values, sort_keys=False))
    rerun = run([*dvc, "repro", "subsets"], root)
    assert "Running stage 'subsets'" in rerun
    assert not any(f"Running stage '{stage}'" in rerun for stage in STAGES if stage != "subsets")


def test_training_writes_the_transfer_table_with_every_backbone(project: tuple[Path, str]) -> None:
    root, output = project
    for stage in TRAINING_STAGES:
        assert f"Running stage '{stage}'" in output
    transfer = pl.read_parquet(root / "metrics" / "transfer.parquet")
    assert failures(transfer, TRANSFER_SCHEMA) == []
    assert set(transfer["backbone"]) == set(MATRIX_BACKBONES)  # the tiny profile's `all`: every registry backbone
    assert set(transfer["protocol"]) == {"id", "ood", "ood+k", "pretrain-finetune"}
    assert set(transfer["test_source"]) == set(demo_sources())
    assert set(transfer["weights"]) == {"random", "none"}  # no weight files (random init allowed); spectral: none
    every = transfer.select("run_id", "protocol", "k", "seed", "balance").unique()
    runs = every.filter(pl.col("balance") == "base")
    models = len(MATRIX_BACKBONES) * len(TINY_SEEDS)
    assert runs.filter(pl.col("protocol") == "ood")["k"].to_list() == [0] * models
    assert len(runs) == 4 * models  # 4 protocols x every backbone x seed, one target source, k = 4 (ood: 0)
    sampled = every.filter(pl.col("balance") == "chip-sampler")  # the demo's train.balance: id runs repeated
    assert set(sampled["protocol"]) == {"id"} and len(sampled) == (len(MATRIX_BACKBONES) - 1) * len(TINY_SEEDS)
    effects = pl.read_parquet(root / "metrics" / "balance.parquet")
    assert set(effects["b"]) == {"chip-sampler"} and "recall_maize" in set(effects["metric"])
    bias = pl.read_parquet(root / "metrics" / "split_bias.parquet")  # id models on the random test set too
    assert set(bias["target_source"]) == {"cdl"} and bias.filter(pl.col("metric") == "oa")["bias"].is_not_null().all()
    assert sorted(set(runs["seed"])) == list(TINY_SEEDS)
    for run_id in runs["run_id"]:
        entry = root / "runs" / "all_all_cdl_all" / run_id
        kind = "json" if "-spectral-" in run_id else "pt"  # the spectral baseline's model is a JSON file
        assert (entry / f"best.{kind}").is_file() and (entry / f"last.{kind}").is_file()
    summary = yaml.safe_load((root / "metrics" / "summary.json").read_text())
    assert set(summary) == {"id", "ood", "ood+k", "pretrain-finetune"}
    assert (root / "metrics" / "plots" / "transfer.csv").is_file()
