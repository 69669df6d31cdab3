"""Seeds and intervals as the Transfer page shows them: error bars per backbone, the study's comparisons tested.

Rows of `metrics/intervals.parquet`: one cell (protocol, backbone, target source, k, test source, metric) with the
mean over seeds, their standard deviation and a bootstrap interval over test chips and seeds. Rows of
`metrics/comparisons.parquet`: a paired comparison the study makes (backbone A vs B, or k vs k) on a target's own
test set, with the interval of the difference and a p-value (`training.intervals`, docs/statistics.md).
"""

from __future__ import annotations

import polars as pl

BASE = "base"  # the balance strategy every other view shows; the others are compared with it on their own
SUPPORTED = "supported"
NOT_SUPPORTED = "not supported by the data"


def own_intervals(intervals: pl.DataFrame, protocol: str, k: int, metric: str) -> pl.DataFrame:
    """Each backbone's model of each target source on that source's own test set: mean, interval, seeds."""
    return (
        intervals.filter(
            (pl.col("protocol") == protocol)
            & (pl.col("k") == k)
            & (pl.col("metric") == metric)
            & (pl.col("test_source") == pl.col("target_source"))
        )
        .select("target_source", "backbone", "seeds", "mean", "std", "ci_low", "ci_high")
        .sort("target_source", "backbone")
    )


def comparison_rows(comparisons: pl.DataFrame, protocol: str, metric: str) -> pl.DataFrame:
    """The comparisons under one protocol and metric, each with its verdict in words, the unsupported first."""
    verdict = pl.when(pl.col("supported")).then(pl.lit(SUPPORTED)).otherwise(pl.lit(NOT_SUPPORTED)).alias("verdict")
    held = pl.coalesce(pl.col("backbone"), pl.col("k").cast(pl.String)).alias("at")
    return (
        comparisons.filter((pl.col("protocol") == protocol) & (pl.col("metric") == metric))
        .select(
            "comparison",
            "target_source",
            held,
            "a",
            "b",
            "mean_a",
            "mean_b",
            "difference",
            "ci_low",
            "ci_high",
            "p_value",
            verdict,
        )
        .sort("verdict", "comparison", "target_source", "a", "b")  # "not supported ..." sorts before "supported"
    )


def unsupported_share(rows: pl.DataFrame) -> tuple[int, int]:
    """How many of the comparisons shown the data do not support, and how many there are."""
    return int((rows["verdict"] == NOT_SUPPORTED).sum()), rows.height


def base_runs(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows of base runs only (`train.balance`), so strategies never mix in one mean; balance comparisons out.

    Tables written before `train.balance` have no `balance` column: every row is a base run.
    """
    if "balance" not in frame.columns:
        return frame
    if "comparison" in frame.columns:
        return frame.filter((pl.col("comparison") != "balance") & (pl.col("balance") == BASE))
    return frame.filter(pl.col("balance") == BASE)


def balance_rows(effects: pl.DataFrame, protocol: str, k: int) -> pl.DataFrame:
    """Each strategy against base under one protocol and k, per backbone, target and metric (AA, recalls)."""
    verdict = pl.when(pl.col("supported")).then(pl.lit(SUPPORTED)).otherwise(pl.lit(NOT_SUPPORTED)).alias("verdict")
    return (
        effects.filter((pl.col("protocol") == protocol) & (pl.col("k") == k))
        .select(
            pl.col("b").alias("strategy"),
            "backbone",
            "target_source",
            "metric",
            pl.col("mean_a").alias("base"),
            pl.col("mean_b").alias("with_strategy"),
            "difference",
            "ci_low",
            "ci_high",
            verdict,
        )
        .sort("strategy", "backbone", "target_source", "metric")
    )


def split_bias_rows(bias: pl.DataFrame, k: int, metric: str) -> pl.DataFrame:
    """Per source and backbone (base runs, one k and metric): the blocked and random test sets' means and the gap."""
    return (
        base_runs(bias)
        .filter((pl.col("k") == k) & (pl.col("metric") == metric))
        .select("target_source", "backbone", "runs", "blocked", "random", "bias", "bias_std")
        .sort("target_source", "backbone")
    )
