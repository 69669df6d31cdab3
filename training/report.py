"""The `report` stage: every evaluation table gathered into the tidy results table, DVC metrics and plots.

Reads `<evals>/<entry>/metrics.parquet` and `confusion.parquet` (the evaluate stage's outputs) and writes, under
`<out>`: `transfer.parquet` (every metric row, validated by `TRANSFER_SCHEMA`), `confusion.parquet`, `summary.json`
(a DVC metrics file) and `plots/transfer.csv`, `plots/learning_curves.csv` (DVC plots). Torch-free: the app reads
these. Same inputs, same bytes.

Every seed's value stays in `transfer.parquet`; `intervals.parquet` adds per cell the mean and standard deviation
over seeds and a bootstrap interval over test chips and seeds, and `comparisons.parquet` the study's comparisons
(backbone A vs B, k vs k) as paired bootstrap differences with p-values (`training.intervals`, docs/statistics.md),
both from every test chip's confusion counts (`chip_confusion.parquet`, gathered too). `balance.parquet` measures each
class-balance strategy of `train.balance` against base (AA and per-class recall, paired, at every k); the summary,
plots and the comparison with the reference hold base runs only, so strategies never mix in one number.
`split_bias.parquet` sets every `id` model's score on its source's random (unblocked) test set beside the blocked
one: the optimistic bias a random split hides, per source and metric.

With `report.reference` (a table of published numbers, `curation.core.reference`), also `vs_reference.parquet`: each
published number beside ours on the same cell (protocol, backbone, target source, k, metric; our model on its own
target's test set, the mean over runs), both in percent, and the difference ours minus theirs; and
`plots/vs_reference.csv` (the DVC plot: theirs against ours, the cells we ran). Without one, both are written empty,
so the stage's outputs are always there. The reference is read and validated before anything is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl

from curation.core.artifacts import (
    BALANCE_EFFECTS,
    CHIP_CONFUSION,
    COMPARISONS,
    CONFUSION,
    CURVES_TABLE,
    EVAL_METRICS,
    HEATMAP_TABLE,
    INTERVALS,
    SPLIT_BIAS,
    SUMMARY,
    TRANSFER,
    Artifacts,
)
from curation.core.errors import Problem, ProblemsError
from curation.core.failures import Words, problems_of
from curation.core.io import atomic_write_json, atomic_write_parquet, atomic_write_text
from curation.core.legends import taxonomy_of
from curation.core.params import DEFAULT_PARAMS, load_section
from curation.core.reference import KEYS, PERCENT, REFERENCE_PLOT, VS_REFERENCE, VS_REFERENCE_SCHEMA, read_reference
from curation.core.registry import source_names
from curation.core.result_schemas import (
    CHIP_CONFUSION_SCHEMA,
    CONFUSION_SCHEMA,
    SPLIT_BIAS_KEYS,
    SPLIT_BIAS_RUN_SCHEMA,
    SPLIT_BIAS_SCHEMA,
    TRANSFER_SCHEMA,
)
from curation.core.runner import run_stage
from curation.core.shared import SharedParams
from training.config import ReportParams
from training.intervals import (
    BASE,
    COMPARISONS_SCHEMA,
    INTERVALS_SCHEMA,
    BootstrapSettings,
    balance_effects,
    comparisons,
    intervals,
)

SORT = ("protocol", "backbone", "target_source", "k", "test_source", "metric", "run_id")
CONFUSION_SORT = ("run_id", "test_source", "target_class", "predicted_class")
CHIP_SORT = ("run_id", "test_source", "chip_id", "target_class", "predicted_class")
RUN_KEYS = ("run_id", "protocol", "backbone", "target_source", "k", "seed", "balance")
SUMMARY_METRICS = ("oa", "aa", "miou")
DECIMALS = 6  # floats written to summary.json and the plot tables, so their bytes are stable
REPRO = "run `dvc repro evaluate` first"
CELL = ("protocol", "backbone", "target_source", "k", "metric")  # a reference number's model and metric


def entries(evals: Path) -> list[Path]:
    """The entry folders of `evals`, sorted by name; an error when there are none."""
    folders = sorted(p for p in evals.iterdir() if p.is_dir()) if evals.is_dir() else []
    if not folders:
        detail = "no such folder" if not evals.exists() else "no evaluation entry folders in it"
        raise ProblemsError("nothing to report", [Problem(str(evals), "evaluations exist", detail, REPRO)])
    return folders


def _problems(path: Path, frame: pl.DataFrame, schema: pa.DataFrameSchema, fix: str) -> list[Problem]:
    """Every failure of `schema` on `frame`, grouped by column and rule, as problems naming `path`."""
    return problems_of(frame, schema, Words(str(path), fix, grouped=True))


def gather(folders: list[Path], name: str, schema: pa.DataFrameSchema, sort: tuple[str, ...]) -> pl.DataFrame:
    """Every entry's `name` table, each validated, concatenated in schema column order, validated again, sorted."""
    problems: list[Problem] = []
    frames: list[pl.DataFrame] = []
    for folder in folders:
        path = folder / name
        if not path.is_file():
            problems.append(Problem(str(path), "file exists", f"entry '{folder.name}' has no {name}", REPRO))
            continue
        frame = pl.read_parquet(path)
        found = _problems(path, frame, schema, f"fix the evaluate stage's output or {REPRO}")
        problems += found
        if not found:
            frames.append(frame.select(list(schema.columns)))
    headline = f"the evaluation tables ({name}) break the {schema.name} schema"
    if problems:
        raise ProblemsError(headline, problems)
    table = pl.concat(frames, how="vertical").sort(list(sort))
    fix = "each entry must evaluate different runs: remove the duplicate entry folder or rename its runs"
    problems = _problems(folders[0].parent, table, schema, fix)  # rules across entries: duplicates
    if problems:
        raise ProblemsError(headline, problems)
    return table


def _cells(transfer: pl.DataFrame, metric: str, parameter: str) -> pl.DataFrame:
    """Rows of one metric, tidied; an error naming the params key when there are none."""
    rows = transfer.filter(pl.col("metric") == metric)
    if rows.is_empty():
        known = ", ".join(sorted(transfer["metric"].unique().to_list()))
        raise ProblemsError(
            "cannot draw the report plots",
            [Problem(str(DEFAULT_PARAMS), parameter, f"no '{metric}' rows in the evaluations", f"use one of {known}")],
        )
    return _tidy(rows)


def _tidy(rows: pl.DataFrame) -> pl.DataFrame:
    """NaN values as null, so means skip them; `own`: the cell is the run's own target source test set."""
    return rows.with_columns(
        pl.col("value").fill_nan(None), (pl.col("test_source") == pl.col("target_source")).alias("own")
    )


def split_bias(per_run: pl.DataFrame) -> pl.DataFrame:
    """Per source, backbone, k, strategy and metric: blocked and random test set means over seeds, and their gap.

    `bias` is random minus blocked, the mean over seeds of each seed's difference: the optimism a random split
    would have reported. NaN (an absent class) is left out of the means.
    """
    rows = per_run.with_columns(pl.col("blocked", "random").fill_nan(None))
    return (
        rows.with_columns((pl.col("random") - pl.col("blocked")).alias("bias"))
        .group_by(SPLIT_BIAS_KEYS)
        .agg(
            pl.len().cast(pl.Int64).alias("runs"),
            pl.col("blocked").mean().round(DECIMALS),
            pl.col("random").mean().round(DECIMALS),
            pl.col("bias").mean().round(DECIMALS),
            pl.col("bias").std().round(DECIMALS).alias("bias_std"),
        )
        .sort(list(SPLIT_BIAS_KEYS))
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, DECIMALS)


def summary(transfer: pl.DataFrame) -> dict[str, Any]:
    """Per protocol and backbone: mean over runs of oa, aa, miou on the target test set and on the others, runs."""
    rows = _tidy(transfer.filter(pl.col("metric").is_in(SUMMARY_METRICS)))
    keys = ["protocol", "backbone", "run_id", "metric", "own"]
    per_run = rows.group_by(keys).agg(pl.col("value").mean()).sort(keys)  # a run's mean over its other test sources
    means = {
        (protocol, backbone, metric, own): value
        for protocol, backbone, metric, own, value in per_run.group_by("protocol", "backbone", "metric", "own")
        .agg(pl.col("value").mean())
        .iter_rows()
    }
    runs = transfer.group_by("protocol", "backbone").agg(pl.col("run_id").n_unique()).sort("protocol", "backbone")
    out: dict[str, Any] = {}
    for protocol, backbone, n in runs.iter_rows():
        cell: dict[str, Any] = {"runs": n}
        for own, part in ((True, "target"), (False, "transfer")):
            cell[part] = {m: _round(means.get((protocol, backbone, m, own))) for m in SUMMARY_METRICS}
        out.setdefault(protocol, {})[backbone] = cell
    return out


def heatmap_table(transfer: pl.DataFrame, metric: str) -> pl.DataFrame:
    """backbone, protocol, k, train (the run's target source), test, value: mean over runs sharing a cell."""
    keys = ["backbone", "protocol", "k", "train", "test"]
    return (
        _cells(transfer, metric, "report.heatmap_metric")
        .rename({"target_source": "train", "test_source": "test"})
        .group_by(keys)
        .agg(pl.col("value").mean().round(DECIMALS))
        .drop_nulls("value")
        .sort(keys)
    )


def curve_table(transfer: pl.DataFrame, metric: str) -> pl.DataFrame:
    """backbone, protocol, k, value: mean over target sources of `metric` on their own test set."""
    keys = ["backbone", "protocol", "k"]
    own = _cells(transfer, metric, "report.curve_metric").filter(pl.col("own"))
    per_source = own.group_by([*keys, "target_source"]).agg(pl.col("value").mean()).sort([*keys, "target_source"])
    return per_source.group_by(keys).agg(pl.col("value").mean().round(DECIMALS)).drop_nulls("value").sort(keys)


def _reference_frame(rows: pl.DataFrame | None) -> pl.DataFrame:
    """A reference as `read_reference` returns it; an empty one when there is none."""
    if rows is not None:
        return rows
    types = {name: pl.String for name in KEYS} | {"k": pl.Int64, "value_pct": pl.Float64}
    return pl.DataFrame(schema=types)


def beside_reference(transfer: pl.DataFrame, reference: pl.DataFrame | None) -> pl.DataFrame:
    """One row per reference number: theirs, ours, ours minus theirs, all in percent; validated, sorted.

    Ours: the mean over our runs of that cell on the target's own test set; null when we have none (or NaN).
    """
    ours = (
        transfer.filter(pl.col("test_source") == pl.col("target_source"))
        .with_columns(pl.col("value").fill_nan(None))
        .sort(SORT)
        .group_by(CELL, maintain_order=True)
        .agg(
            (pl.col("value").mean() * PERCENT).alias("ours_pct"),
            pl.col("run_id").n_unique().cast(pl.Int64).alias("runs"),
            pl.col("crosswalk_set").unique().sort().str.join(",").alias("crosswalk_set"),
            pl.col("weights").unique().sort().str.join(",").alias("weights"),
        )
    )
    table = (
        _reference_frame(reference)
        .join(ours, on=list(CELL), how="left")
        .select(
            *KEYS,
            pl.col("value_pct").alias("theirs_pct"),
            pl.col("ours_pct").round(DECIMALS),
            (pl.col("ours_pct") - pl.col("value_pct")).round(DECIMALS).alias("difference_pct"),
            pl.col("runs").fill_null(0),
            "crosswalk_set",
            "weights",
        )
        .sort(list(KEYS))
    )
    problems = _problems(Path(VS_REFERENCE), table, VS_REFERENCE_SCHEMA, "report this bug with the reference file")
    if problems:
        raise ProblemsError("the comparison with the reference breaks its schema", problems)
    return table


def reference_plot(table: pl.DataFrame) -> pl.DataFrame:
    """The cells we ran: a label, metric, origin, theirs, ours and the difference (DVC scatter, theirs vs ours)."""
    label = pl.format("{} k={} {}", "protocol", "k", "target_source").alias("cell")
    return table.filter(pl.col("ours_pct").is_not_null()).select(
        label, "backbone", "metric", "origin", "theirs_pct", "ours_pct", "difference_pct"
    )


def _checked(table: pl.DataFrame, schema: pa.DataFrameSchema, name: str) -> pl.DataFrame:
    """A table the report derived, held to its schema (a failure is a bug here, named as one)."""
    problems = _problems(Path(name), table, schema, "report this bug with the evaluation tables")
    if problems:
        raise ProblemsError(f"the report's {name} breaks its schema", problems)
    return table


def run_report(
    evals: Path,
    out: Path,
    heatmap_metric: str,
    curve_metric: str,
    classes: list[str],
    reference: Path | None = None,
    bootstrap: BootstrapSettings | None = None,
) -> dict[str, Any]:
    """Gather `evals` and the `reference` (if any), write every report file under `out`, return the summary.

    `classes`: the taxonomy's names by class id (ignore first), as the confusion tables name them. Every input is
    read and checked before any file is written.
    """
    settings = bootstrap or BootstrapSettings()
    folders = entries(evals)
    transfer = gather(folders, EVAL_METRICS, TRANSFER_SCHEMA, SORT)
    confusion = gather(folders, CONFUSION, CONFUSION_SCHEMA, CONFUSION_SORT)
    chips = gather(folders, CHIP_CONFUSION, CHIP_CONFUSION_SCHEMA, CHIP_SORT)
    bias = _checked(
        split_bias(gather(folders, SPLIT_BIAS, SPLIT_BIAS_RUN_SCHEMA, ("run_id", "metric"))),
        SPLIT_BIAS_SCHEMA,
        SPLIT_BIAS,
    )
    runs = transfer.select(RUN_KEYS).unique().sort("run_id")
    spread = _checked(intervals(chips, runs, classes, settings), INTERVALS_SCHEMA, INTERVALS)
    paired = _checked(comparisons(chips, runs, classes, settings), COMPARISONS_SCHEMA, COMPARISONS)
    effects = _checked(balance_effects(chips, runs, classes, settings), COMPARISONS_SCHEMA, BALANCE_EFFECTS)
    published = None if reference is None else read_reference(reference, source_names())
    base = transfer.filter(pl.col("balance") == BASE)  # the other strategies are measured in balance.parquet only
    heatmap = heatmap_table(base, heatmap_metric)
    curves = curve_table(base, curve_metric)
    compared = beside_reference(base, published)
    result = summary(base)
    atomic_write_parquet(out / TRANSFER, transfer)
    atomic_write_parquet(out / CONFUSION, confusion)
    atomic_write_parquet(out / CHIP_CONFUSION, chips)
    atomic_write_parquet(out / INTERVALS, spread)
    atomic_write_parquet(out / COMPARISONS, paired)
    atomic_write_parquet(out / BALANCE_EFFECTS, effects)
    atomic_write_parquet(out / SPLIT_BIAS, bias)
    atomic_write_parquet(out / VS_REFERENCE, compared)
    atomic_write_json(out / SUMMARY, result)
    atomic_write_text(out / HEATMAP_TABLE, heatmap.write_csv())
    atomic_write_text(out / CURVES_TABLE, curves.write_csv())
    atomic_write_text(out / REFERENCE_PLOT, reference_plot(compared).write_csv())
    return result


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evals", type=Path, default=None, help="evaluations folder (default: params evaluate.out)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: params report.out)")


def _run(args: argparse.Namespace) -> str:
    artifacts = Artifacts.load(args.params)
    params = load_section(ReportParams, args.params)
    classes = taxonomy_of(load_section(SharedParams, args.params).legends_dir).names_by_id
    evals = args.evals or artifacts.evals.path
    b = params.bootstrap
    settings = BootstrapSettings(resamples=b.resamples, level=b.level, seed=b.seed)
    out = args.out or params.out
    run_report(evals, out, params.heatmap_metric, params.curve_metric, classes, params.reference, settings)
    return ""


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point: read params `report` and write its outputs (paths overridable for a one-off run)."""
    run_stage("report", _run, argv, _options)


if __name__ == "__main__":
    main()
