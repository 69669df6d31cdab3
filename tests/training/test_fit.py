"""A tiny fit in the default suite: train -> evaluate -> report on a generated world, with no network."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from curation.core.failures import failures
from curation.core.result_schemas import TRANSFER_SCHEMA
from curation.core.shared import SharedParams
from training.config import EvaluateParams, TrainParams
from training.evaluate import MissingRunsError, evaluate_entry
from training.report import run_report
from training.train import run_entry

from .world import SOURCES, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """Chips of three sources (10 per source, 32 px)."""
    root = tmp_path_factory.mktemp("chips")
    _, subsets = make_world(root)
    return root, subsets


def test_tiny_fit_trains_evaluates_and_reports(
    world: tuple[Path, pl.DataFrame], train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    """Every protocol on one backbone and one target; the transfer table covers every test set."""
    chips, subsets = world
    runs = tmp_path / "runs" / "entry"
    records = run_entry(train_params, shared_params, chips, subsets, ("all", "ssl4eo", "cdl", "all"), runs)
    assert [r["run_id"] for r in records] == [
        "id-ssl4eo-cdl-k2",
        "id-ssl4eo-cdl-k4",
        "ood-ssl4eo-cdl-k0",
        "ood+k-ssl4eo-cdl-k2",
        "ood+k-ssl4eo-cdl-k4",
        "pretrain-finetune-ssl4eo-cdl-k2",
        "pretrain-finetune-ssl4eo-cdl-k4",
    ]
    record = json.loads((runs / "ood+k-ssl4eo-cdl-k4" / "run.json").read_text())
    assert record["train_sources"] == list(SOURCES)
    assert record["provenance"]["weights"] == "random"  # allow_random_init, recorded
    phase = record["phases"][0]
    assert not set(phase["train_chips"]) & set(phase["val_chips"])
    assert len(phase["train_chips"]) + len(phase["val_chips"]) == 4 + 2 + 2  # k target + others_size per other
    assert [row["epoch"] for row in record["history"]] == [0]
    assert not list(runs.parent.glob(".*tmp"))  # staged, then renamed

    evals = tmp_path / "evals" / "entry"
    params = EvaluateParams(batch_size=8, checkpoint="best", out=tmp_path / "evals")
    metrics = evaluate_entry(params, train_params, shared_params, chips, subsets, runs, evals)
    assert set(metrics["test_source"]) == set(SOURCES)
    assert metrics.filter(pl.col("metric") == "oa")["value"].is_between(0, 1).all()
    summary = run_report(tmp_path / "evals", tmp_path / "metrics", "miou", "miou")
    transfer = pl.read_parquet(tmp_path / "metrics" / "transfer.parquet")
    assert failures(transfer, TRANSFER_SCHEMA) == []
    assert len(transfer.select("run_id").unique()) == 7
    assert set(summary) == {"id", "ood", "ood+k", "pretrain-finetune"}


def test_fit_is_deterministic(
    world: tuple[Path, pl.DataFrame], train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    """Same chips, params and seed: byte-identical checkpoints (what DVC's cache relies on)."""
    chips, subsets = world
    for name in ("first", "second"):
        run_entry(train_params, shared_params, chips, subsets, ("id", "ssl4eo", "nccm", 2), tmp_path / name)
    for file in ("best.pt", "last.pt", "run.json"):
        first = (tmp_path / "first" / "id-ssl4eo-nccm-k2" / file).read_bytes()
        assert first == (tmp_path / "second" / "id-ssl4eo-nccm-k2" / file).read_bytes()


def test_evaluate_without_runs_names_the_stage(
    world: tuple[Path, pl.DataFrame], train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    """An empty train entry is an error that says which stage to run."""
    chips, subsets = world
    params = EvaluateParams(batch_size=8, checkpoint="best", out=tmp_path)
    with pytest.raises(MissingRunsError, match="dvc repro train"):
        evaluate_entry(params, train_params, shared_params, chips, subsets, tmp_path / "none", tmp_path / "out")
