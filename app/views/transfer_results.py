"""The Transfer page's sections below the heatmap: intervals, balance strategies, split bias, the published table.

Each renders from its own artifact and says which stage writes it when missing.

They take the page's choices (backbone, protocol, k, metric), so an interval table, a published reference or a
strategy comparison slots in beside the heatmap of the same model.
"""

from __future__ import annotations

import streamlit as st

from app import charts
from app.artifacts import Artifacts, CorruptArtifact, demo_world
from app.queries import intervals as iq
from app.queries import transfer as q
from app.views.common import absent, optional
from app.views.tables import csv_button, show
from curation.core.reference import VS_REFERENCE


def seeds_and_intervals(project: Artifacts, protocol: str, k: int, metric: str) -> None:
    """Error bars over seeds and the study's comparisons tested (metrics/intervals.parquet, comparisons.parquet)."""
    st.subheader("Seeds and intervals")
    spread, paired = optional(project.intervals()), optional(project.comparisons())
    if spread is None or paired is None:
        st.info(
            f"`{project.intervals()[0]}` or `{project.comparisons()[0]}` is missing: both are written by stage "
            "`report`. Run `uv run dvc repro report`."
        )
        return
    spread, paired = iq.base_runs(spread), iq.base_runs(paired)
    bars = iq.own_intervals(spread, protocol, k, metric)
    seeds = sorted(set(bars["seeds"].to_list()))
    st.altair_chart(
        charts.interval_bars(bars, metric, f"{metric} under {protocol}, k = {k}: mean over seeds, 95 % interval"),
        width="stretch",
    )
    st.caption(
        f"Seeds per model: {', '.join(map(str, seeds)) or '-'} (`train.seeds`). The interval is a bootstrap over the "
        "test chips and the seeds (docs/statistics.md); with one seed it shows the test set's sampling only."
    )
    csv_button(bars, f"intervals_{protocol}_k{k}_{metric}", "Download intervals CSV")
    rows = iq.comparison_rows(paired, protocol, metric)
    unsupported, total = iq.unsupported_share(rows)
    if not total:
        st.info(f"No comparison under `{protocol}`: it needs two backbones or two sizes k with runs.")
        return
    st.markdown(
        f"**{unsupported} of {total}** comparisons under `{protocol}` ({metric}) are **not supported by the "
        "data**: their interval of the difference contains 0."
    )
    show(rows)
    csv_button(rows, f"comparisons_{protocol}_{metric}", "Download comparisons CSV")
    st.caption(
        "backbone: b minus a at the same k (`at`); k: the larger k minus the smaller for one backbone (`at`). "
        "difference = mean_b - mean_a over seeds; ci_low, ci_high: its paired bootstrap interval (the same test "
        "chips resampled for both); p_value: two-sided bootstrap p."
    )


def balance_strategies(project: Artifacts, protocol: str, k: int) -> None:
    """Each class-balance strategy against base (metrics/balance.parquet)."""
    st.subheader("Class-balance strategies")
    effects = optional(project.balance_effects())
    if effects is None:
        st.info(
            f"`{project.balance_effects()[0]}` is missing: it is written by stage `report`. "
            "Run `uv run dvc repro report`."
        )
        return
    strategy_rows = iq.balance_rows(effects, protocol, k)
    if strategy_rows.is_empty():
        st.info(
            f"No strategy ran beside base under `{protocol}`, k = {k}: list them in `train.balance.strategies` "
            "(loss-weights, chip-sampler, pixel-budget) and the protocols in `train.balance.protocols`."
        )
        return
    show(strategy_rows)
    csv_button(strategy_rows, f"balance_strategies_{protocol}_k{k}", "Download strategies CSV")
    st.caption(
        "Each strategy against base on the same chips and seeds: AA and every class's recall on the target's own "
        "test set. difference = with_strategy - base; ci_low, ci_high: its paired bootstrap interval. The "
        "tables above hold base runs only."
    )


def split_bias(project: Artifacts, k: int, metric: str) -> None:
    """Random against blocked test sets (metrics/split_bias.parquet)."""
    st.subheader("Split bias: random against blocked test sets")
    bias = optional(project.split_bias())
    bias_sizes = [] if bias is None else sorted(set(bias["k"].to_list()))
    if bias is None:
        st.info(
            f"`{project.split_bias()[0]}` is missing: it is written by stage `report`. Run `uv run dvc repro report`."
        )
    elif not bias_sizes:
        st.info(
            "No random test set: set `subsets.random_test_size` above 0 and run `uv run dvc repro` to measure what a "
            "random split would report."
        )
    else:
        bias_k = st.selectbox("id model size (k)", bias_sizes, index=bias_sizes.index(k) if k in bias_sizes else 0)
        bias_rows = iq.split_bias_rows(bias, int(bias_k), metric)
        show(bias_rows)
        csv_button(bias_rows, f"split_bias_k{bias_k}_{metric}", "Download split bias CSV")
        st.caption(
            f"Each `id` model's {metric} on its own source's blocked test set (every other number on this page) and "
            "on a test set drawn at random from the chips beside its training chips (`subsets.random_test_size`). "
            "bias = random - blocked: positive is the optimism a random split hides. Means over seeds; bias_std: over "
            "seeds."
        )


def beside_the_study(project: Artifacts, backbone: str, metric: str) -> None:
    """Ours beside the study's published numbers (metrics/vs_reference.parquet)."""
    st.subheader("Beside the study's published table")
    published = project.catalogue.metrics_file(VS_REFERENCE)
    compared = optional((published.path, published.stage))  # unreadable: an error naming the stage, then None
    try:
        world = demo_world(project)
    except CorruptArtifact:
        world = None  # the banner above names the unreadable marker
    if compared is None and absent((published.path, published.stage)):
        st.info(
            f"`{published.path}` is missing: it is written by stage `report` with `report.reference` set (the "
            "study's table: `reference/study_results_v1.csv`). Run `uv run dvc repro report`."
        )
    elif compared is None:
        pass  # unreadable: `optional` showed which file and the stage to re-run
    elif compared.is_empty():
        st.info(
            "No reference table to compare with: `report.reference` is null. Set it to "
            "`reference/study_results_v1.csv` (the study's published numbers) and run `uv run dvc repro report`."
        )
    else:
        if world is not None:
            st.warning(
                "**The demo world is not the study's data.** Ours below come from the synthetic demo world "
                f"({world.get('chips_per_source')} generated chips of {world.get('chip_px')} px per source), theirs "
                "from the study's real Sentinel-2 chips. The differences show how the comparison works, not how well "
                "the study is reproduced: run `profiles/study.yaml` on the study's chips for that.",
                icon=":material/science:",
            )
        pickers = st.columns(3)
        backbones = q.reference_backbones(compared)
        ref_backbone = str(
            pickers[0].selectbox(
                "Published backbone", backbones, index=backbones.index(backbone) if backbone in backbones else 0
            )
        )
        ref_metrics = q.reference_metrics(compared)
        ref_metric = str(
            pickers[1].selectbox(
                "Published metric", ref_metrics, index=ref_metrics.index(metric) if metric in ref_metrics else 0
            )
        )
        ran_only = pickers[2].toggle("Only the numbers we ran", value=True)
        found = q.reference_summary(compared, ref_backbone, ref_metric)
        shown = st.columns(4)
        shown[0].metric("Published numbers", found.published)
        shown[1].metric("With ours beside", found.beside)
        mean, absolute = found.mean_difference, found.mean_abs_difference
        shown[2].metric("Mean difference (points)", "-" if mean is None else f"{mean:+.2f}")
        shown[3].metric("Mean absolute difference (points)", "-" if absolute is None else f"{absolute:.2f}")
        reference = q.reference_rows(compared, ref_backbone, ref_metric, ran_only)
        show(reference)
        csv_button(reference, f"vs_reference_{ref_backbone}_{ref_metric}", "Download published beside ours CSV")
        st.caption(
            "theirs_pct: the study's published number (`origin`: the file of the study it comes from); ours_pct: the "
            "mean over our runs of the same model (protocol, target source, k) on the target's own test set; "
            "difference_pct: ours minus theirs, in percentage points. Empty: we ran no such model (or its value is "
            "undefined)."
        )
        if found.beside and found.crosswalk_sets != ["paper"]:
            st.caption(
                f"Ours used crosswalk set {', '.join(found.crosswalk_sets)}; the study's mapping is `paper` "
                "(`shared.crosswalk_set`), so labels differ from the study's."
            )
        if found.random_init:
            st.caption("Some of ours start from random init (no weight files); the study's are pretrained.")
