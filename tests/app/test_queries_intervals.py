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


def test_base_runs_keep_base_rows_and_drop_balance_comparisons() -> None:
    spread_rows = spread().with_columns(balance=pl.Series(["base", "chip-sampler", "base", "base", "base"]))
    assert iq.base_runs(spread_rows).height == 4
    assert iq.base_runs(spread()).height == 5  # tables before train.balance: every row is base
    comparisons = paired().with_columns(balance=pl.Series(["base", "loss-weights", None]))
    comparisons = comparisons.with_columns(
        comparison=pl.Series(["backbone", "k", "balance"]), a=pl.Series(["imagenet", "4", "base"])
    )
    kept = iq.base_runs(comparisons)
    assert kept["comparison"].to_list() == ["backbone"]  # another strategy's k pair and the strategy's pair out


def test_balance_rows_show_each_strategy_against_base_at_one_k() -> None:
    rows = [
        ("balance", "id", "cdl", "cdl", "aa", "base", "chip-sampler", "ssl4eo", 4, None, 0.5, 0.7, 0.2, 0.1, 0.3, True),
        ("balance", "id", "cdl", "cdl", "aa", "base", "chip-sampler", "ssl4eo", 20, None, 0.6, 0.6, 0.0, -0.1, 0.1,
         False),
    ]  # fmt: skip
    names = ["comparison", "protocol", "target_source", "test_source", "metric", "a", "b", "backbone", "k", "balance"]
    more = ["mean_a", "mean_b", "difference", "ci_low", "ci_high", "supported"]
    effects = pl.DataFrame(rows, schema=[*names, *more], orient="row")
    shown = iq.balance_rows(effects, "id", 4)
    assert shown.height == 1
    assert shown.row(0, named=True) == {
        "strategy": "chip-sampler", "backbone": "ssl4eo", "target_source": "cdl", "metric": "aa", "base": 0.5,
        "with_strategy": 0.7, "difference": 0.2, "ci_low": 0.1, "ci_high": 0.3, "verdict": iq.SUPPORTED,
    }  # fmt: skip
    assert iq.balance_rows(effects, "id", 20)["verdict"].to_list() == [iq.NOT_SUPPORTED]


def test_split_bias_rows_hold_base_runs_at_one_k_and_metric() -> None:
    names = ["target_source", "backbone", "k", "balance", "metric", "runs", "blocked", "random", "bias", "bias_std"]
    rows = [
        ("cdl", "ssl4eo", 4, "base", "oa", 1, 0.6, 0.8, 0.2, None),
        ("cdl", "ssl4eo", 4, "chip-sampler", "oa", 1, 0.5, 0.9, 0.4, None),  # another strategy: out
        ("cdl", "ssl4eo", 20, "base", "oa", 1, 0.7, 0.8, 0.1, None),  # another k: out
        ("cdl", "ssl4eo", 4, "base", "aa", 1, 0.4, 0.5, 0.1, None),  # another metric: out
    ]
    shown = iq.split_bias_rows(pl.DataFrame(rows, schema=names, orient="row"), 4, "oa")
    assert shown.columns == ["target_source", "backbone", "runs", "blocked", "random", "bias", "bias_std"]
    assert shown["bias"].to_list() == [0.2]
