"""Legends: each source's crosswalk with the pixels the data showed, and where the study's set maps differently."""

from __future__ import annotations

from typing import Any

import pandas as pd
import polars as pl
import streamlit as st

from app.queries.legends import (
    difference_summary,
    differences_with_pixels,
    differing_pixels,
    legend_table,
    pixels_seen,
)
from app.views.common import absent, artifacts, crosswalk_set, optional, optional_document
from app.views.tables import csv_button, show

HIGHLIGHT = "background-color: #fff3b0"

st.title("Legends")
project = artifacts()
active = crosswalk_set(project)
sets = sorted(p.name for p in project.legends_dir.iterdir() if p.is_dir() and any(p.glob("*.csv")))
others = [name for name in ["toolkit", *sets] if name != active.name]

left, right = st.columns(2)
source = left.selectbox("Source", list(active.crosswalks))
compare = right.selectbox("Compare with set", [*others, "(none)"])
other = crosswalk_set(project, compare)[source] if compare != "(none)" else None
histograms = optional(project.histograms())
if histograms is None and absent(project.histograms()):  # unreadable: optional showed why
    st.info("Pixels seen are written by stage `validate` (`uv run dvc repro validate`); the crosswalk is shown alone.")
seen = pixels_seen(histograms, source) if histograms is not None else None
legend = legend_table(active[source], other, seen)

cells = st.columns(4)
cells[0].metric("Codes", legend.height)
cells[1].metric("Codes in the data", legend.filter(pl.col("pixels") > 0).height if seen is not None else "-")
cells[2].metric(f"Mapped differently by `{compare}`", int(legend["differs"].sum()) if other is not None else "-")
changed = f"{differing_pixels(legend):,}" if seen is not None and other is not None else "-"
cells[3].metric("Pixels mapped differently", changed)
st.caption(f"`{active[source].path}` (set `{active.name}`, {active[source].match} matching)")

only_seen = st.toggle("Only codes present in the data", value=seen is not None, disabled=seen is None)
only_diff = st.toggle("Only codes mapped differently", value=False, disabled=other is None)
shown = legend
if only_seen and seen is not None:
    shown = shown.filter(pl.col("pixels") > 0)
if only_diff and other is not None:
    shown = shown.filter(pl.col("differs"))


def _highlight(row: pd.Series[Any]) -> list[str]:
    return [HIGHLIGHT if row.get("differs", False) else "" for _ in row]


st.dataframe(shown.to_pandas().style.apply(_highlight, axis=1), hide_index=True)

if compare != "(none)":
    st.subheader(f"Every source: `{active.name}` vs `{compare}`")
    summary = difference_summary(active, crosswalk_set(project, compare), histograms)
    st.caption("Codes each source's crosswalks map differently, and the share of the source's pixels they hold.")
    show(summary)
    csv_button(summary, f"differences-{active.name}-vs-{compare}", key="summary_csv")

st.subheader("Every difference between the sets")
report = optional_document(project.crosswalks_report())
if report is None:
    if absent(project.crosswalks_report()):
        st.info("`reports/crosswalks.json` is written by stage `crosswalks` (`uv run dvc repro crosswalks`).")
else:
    for name, rows in report.get("differences", {}).items():
        st.markdown(f"**`{report['active_set']}` vs `{name}`**: {len(rows)} codes")
        show(differences_with_pixels(rows, histograms))
