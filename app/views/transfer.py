"""Transfer: heatmaps, gaps to in-distribution, learning curves, which classes fail where, the study beside ours."""

from __future__ import annotations

import streamlit as st

from app import charts
from app.queries import intervals as iq
from app.queries import transfer as q
from app.queries.order import source_order
from app.views import transfer_results as results
from app.views.common import artifacts, class_colors, class_names, guard, table
from app.views.tables import csv_button, show
from app.views.transfer_cell import PICK_KEY, cell_section

st.title("Transfer")
project = artifacts()
transfer = iq.base_runs(guard(lambda: table(project.transfer())))  # strategies: their own section below
choices = q.options(transfer)
origin = q.provenance(transfer)
order = source_order(project.sources, [*transfer["target_source"].unique(), *transfer["test_source"].unique()])
if origin["random_init"]:
    st.info(
        f"Backbones from random init (no weight files found): {', '.join(origin['random_init'])}. "
        "Put the weight files in `train.weights_dir` or the torch hub cache for pretrained numbers."
    )

cells = st.columns(4)
backbone = str(cells[0].selectbox("Backbone", choices.backbones))
protocol = str(cells[1].selectbox("Protocol", choices.protocols))
k_values = q.sizes(transfer, protocol)
k = int(cells[2].selectbox("Training chips (k)", k_values, index=len(k_values) - 1))
metric = str(cells[3].selectbox("Metric", choices.metrics, help=q.metric_help(choices.metrics)))
st.caption(f"Crosswalk set: {', '.join(origin['crosswalk_set'])}  \n{q.metric_help(choices.metrics)}")

cells_frame = q.heatmap(transfer, backbone, protocol, k, metric)
st.altair_chart(
    charts.heatmap(
        cells_frame, "value", f"{metric} of {backbone} under {protocol}, k = {k}", order=order, pickable=True
    ),
    width="stretch",
    key=PICK_KEY,
    on_select="rerun",
)
st.caption("Click a cell for its per-class recall and confusion matrix (section *Which classes fail where*).")
values = q.heatmap_table(cells_frame, order)
with st.expander("Heatmap values"):
    show(values)
csv_button(values, f"transfer_{backbone}_{protocol}_k{k}_{metric}", "Download heatmap CSV")

st.subheader("Gap to in-distribution")
id_sizes = q.sizes(transfer, q.ID)
if not id_sizes:
    st.info("No `id` runs in the transfer table: add `id` to `train.protocols` to measure gaps.")
else:
    reference_k = st.selectbox(
        "In-distribution model size (k)", id_sizes, index=id_sizes.index(k) if k in id_sizes else len(id_sizes) - 1
    )
    gaps = q.gap_to_in_distribution(transfer, backbone, protocol, k, metric, reference_k)
    st.altair_chart(
        charts.heatmap(
            gaps, "gap", f"{metric} minus in-distribution (id, k = {reference_k})", diverging=True, order=order
        ),
        width="stretch",
    )
    summary = q.gap_summary(gaps, order)
    show(summary)
    csv_button(summary, f"gaps_{backbone}_{protocol}_k{k}_{metric}", "Download gaps CSV")
    st.caption(
        "this_target: the model built for the test source (under ood, trained on every other source); other_targets: "
        "the mean of the models built for the other sources. Negative gaps are losses. A blank cell or None: no "
        "in-distribution model exists for that test source (it is not one of the trained targets)."
    )

st.subheader("Learning curves")
curve_sources = [s for s in order if s in set(transfer["target_source"].to_list())]
curve_source = st.selectbox("Target source", ["mean over sources", *curve_sources])
curves = q.learning_curves(transfer, protocol, metric, None if curve_source == "mean over sources" else curve_source)
st.altair_chart(
    charts.learning_curves(curves, metric, f"{metric} on the target's test set ({protocol})"), width="stretch"
)
run_ks = sorted(set(curves["k"].to_list()))
if len(run_ks) == 1:
    st.caption(
        f"`{protocol}` ran at one k only (k = {run_ks[0]}): each backbone is one point, not a curve."
        + (" Under `ood` the target's own chips are never trained on (k = 0)." if protocol == "ood" else "")
    )
for group in q.identical_lines(curves):
    st.caption(f"Identical curves, drawn on top of one another: {', '.join(group)}.")
csv_button(curves, f"learning_curves_{protocol}_{metric}", "Download learning curves CSV")

cell_section(
    project, transfer, backbone, protocol, k, [c for c in class_names(project) if c != "ignore"],
    class_colors(project), order,
)  # fmt: skip
results.seeds_and_intervals(project, protocol, k, metric)
results.balance_strategies(project, protocol, k)
results.split_bias(project, k, metric)
results.beside_the_study(project, backbone, metric)
