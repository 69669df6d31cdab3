"""The Transfer page's cell section: which classes fail where, for every model (A) and test source (B).

A cell is picked by a click on the heatmap, by the `Cell` selector or by the page's query parameters
(`?target=cdl&test=nccm`, what a link to one cell carries); the pick is written back to the query parameters, so
the address names the cell shown.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from app import charts
from app.artifacts import Artifacts
from app.queries import cells as cq
from app.views.common import absent, optional
from app.views.tables import csv_button, show

CELL_KEY = "transfer_cell"  # the Cell selector's state
PICK_KEY = "transfer_heatmap"  # the heatmap's selection state
SEEN_KEY = "transfer_pick_seen"  # the last heatmap click applied (a click moves the selector once, not forever)


def clicked(state: Any) -> tuple[str, str] | None:  # noqa: ANN401 - Streamlit's selection state
    """The (target, test) of a heatmap click, from the chart's selection state, or None."""
    try:
        points = state["selection"][charts.CELL_PICK]
    except (KeyError, TypeError):
        return None
    if not points:
        return None
    point = points[0]
    target, test = point.get("target_source"), point.get("test_source")
    return (str(target), str(test)) if target is not None and test is not None else None


def choose_cell(labels: list[str]) -> str:
    """The cell to show: a new heatmap click, else the selector, seeded from the query parameters on arrival."""
    pick = clicked(st.session_state.get(PICK_KEY))
    if pick is not None and pick != st.session_state.get(SEEN_KEY):
        st.session_state[SEEN_KEY] = pick
        if cq.cell_label(*pick) in labels:
            st.session_state[CELL_KEY] = cq.cell_label(*pick)
    if st.session_state.get(CELL_KEY) not in labels:
        asked = cq.cell_label(str(st.query_params.get("target", "")), str(st.query_params.get("test", "")))
        diagonal = next((label for label in labels if len(set(cq.parse_cell(label) or ())) == 1), labels[0])
        st.session_state[CELL_KEY] = asked if asked in labels else diagonal
    label = str(st.selectbox("Cell (model built for → test source)", labels, key=CELL_KEY))
    target, test = cq.parse_cell(label) or ("", "")
    st.query_params.update({"target": target, "test": test})
    return label


def cell_section(
    project: Artifacts,
    transfer: pl.DataFrame,
    backbone: str,
    protocol: str,
    k: int,
    classes: list[str],
    colors: dict[str, str],
    order: list[str],
) -> None:
    """Per-class recall of every cell, then the chosen cell's recall and confusion matrix, each with its CSV."""
    st.subheader("Which classes fail where")
    recall = cq.cell_recall(transfer, backbone, protocol, k, classes, order)
    if recall.is_empty():
        st.info(f"No per-class recall for {backbone} under {protocol}, k = {k}.")
        return
    name = f"{backbone}_{protocol}_k{k}"
    zeros = cq.failures(recall)
    if zeros.is_empty():
        st.markdown("No class has a recall of 0 in any cell.")
    else:
        st.markdown(
            f"**{zeros.height} class(es) with a recall of 0**: "
            + "; ".join(
                f"{r['class']} in {cq.cell_label(r['target_source'], r['test_source'])}"
                for r in zeros.iter_rows(named=True)
            )
        )
    labels = [
        cq.cell_label(t, s)
        for t, s in recall.select("target_source", "test_source").unique(maintain_order=True).iter_rows()
    ]
    label = choose_cell(labels)
    target, test = cq.parse_cell(label) or ("", "")
    row = recall.filter(pl.col("target_source") == target)
    st.altair_chart(
        charts.class_recall(
            row, colors, classes, f"Recall of {backbone}'s model built for {target} ({protocol}, k = {k})", order
        ),
    )
    st.caption(
        "A red stub labelled 0: the class is in the test set and the model finds none of it. `absent`: the test set "
        "holds no pixel of the class, so its recall is undefined (not 0)."
    )
    wide = cq.recall_wide(recall)
    with st.expander("Recall of every cell (table)"):
        show(wide)
    csv_button(
        recall.select("target_source", "test_source", "class", "recall", "status"),
        f"recall_{name}",
        "Download recall CSV",
    )

    st.markdown(f"**Confusion matrix of {label}**")
    spec = project.confusion()
    confusion = optional(spec)
    if confusion is None:
        if absent(spec):
            st.info(f"`{spec[0]}` is missing: it is written by stage `report`. Run `uv run dvc repro report`.")
        return
    runs = cq.cell_runs(transfer, backbone, protocol, k, target)
    matrix = cq.confusion_matrix(confusion, runs, test, classes)
    if matrix.is_empty():
        st.info(f"No confusion counts for {label} in `{spec[0]}`.")
        return
    st.altair_chart(
        charts.confusion_matrix(
            matrix, classes, f"{label}: {backbone}, {protocol}, k = {k} (pixels over {len(runs)} run(s))"
        )
    )
    missing = cq.absent_classes(matrix, classes)
    st.caption(
        "Rows: the true class; columns: the class predicted; each row adds up to 100 %, so the diagonal is the "
        "class's recall. "
        + (f"Not in {test}'s test set: {', '.join(missing)}." if missing else f"{test}'s test set holds every class.")
    )
    csv_button(matrix, f"confusion_{name}_{target}_{test}", "Download confusion matrix CSV")
