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


def native_shares(frame: pl.DataFrame, x: str, colors: dict[str, str], order: Sequence[str], title: str) -> alt.Chart:
    """Before harmonization: one segment per native code, coloured by the class it maps to, outlined apart."""
    chart: alt.Chart = (
        alt.Chart(frame.to_pandas(), title=title)
        .mark_bar(stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X(f"{x}:N", sort=None, title=None),
            y=alt.Y("share:Q", axis=alt.Axis(format="%"), title=None, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("target:N", scale=_scale(colors, order), title="maps to"),
            detail="code:N",
            order=alt.Order("pixels:Q", sort="descending"),
            tooltip=[x, "code", "name", "target", alt.Tooltip("share:Q", format=".1%"), "pixels"],
        )
    )
    return chart


def heatmap(frame: pl.DataFrame, value: str, title: str, *, diverging: bool = False) -> alt.LayerChart | alt.FacetChart:
    """target_source (rows) x test_source (columns), the value written in each cell."""
    data = frame.to_pandas()
    scale = alt.Scale(scheme="redblue", domainMid=0) if diverging else alt.Scale(scheme="viridis", domain=[0, 1])
    base = alt.Chart(data, title=title).encode(
        x=alt.X(
            "test_source:N", title="test source", axis=alt.Axis(labelAngle=-40, labelLimit=240, labelOverlap=False)
        ),
        y=alt.Y("target_source:N", title="model built for (target source)", axis=alt.Axis(labelLimit=240)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", scale=scale, title=value),
        tooltip=["target_source", "test_source", alt.Tooltip(f"{value}:Q", format=".3f")],
    )
    text = base.mark_text(fontSize=12).encode(
        text=alt.Text(f"{value}:Q", format=".2f"),
        color=alt.condition(
            f"abs(datum['{value}']) > 0.5" if diverging else f"datum['{value}'] < 0.5",
            alt.value("white"),
            alt.value("black"),
        ),
    )
    return alt.layer(cells, text, height=alt.Step(34))


def learning_curves(frame: pl.DataFrame, metric: str, title: str) -> alt.Chart:
    """Metric versus k, one line per backbone."""
    chart: alt.Chart = (
        alt.Chart(frame.to_pandas(), title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("k:Q", title="training chips of the target source (k)"),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("backbone:N"),
            tooltip=["backbone", "k", alt.Tooltip("value:Q", format=".3f"), "sources"],
        )
    )
    return chart


def class_recall(frame: pl.DataFrame, colors: dict[str, str], order: Sequence[str], title: str) -> alt.Chart:
    """Recall per class on each source's own test set, grouped by source."""
    chart: alt.Chart = (
        alt.Chart(frame.drop_nulls("recall").to_pandas(), title=title)
        .mark_bar()
        .encode(
            x=alt.X("class:N", sort=list(order), title=None),
            y=alt.Y("recall:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("class:N", scale=_scale(colors, order), legend=None),
            column=alt.Column("test_source:N", title=None),
            tooltip=["test_source", "class", alt.Tooltip("recall:Q", format=".3f")],
        )
        .properties(width=110)
    )
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
