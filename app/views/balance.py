"""Class balance: every source and subset at once, under each crosswalk set, imbalance, native codes.

A click on a bar segment or a row of the imbalance table opens those chips in the gallery.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import charts
from app.queries.balance import (
    ALL_CHIPS,
    class_balance,
    imbalance,
    native_balance,
    scoped,
    set_differences,
    set_shares,
    share_table,
)
from app.queries.legends import code_targets, crosswalk_frame
from app.queries.order import by_source, source_order
from app.queries.overview import subset_order
from app.views.common import (
    absent,
    artifacts,
    class_colors,
    class_names,
    crosswalk_set,
    guard,
    open_gallery,
    optional,
    picked,
    picked_row,
    set_names,
    table,
)
from app.views.tables import csv_button, show

GRID_KEY, ROWS_KEY = "balance_grid", "balance_imbalance_rows"
SHARES = {"pixel share": "pixel_share", "chip share (dominant class)": "dominant_share"}

st.title("Class balance")
project = artifacts()
manifest = guard(lambda: table(project.manifest()))
subsets = optional(project.subset_lists())
if subsets is None and absent(project.subset_lists()):  # unreadable: its error is shown above
    st.info("Only whole sources for now: the subsets are written by stage `subsets` (`uv run dvc repro subsets`).")
classes, colors = class_names(project), class_colors(project)
order = source_order(project.sources, manifest["source"].unique().to_list())
rows = scoped(manifest, subsets)

left, right = st.columns([2, 1])
share_name = str(left.radio("Share", list(SHARES), horizontal=True))
include_ignore = right.toggle("Include ignore", value=True, help="ignore: nodata, ambiguous, outside parcels")
share = SHARES[share_name]
shown_classes = [c for c in classes if include_ignore or c != "ignore"]
every = by_source(class_balance(rows, classes, project.min_class_share, include_ignore=include_ignore), order)

# A click on a segment (source, subset, class) or on a row of the imbalance table opens the gallery.
bar = picked(st.session_state.get(GRID_KEY), charts.BAR_PICK)
if bar is not None:
    open_gallery(bar.get("source"), bar.get("subset"), None if bar.get("class") == "ignore" else bar.get("class"))

st.subheader("Every source and subset")
st.altair_chart(
    charts.share_grid(
        every, "subset", share, colors, shown_classes, f"{share_name.capitalize()} per subset",
        facet_order=order, pickable=True,
    ),
    key=GRID_KEY,
    on_select="rerun",
)  # fmt: skip
st.caption(
    "One panel per source, one bar per subset (`all chips`: the whole source). Click a segment to open those chips "
    "in the gallery (the subset's chips that contain the class)."
)
shares = share_table(every, share)
with st.expander("Shares of every source and subset (table)"):
    show(shares)
csv_button(
    every.select("source", "subset", "class", "pixels", "pixel_share", "chips", "dominant_share"),
    "class_balance",
    "Download shares CSV",
)

st.subheader("Imbalance and missing classes")
ratios = by_source(imbalance(every), order)
chosen = picked_row(st.session_state.get(ROWS_KEY))
if chosen is not None and chosen < ratios.height:
    row = ratios.row(chosen, named=True)
    open_gallery(row["source"], row["subset"])
show(ratios, key=ROWS_KEY, on_select="rerun", selection_mode="single-row")
st.caption(
    f"imbalance_ratio: pixels of the commonest labelled class over the rarest, over every labelled class: ∞ when a "
    f"class has no pixel (ratio_present: over the classes with pixels). A class is missing when no chip of the "
    f"group has at least {project.min_class_share:.0%} of its pixels in it (`subsets.min_class_share`). Select a "
    "row to open its chips in the gallery."
)
csv_button(ratios, "imbalance", "Download imbalance CSV")

st.subheader("Under each crosswalk set")
histograms = optional(project.histograms())
names = set_names(project)
if histograms is None:
    if absent(project.histograms()):  # unreadable: optional showed why
        path = project.histograms()[0]
        st.info(f"`{path}` is missing: it is written by stage `validate` (`uv run dvc repro validate`).")
else:
    subset_choices = [ALL_CHIPS, *(subset_order(subsets) if subsets is not None else [])]
    compared_subset = str(st.selectbox("Subset", subset_choices, key="balance_set_subset"))
    targets = {name: code_targets(crosswalk_set(project, name).crosswalks, histograms) for name in names}
    in_subset = rows.filter(pl.col("subset") == compared_subset)
    per_set = by_source(set_shares(histograms, in_subset, targets, include_ignore=include_ignore), order)
    if per_set.is_empty():
        st.info(f"No chip of `{compared_subset}` has a label histogram.")
    else:
        st.altair_chart(
            charts.share_grid(
                per_set, "set", "share", colors, shown_classes,
                f"Pixel share under {' and '.join(f'`{n}`' for n in names)} ({compared_subset})", facet_order=order,
            )
        )  # fmt: skip
        differences = by_source(set_differences(per_set, shown_classes, names), order)
        show(differences)
        csv_button(
            differences, f"class_shares_by_set_{compared_subset.replace(' ', '_')}", "Download shares by set CSV"
        )
    only = "" if len(names) > 1 else " Only one crosswalk set exists in this project, so there is nothing to compare."
    st.caption(
        "The same chips' native pixels (validate's label histograms) mapped through each set's crosswalks: shares "
        f"differ only by the mapping. The chips themselves are cut with `{project.crosswalk_set}`.{only}"
    )

st.subheader("Before harmonization: native codes")
scope = st.radio("Compare", ["sources", "subsets of one source"], horizontal=True)
if scope == "sources":
    native_rows, x = rows.filter(pl.col("subset") == ALL_CHIPS), "source"
else:
    source = st.selectbox("Source", order)
    native_rows, x = rows.filter(pl.col("source") == source), "subset"
if histograms is not None:
    active = crosswalk_set(project)
    names_frame = pl.concat(crosswalk_frame(cw).with_columns(source=pl.lit(s)) for s, cw in active.crosswalks.items())
    native = native_balance(histograms, native_rows, names_frame)
    st.altair_chart(
        charts.native_shares(
            native, x, colors, classes, "Pixel share of each native code, coloured by its class",
            order_x=order if x == "source" else None,
        ),
        width="stretch",
    )  # fmt: skip
    st.caption("Each segment is one code of the source's own legend; the Legends page lists them.")
