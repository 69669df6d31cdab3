"""Validation: the last run's summary per source and its failure table (errors and warnings).

Either half renders without the other: an unreadable summary still leaves the failure table, and the reverse.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from app.queries.chips import with_chips
from app.queries.order import by_source, source_order
from app.views.common import artifacts, attempt, document, open_chip, optional, picked_row, table
from app.views.tables import csv_button, show

ROWS_KEY = "validation_rows"

st.title("Validation")
project = artifacts()
summary = attempt(lambda: document(project.validation_summary()))
failures = attempt(lambda: table(project.failures()))
if summary is None and failures is None:
    st.stop()

if summary is not None:
    per_source = pl.DataFrame(
        [{"source": name, **counts} for name, counts in summary["sources"].items()],
        schema={"source": pl.String, "chips": pl.Int64, "errors": pl.Int64, "warnings": pl.Int64},
    )
    cells = st.columns(4)
    cells[0].metric("Result", "pass" if summary["ok"] else "fail")
    cells[1].metric("Chips checked", int(per_source["chips"].sum()))
    cells[2].metric("Errors", int(per_source["errors"].sum()))
    cells[3].metric("Warnings", int(per_source["warnings"].sum()))
    st.caption(f"Crosswalk set `{summary['crosswalk_set']}` · `{project.validation}`")
    show(by_source(per_source, source_order(project.sources, per_source["source"].to_list())))

st.subheader("Failures")
if failures is None:
    st.stop()
if failures.is_empty():
    st.success("No errors or warnings in the last run.")
    st.stop()
left, middle, right = st.columns(3)
severity = left.multiselect("Severity", sorted(failures["severity"].unique().to_list()), placeholder="all")
order = source_order(project.sources, failures["source"].unique().to_list())
sources = middle.multiselect("Source", order, placeholder="all")
rules = right.multiselect("Rule", sorted(failures["rule"].unique().to_list()), placeholder="all")
shown = failures
for column, chosen in (("severity", severity), ("source", sources), ("rule", rules)):
    if chosen:
        shown = shown.filter(pl.col(column).is_in(chosen))
counts = shown.group_by("severity", "source", "rule").agg(pl.len().cast(pl.Int64).alias("findings"))
show(by_source(counts.sort("severity", "rule"), order).sort("severity", maintain_order=True))
manifest = optional(project.manifest())
if manifest is not None:
    shown = with_chips(shown, manifest)
    selected = picked_row(st.session_state.get(ROWS_KEY))
    if selected is not None and selected < shown.height and shown["chip_id"][selected] is not None:
        row = shown.row(selected, named=True)
        open_chip(row["chip_id"], row["source"])
show(shown, key=ROWS_KEY, on_select="rerun", selection_mode="single-row")
if manifest is not None:
    st.caption("`chip_id`: the chip a finding is about. Select its row to open the chip in the gallery.")
csv_button(shown, "validation_failures", "Download findings CSV")
