"""The transfer table as the Transfer page shows it: heatmaps, gaps to in-distribution, learning curves, recall.

Rows of `metrics/transfer.parquet`: one model (run_id: protocol, backbone, target source, k) on one source's test
set (test_source), one metric. The heatmap's row is the target source a model was built for (its own k chips under
`id`, `ood+k` and `pretrain-finetune`; held out under `ood`), its column the test set. Classes absent from a test set
have NaN recall, shown as empty.

Beside the published table: rows of `metrics/vs_reference.parquet`, one per number of the reference table
(`report.reference`, the study's by default) with ours beside it, both in percent (`curation.core.reference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from app.queries.order import by_source, source_rank

ID = "id"  # the in-distribution protocol: trained on the target's own chips only
HEADLINE = ("oa", "aa", "aa_study", "miou", "f1_macro")
RECALL = "recall_"
METRIC_NAMES = {  # what the metric codes of the transfer table mean (training/metrics.py computes them)
    "oa": "overall accuracy: the share of labelled test pixels classified correctly",
    "aa": "average accuracy: the mean recall over the classes the test set holds",
    "aa_study": "average accuracy as the study computed it (torchmetrics macro accuracy): absent but predicted "
    "classes and the ignore class count as 0",
    "miou": "mean intersection over union over the classes present or predicted",
    "f1_macro": "mean F1 score over the classes present or predicted",
}


def metric_help(metrics: list[str] | None = None) -> str:
    """One line per metric code: `oa`: overall accuracy ... (the selectors' help and the page's caption)."""
    shown = metrics if metrics is not None else list(METRIC_NAMES)
    return "  \n".join(f"`{m}`: {METRIC_NAMES.get(m, m)}" for m in shown)


@dataclass(frozen=True)
class Choices:
    """What the Transfer page's selectors offer, in a stable order (id first, headline metrics in HEADLINE order)."""

    backbones: list[str]
    protocols: list[str]
    metrics: list[str]
    sizes: list[int]


def options(transfer: pl.DataFrame) -> Choices:
    """Choices for the selectors; per-class metrics are not offered (the recall section shows them)."""
    metrics = set(transfer["metric"].unique().to_list())
    return Choices(
        backbones=sorted(transfer["backbone"].unique().to_list()),
        protocols=sorted(transfer["protocol"].unique().to_list(), key=lambda p: (p != ID, p)),
        metrics=[m for m in HEADLINE if m in metrics],
        sizes=sorted(transfer["k"].unique().to_list()),
    )


def sizes(transfer: pl.DataFrame, protocol: str) -> list[int]:
    """The k values a protocol was run at (ood: 0 only)."""
    return sorted(transfer.filter(pl.col("protocol") == protocol)["k"].unique().to_list())


def _values(transfer: pl.DataFrame, backbone: str, protocol: str, k: int, metric: str) -> pl.DataFrame:
    return transfer.filter(
        pl.col("backbone") == backbone, pl.col("protocol") == protocol, pl.col("k") == k, pl.col("metric") == metric
    ).with_columns(pl.col("value").fill_nan(None))


def heatmap(transfer: pl.DataFrame, backbone: str, protocol: str, k: int, metric: str) -> pl.DataFrame:
    """target_source x test_source -> value (mean over runs should a cell hold several)."""
    return (
        _values(transfer, backbone, protocol, k, metric)
        .group_by("target_source", "test_source")
        .agg(pl.col("value").mean())
        .sort("target_source", "test_source")
    )


def in_distribution(transfer: pl.DataFrame, backbone: str, k: int, metric: str) -> pl.DataFrame:
    """Per source: the `id` model of that source on its own test set (test_source, id_value)."""
    return (
        heatmap(transfer, backbone, ID, k, metric)
        .filter(pl.col("target_source") == pl.col("test_source"))
        .select("test_source", pl.col("value").alias("id_value"))
    )


def gap_to_in_distribution(
    transfer: pl.DataFrame, backbone: str, protocol: str, k: int, metric: str, reference_k: int
) -> pl.DataFrame:
    """Each heatmap cell minus the in-distribution value on its test set (id at `reference_k`): negative is a loss.

    `reference_k` is the size of the in-distribution model compared with; for `ood` (k = 0) pick one of id's sizes.
    """
    cells = heatmap(transfer, backbone, protocol, k, metric)
    reference = in_distribution(transfer, backbone, reference_k, metric)
    return cells.join(reference, on="test_source", how="left").with_columns(gap=pl.col("value") - pl.col("id_value"))


def heatmap_table(cells: pl.DataFrame, order: Sequence[str] = ()) -> pl.DataFrame:
    """The heatmap as a table: one row per target source, one column per test source, both in `order`."""
    wide = by_source(cells, order, "target_source").pivot(
        on="test_source", index="target_source", values="value", maintain_order=True
    )
    tests = [s for s in order if s in wide.columns] + sorted(set(wide.columns) - {"target_source", *order})
    return wide.select("target_source", *tests)


def gap_summary(gaps: pl.DataFrame, order: Sequence[str] = ()) -> pl.DataFrame:
    """Per test source: the in-distribution value and the gaps of the protocol's models to it.

    `this_target`: the model built for this source (under `ood`, trained on every other source: the study's
    cross-region number); `other_targets`: the mean of the models built for the other sources (under `id`, each
    trained on one other source only). Gaps are value minus in-distribution.
    """
    own = gaps.filter(pl.col("target_source") == pl.col("test_source")).select(
        "test_source", pl.col("value").alias("this_target")
    )
    others = (
        gaps.filter(pl.col("target_source") != pl.col("test_source"))
        .group_by("test_source")
        .agg(pl.col("value").mean().alias("other_targets"))
    )
    reference = gaps.group_by("test_source").agg(pl.col("id_value").first().alias("in_distribution"))
    return (
        reference.join(own, on="test_source", how="left")
        .join(others, on="test_source", how="left")
        .with_columns(
            this_target_gap=pl.col("this_target") - pl.col("in_distribution"),
            other_targets_gap=pl.col("other_targets") - pl.col("in_distribution"),
        )
        .select(
            "test_source",
            "in_distribution",
            "this_target",
            "this_target_gap",
            "other_targets",
            pl.col("other_targets_gap"),
        )
        .sort(source_rank("test_source", order), "test_source")
    )


def learning_curves(transfer: pl.DataFrame, protocol: str, metric: str, source: str | None = None) -> pl.DataFrame:
    """Metric on the target's own test set versus k, per backbone: mean over target sources, or one `source`."""
    rows = transfer.filter(
        pl.col("protocol") == protocol,
        pl.col("metric") == metric,
        pl.col("target_source") == pl.col("test_source"),
    )
    if source is not None:
        rows = rows.filter(pl.col("target_source") == source)
    return (
        rows.with_columns(pl.col("value").fill_nan(None))
        .group_by("backbone", "k", "target_source")
        .agg(pl.col("value").mean())  # one value per source first, so a source's repeated runs weigh as one
        .group_by("backbone", "k")
        .agg(pl.col("value").mean(), pl.col("value").count().alias("sources"))  # sources with a value
        .sort("backbone", "k")
    )


def class_recall(transfer: pl.DataFrame, backbone: str, protocol: str, k: int) -> pl.DataFrame:
    """Recall of every class on each source's own test set (target == test); null where the class is absent."""
    return (
        transfer.filter(
            pl.col("backbone") == backbone,
            pl.col("protocol") == protocol,
            pl.col("k") == k,
            pl.col("metric").str.starts_with(RECALL),
            pl.col("target_source") == pl.col("test_source"),
        )
        .group_by("test_source", "metric")
        .agg(pl.col("value").fill_nan(None).mean())
        .select("test_source", pl.col("metric").str.strip_prefix(RECALL).alias("class"), recall=pl.col("value"))
        .sort("test_source", "class")
    )


def provenance(transfer: pl.DataFrame) -> dict[str, list[str]]:
    """Where the numbers come from: crosswalk set(s) and weights (pretrained or random init) per backbone."""
    weights = transfer.select("backbone", "weights").unique().sort("backbone", "weights")
    return {
        "crosswalk_set": sorted(transfer["crosswalk_set"].unique().to_list()),
        "random_init": sorted(weights.filter(pl.col("weights") == "random")["backbone"].to_list()),
    }


# Beside the published table: rows of `metrics/vs_reference.parquet` (curation.core.reference), in percent.
PROTOCOL_ORDER = ("id", "ood", "ood+k")  # the study's table order; other protocols after, by name
REFERENCE_SHOWN = (
    "protocol",
    "target_source",
    "k",
    "origin",
    "theirs_pct",
    "ours_pct",
    "difference_pct",
    "runs",
    "crosswalk_set",
    "weights",
)


@dataclass(frozen=True)
class ReferenceSummary:
    """How much of one metric's published table we ran, and how far ours lie from it (percentage points)."""

    published: int  # reference numbers
    beside: int  # with a number of ours beside them
    mean_difference: float | None  # ours - theirs, mean over those
    mean_abs_difference: float | None
    crosswalk_sets: list[str]  # of our runs beside them
    random_init: bool  # some of ours come from random init


def reference_metrics(compared: pl.DataFrame) -> list[str]:
    """The metrics the reference publishes: headline order first, then any other by name."""
    found = set(compared["metric"].unique().to_list())
    return [m for m in HEADLINE if m in found] + sorted(found - set(HEADLINE))


def reference_backbones(compared: pl.DataFrame) -> list[str]:
    """The backbones the reference publishes numbers for."""
    return sorted(compared["backbone"].unique().to_list())


def _protocol_rank() -> pl.Expr:
    ranks = {p: i for i, p in enumerate(PROTOCOL_ORDER)}
    return pl.col("protocol").replace_strict(ranks, default=len(PROTOCOL_ORDER), return_dtype=pl.Int64)


def reference_rows(compared: pl.DataFrame, backbone: str, metric: str, ran_only: bool) -> pl.DataFrame:
    """One metric's published numbers with ours beside them, in the study's order; `ran_only`: ours not null."""
    rows = compared.filter(pl.col("backbone") == backbone, pl.col("metric") == metric)
    if ran_only:
        rows = rows.filter(pl.col("ours_pct").is_not_null())
    return rows.sort(_protocol_rank(), "protocol", "target_source", "k", "origin").select(REFERENCE_SHOWN)


def reference_summary(compared: pl.DataFrame, backbone: str, metric: str) -> ReferenceSummary:
    """Counts and mean differences of one metric's published numbers."""
    rows = compared.filter(pl.col("backbone") == backbone, pl.col("metric") == metric)
    beside = rows.filter(pl.col("ours_pct").is_not_null())
    differences = beside["difference_pct"]
    weights = {w for value in beside["weights"].drop_nulls().to_list() for w in value.split(",")}
    sets = {s for value in beside["crosswalk_set"].drop_nulls().to_list() for s in value.split(",")}
    return ReferenceSummary(
        published=rows.height,
        beside=beside.height,
        mean_difference=None if beside.is_empty() else float(differences.mean()),  # type: ignore[arg-type]
        mean_abs_difference=None if beside.is_empty() else float(differences.abs().mean()),  # type: ignore[arg-type]
        crosswalk_sets=sorted(sets),
        random_init="random" in weights,
    )


def identical_lines(curves: pl.DataFrame, tolerance: float = 1e-9) -> list[list[str]]:
    """Groups of two or more backbones whose learning curves match at every k: drawn on top of one another."""
    groups: dict[tuple[tuple[int, float | None], ...], list[str]] = {}
    for (backbone,), rows in curves.sort("k").group_by("backbone", maintain_order=True):
        values = rows["value"].to_list()
        key = tuple(
            (int(k), None if v is None else round(float(v) / tolerance) * tolerance)
            for k, v in zip(rows["k"].to_list(), values, strict=True)
        )
        groups.setdefault(key, []).append(str(backbone))
    return [sorted(names) for names in groups.values() if len(names) > 1]
