"""Class balance: pixel and chip shares per source and subset, before and after harmonization."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import charts
from app.queries.balance import ALL_CHIPS, class_balance, imbalance, native_balance, scoped
from app.queries.legends import crosswalk_frame
from app.views.common import absent, artifacts, class_colors, class_names, crosswalk_set, guard, optional, table

st.title("Class balance")
project = artifacts()
manifest = guard(lambda: table(project.manifest()))
subsets = optional(project.subset_lists())
if subsets is None and absent(project.subset_lists()):  # unreadable: its error is shown above
    st.info("Only whole sources for now: the subsets are written by stage `subsets` (`uv run dvc repro subsets`).")
classes, colors = class_names(project), class_colors(project)
rows = scoped(manifest, subsets)

left, right = st.columns([2, 1])
scope = left.radio("Compare", ["sources", "subsets of one source"], horizontal=True)
include_ignore = right.toggle("Include ignore", value=True, help="ignore: nodata, ambiguous, outside parcels")
if scope == "sources":
    rows, x = rows.filter(pl.col("subset") == ALL_CHIPS), "source"
else:
    source = st.selectbox("Source", sorted(manifest["source"].unique().to_list()))
    rows, x = rows.filter(pl.col("source") == source), "subset"

balance = class_balance(rows, classes, project.min_class_share, include_ignore=include_ignore)
order = [c for c in classes if include_ignore or c != "ignore"]
pixel_col, chip_col = st.columns(2)
pixel_col.altair_chart(charts.stacked_shares(balance, x, "pixel_share", colors, order, "Pixel share"), width="stretch")
chip_col.altair_chart(
    charts.stacked_shares(balance, x, "dominant_share", colors, order, "Chip share (dominant class)"), width="stretch"
)

st.subheader("Imbalance and missing classes")
st.caption(
    f"Imbalance ratio: pixels of the commonest labelled class over the rarest present. A class is missing when no "
    f"chip of the group has at least {project.min_class_share:.0%} of its pixels in it (`subsets.min_class_share`)."
)
st.dataframe(imbalance(balance).drop("source" if x == "subset" else "subset"), hide_index=True)
with st.expander("Every number"):
    st.dataframe(balance, hide_index=True)

st.subheader("Before harmonization: native codes")
histograms = optional(project.histograms())
if histograms is None:
    if absent(project.histograms()):  # unreadable: optional showed why
        path = project.histograms()[0]
        st.info(f"`{path}` is missing: it is written by stage `validate` (`uv run dvc repro validate`).")
else:
    active = crosswalk_set(project)
    names = pl.concat(crosswalk_frame(cw).with_columns(source=pl.lit(s)) for s, cw in active.crosswalks.items())
    native = native_balance(histograms, rows, names)
    st.altair_chart(
        charts.native_shares(native, x, colors, classes, "Pixel share of each native code, coloured by its class"),
        width="stretch",
    )
    st.caption("Each segment is one code of the source's own legend; the Legends page lists them.")
