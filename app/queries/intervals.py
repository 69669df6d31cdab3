"""Seeds and intervals as the Transfer page shows them: error bars per backbone, the study's comparisons tested.

Rows of `metrics/intervals.parquet`: one cell (protocol, backbone, target source, k, test source, metric) with the
mean over seeds, their standard deviation and a bootstrap interval over test chips and seeds. Rows of
`metrics/comparisons.parquet`: a paired comparison the study makes (backbone A vs B, or k vs k) on a target's own
test set, with the interval of the difference and a p-value (`training.intervals`, docs/statistics.md).
"""

from __future__ import annotations

import polars as pl

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
