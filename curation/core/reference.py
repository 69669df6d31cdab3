"""Published numbers beside ours: the reference table `report.reference` names, and the comparison the report writes.

A reference file (`reference/study_results_v1.csv` holds the study's) is a CSV with one row per published number:
`protocol, backbone, target_source, k, metric, value_pct, origin`, values in percent, `origin` where the number was
read. It is read with every column as text and validated by `reference_schema` (unknown protocol, metric or source
names are errors naming the file, the line and the names allowed). Its names are mapped to ours through the lookup
tables below, one entry per name a reference may use, so a reference in other words needs a row here, not code.

The report stage writes `<report.out>/vs_reference.parquet` (`VS_REFERENCE_SCHEMA`): one row per reference number,
ours beside it in the same unit (percent: our tables hold fractions), the difference ours minus theirs in percentage
points. The app reads it; nothing here imports torch or a stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import pandera.polars as pa
import polars as pl

from curation.core.errors import Problem, ProblemsError
from curation.core.failures import Words, problems_of
from curation.core.schemas import integer_check, named_check, non_blank_check, table_check

VS_REFERENCE = "vs_reference.parquet"  # in the report's folder
REFERENCE_PLOT = "plots/vs_reference.csv"  # the DVC plot: theirs vs ours
PERCENT = 100.0  # our tables hold fractions in [0, 1]; references hold percent
COLUMNS = ("protocol", "backbone", "target_source", "k", "metric", "value_pct", "origin")
KEYS = ("protocol", "backbone", "target_source", "k", "metric", "origin")  # one reference number

# A reference's names -> ours (training protocols, metric names of training/metrics.py).
PROTOCOLS: Mapping[str, str] = MappingProxyType({"id": "id", "ood": "ood", "ood+k": "ood+k"})
METRICS: Mapping[str, str] = MappingProxyType(
    {
        "oa": "oa",  # overall accuracy
        "aa": "aa",  # mean recall over the classes present in the test set (ours)
        "aa_study": "aa_study",  # the study's AA (torchmetrics 1.4 macro semantics)
        "miou": "miou",
        "f1_macro": "f1_macro",
    }
)
WITHOUT_TARGET = ("ood",)  # protocols that train on no target chip: k = 0 exactly for them
UNIQUE = "unique (protocol, backbone, target_source, k, metric, origin)"

FORMAT = "see reference/README.md for the format"


def _number_between(low: float, high: float) -> pa.Check:
    def predicate(column: pl.Expr) -> pl.Expr:
        value = column.cast(pl.Float64, strict=False)
        return value.is_not_null() & value.is_between(low, high)

    return named_check(f"a number in [{low:g}, {high:g}] (percent)", predicate)


def reference_schema(sources: Sequence[str]) -> pa.DataFrameSchema:
    """A reference file read as text: known names, integer k, percent values, one row per number."""
    k = pl.col("k").cast(pl.Int64, strict=False)
    without_target = pl.col("protocol").is_in(list(WITHOUT_TARGET))
    unknown = ~pl.col("protocol").is_in(list(PROTOCOLS))  # told by the protocol column's own rule
    return pa.DataFrameSchema(
        {
            "protocol": pa.Column(pl.String, checks=pa.Check.isin(list(PROTOCOLS))),
            "backbone": pa.Column(pl.String, checks=non_blank_check()),
            "target_source": pa.Column(pl.String, checks=pa.Check.isin(list(sources))),
            "k": pa.Column(pl.String, checks=integer_check()),
            "metric": pa.Column(pl.String, checks=pa.Check.isin(list(METRICS))),
            "value_pct": pa.Column(pl.String, checks=_number_between(0.0, PERCENT)),
            "origin": pa.Column(pl.String, checks=non_blank_check()),
        },
        strict=True,
        ordered=True,
        checks=[
            table_check(UNIQUE, ~pl.struct(KEYS).is_duplicated()),
            table_check(
                f"k = 0 exactly for {', '.join(WITHOUT_TARGET)}", unknown | k.is_null() | (without_target == (k == 0))
            ),
        ],
        name="reference results",
    )


VS_REFERENCE_SCHEMA = pa.DataFrameSchema(
    {
        "protocol": pa.Column(pl.String, checks=non_blank_check()),
        "backbone": pa.Column(pl.String, checks=non_blank_check()),
        "target_source": pa.Column(pl.String, checks=non_blank_check()),
        "k": pa.Column(pl.Int64, checks=named_check("k >= 0", lambda c: c >= 0)),
        "metric": pa.Column(pl.String, checks=non_blank_check()),
        "origin": pa.Column(pl.String, checks=non_blank_check()),
        "theirs_pct": pa.Column(pl.Float64, checks=named_check("percent", lambda c: c.is_between(0.0, PERCENT))),
        "ours_pct": pa.Column(  # null: we have no run of that cell (or its value is NaN: a class absent)
            pl.Float64, checks=named_check("percent", lambda c: c.is_between(0.0, PERCENT)), nullable=True
        ),
        "difference_pct": pa.Column(pl.Float64, nullable=True),  # ours - theirs, percentage points
        "runs": pa.Column(pl.Int64, checks=named_check("runs >= 0", lambda c: c >= 0)),  # our runs averaged
        "crosswalk_set": pa.Column(pl.String, nullable=True),  # of our runs, comma-joined when several
        "weights": pa.Column(pl.String, nullable=True),  # pretrained / random, comma-joined when several
    },
    strict=True,
    ordered=True,
    checks=[table_check(UNIQUE, ~pl.struct(KEYS).is_duplicated())],
    name="results beside the reference",
)


def _fail(path: Path, rule: str, detail: str, fix: str) -> ProblemsError:
    return ProblemsError("cannot read the reference results", [Problem(str(path), rule, detail, fix)])


def read_reference(path: Path, sources: Sequence[str]) -> pl.DataFrame:
    """The reference file, validated, in our names and types (k Int64, value_pct Float64), columns as COLUMNS.

    Every broken rule is one problem naming the file and line; all of them are reported at once.
    """
    if not path.is_file():
        fix = "point report.reference at a reference file (reference/study_results_v1.csv) or set it to null"
        raise _fail(path, "file exists", "no such file (params report.reference)", fix)
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise _fail(path, "readable CSV", str(exc).splitlines()[0], "fix the CSV syntax") from exc
    if tuple(frame.columns) != COLUMNS:
        missing = [c for c in COLUMNS if c not in frame.columns]
        extra = [c for c in frame.columns if c not in COLUMNS]
        found = ", ".join(f"{label} {cols}" for label, cols in (("missing", missing), ("unknown", extra)) if cols)
        detail = f"header is {','.join(frame.columns)}" + (f" ({found})" if found else " (out of order)")
        raise _fail(path, "reference columns", detail, f"use the header {','.join(COLUMNS)}; {FORMAT}")
    cell = "{protocol} {backbone} {target_source} k={k} {metric} ({origin})"
    words = Words(
        str(path),
        f"fix the row; {FORMAT}",
        line_offset=2,
        values="quoted",
        rules={"not_nullable": ("value present", f"fill in every column; {FORMAT}")},
        fixes={
            "integer": "write k as a whole number of target chips (0 for ood)",
            "a number in": "write the value in percent (58.89, not 0.5889)",
            "unique": "keep one row per number, or tell the rows apart by origin",
            "k = 0": "ood trains on no target chip (k = 0); id and ood+k need k > 0",
        },
        details={UNIQUE: f"{cell} is listed again", f"k = 0 exactly for {', '.join(WITHOUT_TARGET)}": cell},
    )
    problems = problems_of(frame, reference_schema(sources), words)
    if problems:
        raise ProblemsError(f"the reference results break the {reference_schema(sources).name} schema", problems)
    return frame.with_columns(
        pl.col("protocol").replace_strict(dict(PROTOCOLS)),
        pl.col("metric").replace_strict(dict(METRICS)),
        pl.col("k").cast(pl.Int64),
        pl.col("value_pct").cast(pl.Float64),
    )
