"""Transfer: heatmaps of every model on every test set, gaps to in-distribution, learning curves, per-class recall."""

from __future__ import annotations

import streamlit as st

from app import charts
from app.queries import transfer as q
from app.views.common import artifacts, class_colors, class_names, guard, table

st.title("Transfer")
project = artifacts()
transfer = guard(lambda: table(project.transfer()))
choices = q.options(transfer)
origin = q.provenance(transfer)
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
metric = str(cells[3].selectbox("Metric", choices.metrics))
st.caption(f"Crosswalk set: {', '.join(origin['crosswalk_set'])}")

cells_frame = q.heatmap(transfer, backbone, protocol, k, metric)
st.altair_chart(
    charts.heatmap(cells_frame, "value", f"{metric} of {backbone} under {protocol}, k = {k}"), width="stretch"
)
with st.expander("Heatmap values"):
    st.dataframe(cells_frame.pivot(on="test_source", index="target_source", values="value"), hide_index=True)

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
        charts.heatmap(gaps, "gap", f"{metric} minus in-distribution (id, k = {reference_k})", diverging=True),
        width="stretch",
    )
    st.dataframe(q.gap_summary(gaps), hide_index=True)
    st.caption(
        "this_target: the model built for the test source (under ood, trained on every other source); other_targets: "
        "the mean of the models built for the other sources. Negative gaps are losses."
    )

st.subheader("Learning curves")
sources = sorted(transfer["target_source"].unique().to_list())
curve_source = st.selectbox("Target source", ["mean over sources", *sources])
curves = q.learning_curves(transfer, protocol, metric, None if curve_source == "mean over sources" else curve_source)
st.altair_chart(
    charts.learning_curves(curves, metric, f"{metric} on the target's test set ({protocol})"), width="stretch"
)

st.subheader("Per-class recall")
recall = q.class_recall(transfer, backbone, protocol, k)
classes = [c for c in class_names(project) if c != "ignore"]
st.altair_chart(
    charts.class_recall(recall, class_colors(project), classes, f"Recall of {backbone} under {protocol}, k = {k}")
)
st.dataframe(recall.pivot(on="class", index="test_source", values="recall"), hide_index=True)
