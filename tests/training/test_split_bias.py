"""Split bias: every `id` model scored on its source's random test set beside the blocked one (evaluate, report)."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl

from curation.core.failures import failures
from curation.core.result_schemas import SPLIT_BIAS_RUN_SCHEMA, SPLIT_BIAS_SCHEMA
from curation.core.schemas import TEST_RANDOM
from curation.core.shared import SharedParams
from training.config import EvaluateParams, TrainParams
from training.evaluate import class_names, evaluate_entry
from training.report import run_report
from training.train import run_entry

from .world import SOURCES, make_world


def with_random_sets(subsets: pl.DataFrame) -> pl.DataFrame:
    """The world's unused chips 4-6 of every source as its random test set (beside the training chips 0-3)."""
    rows = [(f"{source}_{n:03d}", source, TEST_RANDOM, 3) for source in SOURCES for n in (4, 5, 6)]
    return pl.concat([subsets, pl.DataFrame(rows, schema=subsets.schema, orient="row")])


def test_id_runs_are_scored_on_both_test_sets_and_the_report_gives_the_gap(
    train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    chips = tmp_path / "chips"
    _, subsets = make_world(chips)
    subsets = with_random_sets(subsets)
    runs = tmp_path / "runs" / "entry"
    run_entry(train_params, shared_params, chips, subsets, ("all", "ssl4eo", "cdl", 4), runs)
    evaluate = EvaluateParams(batch_size=8, checkpoint="best", argmax_over_ignore=False, out=tmp_path / "evals")
    metrics = evaluate_entry(evaluate, train_params, shared_params, chips, subsets, runs, tmp_path / "evals" / "e")
    per_run = pl.read_parquet(tmp_path / "evals" / "e" / "split_bias.parquet")
    assert failures(per_run, SPLIT_BIAS_RUN_SCHEMA) == []
    assert per_run["run_id"].unique().to_list() == ["id-ssl4eo-cdl-k4-s0"]  # id only: ood+k and the rest are not
    assert set(per_run["blocked_chips"]) == {3} and set(per_run["random_chips"]) == {3}
    own = metrics.filter((pl.col("run_id") == "id-ssl4eo-cdl-k4-s0") & (pl.col("test_source") == "cdl"))
    blocked = dict(zip(own["metric"], own["value"], strict=True))
    for metric, value in zip(per_run["metric"], per_run["blocked"], strict=True):
        assert value == blocked[metric] or (math.isnan(value) and math.isnan(blocked[metric]))  # NaN: both
    assert set(per_run["metric"]) == set(blocked)  # every metric evaluate reports
    names = class_names(shared_params.legends_dir)
    run_report(tmp_path / "evals", tmp_path / "metrics", "miou", "miou", names)
    bias = pl.read_parquet(tmp_path / "metrics" / "split_bias.parquet")
    assert failures(bias, SPLIT_BIAS_SCHEMA) == []
    oa = bias.filter(pl.col("metric") == "oa").row(0, named=True)
    assert oa["target_source"] == "cdl" and oa["k"] == 4 and oa["runs"] == 1
    random_oa = per_run.filter(pl.col("metric") == "oa")["random"].item()
    assert abs(oa["bias"] - (random_oa - blocked["oa"])) < 1e-6


def test_without_a_random_test_set_the_tables_are_empty(
    train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    chips = tmp_path / "chips"
    _, subsets = make_world(chips)
    runs = tmp_path / "runs" / "entry"
    run_entry(train_params, shared_params, chips, subsets, ("id", "ssl4eo", "nccm", 2), runs)
    evaluate = EvaluateParams(batch_size=8, checkpoint="best", argmax_over_ignore=False, out=tmp_path / "evals")
    evaluate_entry(evaluate, train_params, shared_params, chips, subsets, runs, tmp_path / "evals" / "e")
    assert pl.read_parquet(tmp_path / "evals" / "e" / "split_bias.parquet").is_empty()
    run_report(tmp_path / "evals", tmp_path / "metrics", "miou", "miou", class_names(shared_params.legends_dir))
    bias = pl.read_parquet(tmp_path / "metrics" / "split_bias.parquet")
    assert bias.is_empty() and bias.columns == list(SPLIT_BIAS_SCHEMA.columns)
