"""One Transfer cell (the model built for source A, tested on source B): every class's recall, the confusion matrix.

A recall of 0 (the class is in B's test set and the model finds none of it) is a failure and is kept apart from a
class B's test set does not hold (recall undefined: NaN in the transfer table, `absent` here), so a chart can draw
the one as a visible zero and name the other. Confusion matrices come from `metrics/confusion.parquet` (run_id,
test_source, target_class, predicted_class, pixels), summed over the seeds of the cell's model.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from app.queries.order import source_rank
from app.queries.transfer import RECALL

ABSENT = "absent"  # the test set holds no pixel of the class: recall undefined
ZERO = "zero"  # the class is there and the model finds none of it
MEASURED = "measured"
SEP = " → "


def cell_label(target: str, test: str) -> str:
    """`cdl → nccm`: how a cell is named in selectors and file names."""
    return f"{target}{SEP}{test}"


def parse_cell(label: str) -> tuple[str, str] | None:
    """The (target, test) of a `cell_label`, or None."""
    parts = label.split(SEP)
    return (parts[0], parts[1]) if len(parts) == 2 else None


def cell_recall(
    transfer: pl.DataFrame, backbone: str, protocol: str, k: int, classes: Sequence[str], order: Sequence[str]
) -> pl.DataFrame:
    """Recall of every class in every cell (target_source x test_source) of one backbone, protocol and k.

    One row per cell and class (`classes`: the labelled ones, in taxonomy order): recall (mean over seeds; null when
    absent), status (measured, zero, absent) and label (what the chart writes over the bar: `0.42`, `0`, `absent`).
    """
    rows = (
        transfer.filter(
            pl.col("backbone") == backbone,
            pl.col("protocol") == protocol,
            pl.col("k") == k,
            pl.col("metric").str.starts_with(RECALL),
        )
        .group_by("target_source", "test_source", "metric")
        .agg(pl.col("value").fill_nan(None).mean().alias("recall"))
        .select("target_source", "test_source", pl.col("metric").str.strip_prefix(RECALL).alias("class"), "recall")
    )
    cells = rows.select("target_source", "test_source").unique()
    grid = cells.join(pl.DataFrame({"class": list(classes)}, schema={"class": pl.String}), how="cross")
    status = (
        pl.when(pl.col("recall").is_null())
        .then(pl.lit(ABSENT))
        .when(pl.col("recall") == 0)
        .then(pl.lit(ZERO))
        .otherwise(pl.lit(MEASURED))
    )
    label = (
        pl.when(pl.col("recall").is_null())
        .then(pl.lit(ABSENT))
        .when(pl.col("recall") == 0)
        .then(pl.lit("0"))
        .otherwise(pl.col("recall").round(2).cast(pl.String))
    )
    rank = {c: i for i, c in enumerate(classes)}
    return (
        grid.join(rows, on=["target_source", "test_source", "class"], how="left")
        .with_columns(status=status, label=label)
        .sort(
            source_rank("target_source", order),
            source_rank("test_source", order),
            pl.col("class").replace_strict(rank, default=len(rank), return_dtype=pl.Int64),
        )
    )


def recall_wide(recall: pl.DataFrame) -> pl.DataFrame:
    """One row per cell, one column per class (null: absent): the table beside the chart and its CSV."""
    return recall.pivot(on="class", index=["target_source", "test_source"], values="recall", maintain_order=True)


def failures(recall: pl.DataFrame) -> pl.DataFrame:
    """The cells and classes with a recall of exactly 0: what fails where."""
    return recall.filter(pl.col("status") == ZERO).select("target_source", "test_source", "class")


def cell_runs(transfer: pl.DataFrame, backbone: str, protocol: str, k: int, target: str) -> list[str]:
    """The run ids (one per seed) of the model a cell shows."""
    return sorted(
        transfer.filter(
            pl.col("backbone") == backbone,
            pl.col("protocol") == protocol,
            pl.col("k") == k,
            pl.col("target_source") == target,
        )["run_id"]
        .unique()
        .to_list()
    )


def confusion_matrix(confusion: pl.DataFrame, runs: Sequence[str], test: str, classes: Sequence[str]) -> pl.DataFrame:
    """True class x predicted class of runs `runs` on test source `test`: pixels summed over the runs, row shares.

    Every true class the test set holds has a full row (zeros included); `share` is its pixels over the row's total,
    so the diagonal is the class's recall. True classes the test set lacks have no row (see `absent_classes`).
    """
    rows = (
        confusion.filter(pl.col("test_source") == test, pl.col("run_id").is_in(list(runs)))
        .group_by("target_class", "predicted_class")
        .agg(pl.col("pixels").sum().cast(pl.Int64))
    )
    present = [c for c in classes if c in set(rows["target_class"].to_list())]
    predicted = list(classes) + sorted(set(rows["predicted_class"].to_list()) - set(classes))  # `ignore`, say
    grid = pl.DataFrame({"target_class": present}, schema={"target_class": pl.String}).join(
        pl.DataFrame({"predicted_class": predicted}, schema={"predicted_class": pl.String}), how="cross"
    )
    rank = {c: i for i, c in enumerate(predicted)}
    return (
        grid.join(rows, on=["target_class", "predicted_class"], how="left")
        .with_columns(pl.col("pixels").fill_null(0))
        .with_columns(share=pl.col("pixels") / pl.col("pixels").sum().over("target_class"))
        .with_columns(pl.col("share").fill_nan(None))
        .sort(
            pl.col("target_class").replace_strict(rank, default=len(rank), return_dtype=pl.Int64),
            pl.col("predicted_class").replace_strict(rank, default=len(rank), return_dtype=pl.Int64),
        )
    )


def absent_classes(matrix: pl.DataFrame, classes: Sequence[str]) -> list[str]:
    """The classes the cell's test set does not hold (no row in the matrix)."""
    present = set(matrix["target_class"].to_list())
    return [c for c in classes if c not in present]
