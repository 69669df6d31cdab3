"""Altair charts of the query frames: built here, shown by the views (tests can inspect the specs)."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import polars as pl


def _scale(colors: dict[str, str], order: Sequence[str]) -> alt.Scale:
    shown = [c for c in order if c in colors]
    return alt.Scale(domain=shown, range=[colors[c] for c in shown])


def stacked_shares(
    frame: pl.DataFrame, x: str, share: str, colors: dict[str, str], order: Sequence[str], title: str
) -> alt.Chart:
    """One bar per group, split by class in its target colour, adding up to 1."""
    chart: alt.Chart = (
        alt.Chart(frame.to_pandas(), title=title)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", sort=None, title=None),
            y=alt.Y(f"{share}:Q", axis=alt.Axis(format="%"), title=None, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("class:N", scale=_scale(colors, order), sort=list(order), title="class"),
            order=alt.Order("class_rank:Q"),
            tooltip=[x, "class", alt.Tooltip(f"{share}:Q", format=".1%"), "pixels", "chips"],
        )
        .transform_calculate(class_rank=f"indexof({list(order)!r}, datum['class'])")
    )
    return chart


BAR_PICK = "bar"  # a stacked bar's click selection: its fields name the source, subset and class clicked


def share_grid(
    frame: pl.DataFrame,
    x: str,
    share: str,
    colors: dict[str, str],
    order: Sequence[str],
    title: str,
    *,
    facet: str = "source",
    facet_order: Sequence[str] = (),
    columns: int = 3,
    pickable: bool = False,
) -> alt.FacetChart:
    """Stacked class shares, one small chart per `facet` value (every source at once), bars along `x`.

    `pickable`: a click on a segment selects its source, subset and class (Streamlit's `on_select`).
    """
    bars = (
        alt.Chart()
        .mark_bar(cursor="pointer" if pickable else "default")
        .encode(
            x=alt.X(f"{x}:N", sort=None, title=None, axis=alt.Axis(labelAngle=-45, labelLimit=0, labelOverlap=False)),
            y=alt.Y(f"{share}:Q", axis=alt.Axis(format="%"), title=None, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("class:N", scale=_scale(colors, order), sort=list(order), title="class"),
            order=alt.Order("class_rank:Q"),
            tooltip=[facet, x, "class", alt.Tooltip(f"{share}:Q", format=".1%"), alt.Tooltip("pixels:Q", format=",")],
        )
        .transform_calculate(class_rank=f"indexof({list(order)!r}, datum['class'])")
        .properties(width=220, height=150)
    )
    if pickable:
        bars = bars.add_params(alt.selection_point(name=BAR_PICK, fields=["source", "subset", "class"]))
    chart: alt.FacetChart = alt.FacetChart(
        data=frame.to_pandas(),
        spec=bars,
        facet=alt.Facet(f"{facet}:N", sort=list(facet_order) or None, title=None),
        columns=columns,
        title=title,
    )
    return chart


def native_shares(
    frame: pl.DataFrame,
    x: str,
    colors: dict[str, str],
    order: Sequence[str],
    title: str,
    order_x: Sequence[str] | None = None,
) -> alt.Chart:
    """Before harmonization: one segment per native code, coloured by the class it maps to, outlined apart."""
    chart: alt.Chart = (
        alt.Chart(frame.to_pandas(), title=title)
        .mark_bar(stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X(f"{x}:N", sort=list(order_x) if order_x else None, title=None, axis=alt.Axis(labelLimit=0)),
            y=alt.Y("share:Q", axis=alt.Axis(format="%"), title=None, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("target:N", scale=_scale(colors, order), title="maps to"),
            detail="code:N",
            order=alt.Order("pixels:Q", sort="descending"),
            tooltip=[x, "code", "name", "target", alt.Tooltip("share:Q", format=".1%"), "pixels"],
        )
    )
    return chart


CELL_PICK = "cell"  # the heatmap's click selection: its fields name the cell (target_source, test_source)


def heatmap(
    frame: pl.DataFrame,
    value: str,
    title: str,
    *,
    diverging: bool = False,
    order: Sequence[str] = (),
    pickable: bool = False,
) -> alt.LayerChart:
    """target_source (rows) x test_source (columns), the value written in each cell, sources in `order`.

    `pickable`: a click on a cell selects it (Streamlit's `on_select`: the selection `cell` names the cell).
    """
    data = frame.to_pandas()
    scale = alt.Scale(scheme="redblue", domainMid=0) if diverging else alt.Scale(scheme="viridis", domain=[0, 1])
    sort = list(order) or None
    base = alt.Chart(data, title=title).encode(
        x=alt.X(
            "test_source:N",
            title="test source",
            sort=sort,
            axis=alt.Axis(labelAngle=-40, labelLimit=0, labelOverlap=False),
        ),
        y=alt.Y("target_source:N", title="model built for (target source)", sort=sort, axis=alt.Axis(labelLimit=0)),
    )
    cells = base.mark_rect(cursor="pointer" if pickable else "default").encode(
        color=alt.Color(f"{value}:Q", scale=scale, title=value),
        tooltip=["target_source", "test_source", alt.Tooltip(f"{value}:Q", format=".3f")],
    )
    if pickable:
        cells = cells.add_params(alt.selection_point(name=CELL_PICK, fields=["target_source", "test_source"]))
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text(f"{value}:Q", format=".2f"),
        color=alt.condition(
            f"abs(datum['{value}']) > 0.5" if diverging else f"datum['{value}'] < 0.5",
            alt.value("white"),
            alt.value("black"),
        ),
    )
    return alt.LayerChart(layer=[cells, text.transform_filter(f"isValid(datum['{value}'])")], height=alt.Step(34))


def learning_curves(frame: pl.DataFrame, metric: str, title: str) -> alt.Chart:
    """Metric versus k, one line per backbone; the k axis has a tick at each k that was run, and no other."""
    ks = sorted({int(k) for k in frame["k"].to_list()})
    chart: alt.Chart = (
        alt.Chart(frame.to_pandas(), title=title)
        .mark_line(point=alt.OverlayMarkDef(size=70, filled=True))
        .encode(
            x=alt.X(
                "k:Q",
                title="training chips of the target source (k)",
                axis=alt.Axis(values=ks, format="d", grid=False),
                scale=alt.Scale(domain=[min(ks), max(ks)]) if len(ks) > 1 else alt.Scale(),
            ),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("backbone:N"),
            tooltip=["backbone", "k", alt.Tooltip("value:Q", format=".3f"), "sources"],
        )
    )
    return chart


def class_recall(
    frame: pl.DataFrame, colors: dict[str, str], order: Sequence[str], title: str, sources: Sequence[str] = ()
) -> alt.FacetChart:
    """Recall per class, one panel per test source (cells.cell_recall's rows of one target source).

    A recall of 0 is a red stub on the axis labelled `0`; a class the test set lacks has no bar and is labelled
    `absent` in grey: the two never look alike.
    """
    x = alt.X("class:N", sort=list(order), title=None, axis=alt.Axis(labelAngle=-40, labelLimit=0))
    y = alt.Y(
        "mark_y:Q", title="recall", scale=alt.Scale(domain=[0, 1.15]), axis=alt.Axis(values=[0, 0.25, 0.5, 0.75, 1])
    )
    tooltip = ["target_source", "test_source", "class", "status", alt.Tooltip("recall:Q", format=".3f")]
    bars = (
        alt.Chart()
        .transform_filter("datum.status == 'measured'")
        .mark_bar()
        .encode(x=x, y=y, color=alt.Color("class:N", scale=_scale(colors, order), legend=None), tooltip=tooltip)
    )
    zero = (
        alt.Chart()
        .transform_filter("datum.status == 'zero'")
        .mark_tick(color=ZERO_COLOR, thickness=4, size=22)
        .encode(x=x, y=y, tooltip=tooltip)
    )
    labels = (
        alt.Chart()
        .mark_text(angle=270, align="left", baseline="middle", dx=4, fontSize=11)
        .encode(
            x=x,
            y=y,
            text="label:N",
            color=alt.Color("status:N", scale=alt.Scale(domain=STATUS, range=STATUS_COLORS), legend=None),
            tooltip=tooltip,
        )
    )
    data = frame.with_columns(mark_y=pl.col("recall").fill_null(0.0)).to_pandas()
    chart: alt.FacetChart = (
        alt.layer(bars, zero, labels, data=data)
        .resolve_scale(color="independent")
        .properties(width=120, height=200)
        .facet(column=alt.Column("test_source:N", title="test source", sort=list(sources) or None), title=title)
    )
    return chart


ZERO_COLOR = "#d62728"
STATUS = ["measured", "zero", "absent"]  # cells.MEASURED, ZERO, ABSENT
STATUS_COLORS = ["#333333", ZERO_COLOR, "#9e9e9e"]


def confusion_matrix(frame: pl.DataFrame, order: Sequence[str], title: str) -> alt.LayerChart:
    """True class (rows) x predicted class (columns), coloured and labelled by row share: the diagonal is recall."""
    base = alt.Chart(frame.to_pandas(), title=title).encode(
        x=alt.X("predicted_class:N", sort=list(order), title="predicted class", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("target_class:N", sort=list(order), title="true class"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="share of the true class"),
        tooltip=[
            "target_class",
            "predicted_class",
            alt.Tooltip("pixels:Q", format=","),
            alt.Tooltip("share:Q", format=".1%"),
        ],
    )
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text("share:Q", format=".0%"),
        color=alt.condition("datum.share > 0.5", alt.value("white"), alt.value("black")),
    )
    chart = alt.LayerChart(layer=[cells, text], width=alt.Step(70), height=alt.Step(36))
    return chart


def interval_bars(frame: pl.DataFrame, metric: str, title: str) -> alt.LayerChart:
    """Mean over seeds with its bootstrap interval, per target source and backbone (error bars)."""
    data = alt.Chart(frame.to_pandas(), title=title)
    x = alt.X("target_source:N", title="target source (its own test set)")
    offset = alt.XOffset("backbone:N")
    tooltip = [
        "target_source", "backbone", "seeds",
        alt.Tooltip("mean:Q", format=".3f"),
        alt.Tooltip("ci_low:Q", format=".3f"),
        alt.Tooltip("ci_high:Q", format=".3f"),
    ]  # fmt: skip
    bars = data.mark_errorbar(ticks=True).encode(
        x=x, xOffset=offset, y=alt.Y("ci_low:Q", title=metric, scale=alt.Scale(domain=[0, 1])), y2="ci_high:Q",
        color=alt.Color("backbone:N"), tooltip=tooltip,
    )  # fmt: skip
    points = data.mark_point(filled=True, size=60).encode(
        x=x, xOffset=offset, y="mean:Q", color=alt.Color("backbone:N"), tooltip=tooltip
    )
    chart: alt.LayerChart = bars + points
    return chart
