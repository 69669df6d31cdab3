"""Schema failures as problems: the one translator from a Pandera failure to a `Problem` naming file, rule and fix.

A table's failures are told in its own words (`Words`): which file each row names, what a check is called and how
to fix it, detail templates filled with the row's values. `grouped` tables (the artifacts a stage reads, whose
rows name no file) get one problem per column and rule, with a count and the first rows. A template is filled only
when the row and context hold every field it names (`fill`): a template written for another table never raises.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandera.polars as pa
import polars as pl
from pandera.errors import SchemaErrors

from curation.core.errors import Problem, shorten


@dataclass(frozen=True)
class Failure:
    """One failed check on one row (row None: the check failed for the table as a whole)."""

    row: int | None
    column: str | None
    rule: str
    value: str


def failures(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> list[Failure]:
    """Every failure of `schema` on `frame` (lazy validation: all of them, not the first)."""
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        found = []
        for case in exc.failure_cases.iter_rows(named=True):
            column = case["column"] if case["schema_context"] == "Column" else None
            index = case["index"]
            found.append(
                Failure(None if index is None else int(index), column, str(case["check"]), str(case["failure_case"]))
            )
        return found
    return []


@dataclass(frozen=True)
class Words:
    """How one table's failures are told."""

    file: str  # the file problems name (when rows name none, or as the fallback)
    fix: str  # the fix when no rule-specific one applies
    file_column: str | None = None  # a column that names each row's file
    line_offset: int | None = None  # name a row as `<file>:<row + offset>` (a CSV's line: offset 2)
    rules: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # check name -> (rule in words, fix)
    fixes: Mapping[str, str] = field(default_factory=dict)  # rule prefix -> fix (a template, like details)
    details: Mapping[str, str] = field(default_factory=dict)  # rule -> detail template ({column} values, context)
    context: Mapping[str, str] = field(default_factory=dict)  # template values besides the row's
    values: Literal["assign", "quoted"] = "assign"  # detail without a template: `col = v` or `column 'col' value 'v'`
    grouped: bool = False  # one problem per column and rule: a count and the first rows


def problems_of(frame: pl.DataFrame, schema: pa.DataFrameSchema, words: Words) -> list[Problem]:
    """Every failure of `schema` on `frame`, told in `words`."""
    found = failures(frame, schema)
    return grouped_problems(found, words) if words.grouped else [row_problem(f, frame, words) for f in found]


def grouped_problems(found: Sequence[Failure], words: Words) -> list[Problem]:
    """One problem per column and rule: how many rows fail and the first of them."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in found:
        shown = f.value if f.row is None else f"row {f.row}" if f.column is None else f"row {f.row}: {f.value}"
        groups.setdefault((f.column or "(table)", f.rule), []).append(shown)
    return [
        Problem(words.file, rule, f"column {column}: {len(rows)} failure(s): {shorten(rows)}", words.fix)
        for (column, rule), rows in sorted(groups.items())
    ]


def row_problem(failure: Failure, table: pl.DataFrame, words: Words) -> Problem:
    """One failure on one row as a problem naming the row's file, in words (templates per rule)."""
    has_row = failure.row is not None and failure.row < table.height
    row: dict[str, Any] = table.row(failure.row, named=True) if has_row and failure.row is not None else {}
    if words.file_column is not None:
        where = str(row.get(words.file_column, "?"))
    elif words.line_offset is not None and failure.row is not None:
        where = f"{words.file}:{failure.row + words.line_offset}"
    else:
        where = words.file
    values = {**words.context, **{k: "none" if v is None else v for k, v in row.items()}}
    rule, fix = _rule_and_fix(failure, words)
    chip = f"chip {row['chip_id']}: " if "chip_id" in row else ""
    template = words.details.get(failure.rule)
    detail = fill(template, values) if template and row else None
    if detail is not None:
        detail = chip + detail
    elif words.values == "quoted":
        detail = (f"column '{failure.column}' " if failure.column else "") + f"value {failure.value!r}"
    else:
        detail = chip + (f"{failure.column} = {failure.value}" if failure.column else failure.value)
    return Problem(where, rule, detail, (fill(fix, values) or fix) if row else fix)


def fill(template: str, values: Mapping[str, Any]) -> str | None:
    """`template` filled from `values`; None when it names a field `values` lacks or a format does not apply."""
    try:
        fields = {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
        if not fields <= values.keys():
            return None
        return template.format_map(values)
    except (ValueError, TypeError, IndexError, AttributeError, KeyError):
        return None


def _rule_and_fix(failure: Failure, words: Words) -> tuple[str, str]:
    if failure.rule in words.rules:
        return words.rules[failure.rule]
    if failure.rule.startswith("isin("):
        allowed = ", ".join(str(v) for v in ast.literal_eval(failure.rule[len("isin(") : -1]))
        return f"known {failure.column}", f"use one of: {allowed}"
    fix = next((text for prefix, text in words.fixes.items() if failure.rule.startswith(prefix)), words.fix)
    return failure.rule, fix
