"""Validation: the last run's summary per source and its failure table (errors and warnings).

Either half renders without the other: an unreadable summary still leaves the failure table, and the reverse.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from app.views.common import artifacts, attempt, document, table

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
    st.dataframe(per_source, hide_index=True)

st.subheader("Failures")
if failures is None:
    st.stop()
if failures.is_empty():
    st.success("No errors or warnings in the last run.")
    st.stop()
left, middle, right = st.columns(3)
severity = left.multiselect("Severity", sorted(failures["severity"].unique().to_list()), placeholder="all")
sources = middle.multiselect("Source", sorted(failures["source"].unique().to_list()), placeholder="all")
rules = right.multiselect("Rule", sorted(failures["rule"].unique().to_list()), placeholder="all")
shown = failures
for column, chosen in (("severity", severity), ("source", sources), ("rule", rules)):
    if chosen:
        shown = shown.filter(pl.col(column).is_in(chosen))
st.dataframe(shown.group_by("severity", "source", "rule").len().sort("severity", "source", "rule"), hide_index=True)
st.dataframe(shown, hide_index=True)
