"""The Transfer page's seeds-and-intervals queries and chart, on small hand-made tables."""

from __future__ import annotations

import polars as pl

from app import charts
from app.queries import intervals as iq


def spread() -> pl.DataFrame:
    rows = [
        ("id", "imagenet", "cdl", 4, "cdl", "oa", 2, 0.60, 0.02, 0.55, 0.65),
        ("id", "ssl4eo", "cdl", 4, "cdl", "oa", 2, 0.70, 0.01, 0.66, 0.74),
        ("id", "ssl4eo", "cdl", 4, "nccm", "oa", 2, 0.40, 0.01, 0.30, 0.50),  # another test set: not "own"
        ("id", "ssl4eo", "cdl", 20, "cdl", "oa", 2, 0.80, 0.01, 0.76, 0.84),  # another k
        ("id", "ssl4eo", "cdl", 4, "cdl", "aa", 2, 0.50, 0.01, 0.45, 0.55),  # another metric
    ]
    names = ["protocol", "backbone", "target_source", "k", "test_source", "metric", "seeds", "mean", "std"]
    return pl.DataFrame(rows, schema=[*names, "ci_low", "ci_high"], orient="row")


def paired() -> pl.DataFrame:
    rows = [
        ("backbone", "id", "cdl", "cdl", "oa", "imagenet", "ssl4eo", None, 4, 0.6, 0.7, 0.1, 0.05, 0.15, 0.01, True),
        ("k", "id", "cdl", "cdl", "oa", "4", "20", "ssl4eo", None, 0.7, 0.72, 0.02, -0.01, 0.05, 0.3, False),
        ("k", "ood", "cdl", "cdl", "oa", "0", "4", "ssl4eo", None, 0.5, 0.6, 0.1, 0.0, 0.2, 0.04, True),
    ]
    names = ["comparison", "protocol", "target_source", "test_source", "metric", "a", "b", "backbone", "k"]
    more = ["mean_a", "mean_b", "difference", "ci_low", "ci_high", "p_value", "supported"]
    return pl.DataFrame(rows, schema=[*names, *more], orient="row")


def test_own_intervals_keep_the_target_test_set_at_one_k_and_metric() -> None:
    bars = iq.own_intervals(spread(), "id", 4, "oa")
    assert bars["backbone"].to_list() == ["imagenet", "ssl4eo"]
    assert bars["mean"].to_list() == [0.60, 0.70]
    assert bars.columns == ["target_source", "backbone", "seeds", "mean", "std", "ci_low", "ci_high"]


def test_comparisons_put_the_unsupported_first_and_say_where_they_hold() -> None:
    rows = iq.comparison_rows(paired(), "id", "oa")
    assert rows["verdict"].to_list() == [iq.NOT_SUPPORTED, iq.SUPPORTED]
    assert rows["comparison"].to_list() == ["k", "backbone"]
    assert rows["at"].to_list() == ["ssl4eo", "4"]  # the backbone held for k, the k held for backbones
    assert iq.unsupported_share(rows) == (1, 2)
    assert iq.unsupported_share(iq.comparison_rows(paired(), "ood", "oa")) == (0, 1)
    assert iq.unsupported_share(iq.comparison_rows(paired(), "id", "miou")) == (0, 0)


def test_interval_bars_draw_an_error_bar_and_the_mean_per_backbone() -> None:
    spec = charts.interval_bars(iq.own_intervals(spread(), "id", 4, "oa"), "oa", "t").to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["errorbar", "point"]
    bar = spec["layer"][0]["encoding"]
    assert (bar["y"]["field"], bar["y2"]["field"], bar["xOffset"]["field"]) == ("ci_low", "ci_high", "backbone")
    assert spec["layer"][1]["encoding"]["y"]["field"] == "mean"
