"""Each page of the app on the tiny demo profile's artifacts: what it shows matches the artifacts themselves."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from curation.core.legends import load_set
from curation.crosswalks.stage import differences
from tests.app.conftest import OpenPage

SOURCES = 6
CHIPS_PER_SOURCE = 28  # tests/tiny_project.py: demo.chips_per_source
CLASSES = ("ignore", "maize", "soybean", "rice", "wheat", "other")
SOURCE_ORDER = ["cdl", "eurocrops", "nccm", "south_america_soybean", "south_africa_crop_type", "agrifieldnet"]


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def frame(app: AppTest, columns: set[str]) -> pl.DataFrame:
    """The first dataframe on the page with these columns."""
    for shown in app.dataframe:
        data = pl.from_pandas(shown.value)
        if columns <= set(data.columns):
            return data
    raise AssertionError(f"no dataframe with columns {columns}")


def choose(app: AppTest, label: str, value: object) -> AppTest:
    next(s for s in app.selectbox if s.label == label).set_value(value)
    return app.run()


def test_overview_counts_match_the_manifest_and_subsets(demo_artifacts: Path, open_page: OpenPage) -> None:
    manifest = pl.read_parquet(demo_artifacts / "data" / "chips" / "manifest.parquet")
    subsets = pl.read_parquet(demo_artifacts / "data" / "subsets" / "subsets.parquet")
    app = open_page(demo_artifacts, "overview")
    assert app.title[0].value == "Overview"
    assert any("Synthetic data" in w.value for w in app.warning)  # the demo banner
    shown = metrics(app)
    assert shown["Sources"] == str(SOURCES) and shown["Chips"] == str(manifest.height) == str(SOURCES * 28)
    assert shown["Crosswalk set"] == "toolkit"
    counts = frame(app, {"source", "chips"})
    assert counts["chips"].to_list() == [CHIPS_PER_SOURCE] * SOURCES
    for (source, split, size), group in subsets.group_by("source", "split", "size"):
        row = counts.filter(pl.col("source") == source)
        assert row[f"{split} {size}"].item() == group.height == size
    subsets_shown = [c for c in counts.columns if c.startswith(("train", "test"))]
    assert subsets_shown[:3] == ["train 2", "train 4", "train 8"]  # the two test sets tie on size: in either order
    assert sorted(subsets_shown[3:]) == ["test 4", "test_random 4"]
    world_map, chips_map = app.get("deck_gl_json_chart")  # the sources on the world; one source's chips
    for shown_map in (world_map, chips_map):  # offline: no basemap (Streamlit drops pydeck's placeholder style)
        deck = json.loads(shown_map.proto.json)
        assert deck.get("mapStyle") == "__MAP_STYLE__" and "mapProvider" not in deck
    grid, centres, _labels = json.loads(world_map.proto.json)["layers"]
    assert grid["@@type"] == "PathLayer" and len(centres["data"]) == SOURCES
    _grid, footprints, points = json.loads(chips_map.proto.json)["layers"]
    cdl = manifest.filter(pl.col("source") == "cdl")  # the first source in params order, shown by default
    assert len(footprints["data"]) == len(points["data"]) == cdl.height
    view = json.loads(chips_map.proto.json)["initialViewState"]
    assert view["zoom"] > 8  # fitted to the source's chips, not the world
    assert min(cdl["lat"]) < view["latitude"] < max(cdl["lat"]) and min(cdl["lon"]) < view["longitude"] < max(
        cdl["lon"]
    )
    splits = {row["chip_id"]: row["split"] for row in footprints["data"]}
    tested = subsets.filter(pl.col("source") == "cdl", pl.col("split") == "test")["chip_id"].to_list()
    assert {splits[c] for c in tested} == {"test"} and "{split}" in chips_map.proto.tooltip


def test_class_balance_shares_match_the_manifest(demo_artifacts: Path, open_page: OpenPage) -> None:
    manifest = pl.read_parquet(demo_artifacts / "data" / "chips" / "manifest.parquet")
    app = open_page(demo_artifacts, "balance")
    assert app.title[0].value == "Class balance"
    shares = frame(app, {"source", "subset", "share_maize"})  # every source and subset at once
    cdl = manifest.filter(pl.col("source") == "cdl")
    total = sum(int(cdl[f"px_{c}"].sum()) for c in CLASSES)
    row = shares.filter(pl.col("source") == "cdl", pl.col("subset") == "all chips")
    for name in CLASSES:
        assert row[f"share_{name}"].item() == pytest.approx(int(cdl[f"px_{name}"].sum()) / total)
    expected = ["all chips", "train 2", "train 4", "train 8", "test 4", "test_random 4"]  # the random set last
    assert shares.filter(pl.col("source") == "cdl")["subset"].to_list() == expected
    assert shares["source"].unique(maintain_order=True).to_list() == SOURCE_ORDER
    imbalance = frame(app, {"imbalance_ratio", "missing"})
    whole = imbalance.filter(pl.col("subset") == "all chips")
    assert whole["chips"].to_list() == [CHIPS_PER_SOURCE] * SOURCES
    assert imbalance.filter(pl.col("source") == "cdl")["chips"].to_list() == [CHIPS_PER_SOURCE, 2, 4, 8, 4, 4]
    labelled = [int(cdl[f"px_{c}"].sum()) for c in CLASSES[1:]]
    ratio = whole.filter(pl.col("source") == "cdl")["ratio_present"].item()
    assert ratio == pytest.approx(max(labelled) / min(p for p in labelled if p > 0))
    infinite = whole.filter(pl.col("source") == "cdl")["imbalance_ratio"].item() == float("inf")
    assert infinite == (0 in labelled)
    assert len(app.get("vega_lite_chart")) == 3  # every subset, under each set, native codes

    app.radio[0].set_value("chip share (dominant class)").run()
    grid = frame(app, {"source", "subset", "share_maize"})
    row = grid.filter(pl.col("source") == "cdl", pl.col("subset") == "all chips")
    for name in CLASSES:
        assert row[f"share_{name}"].item() == pytest.approx((cdl["dominant"] == name).sum() / cdl.height)


def test_legends_page_counts_codes_and_differences(demo_artifacts: Path, open_page: OpenPage) -> None:
    legends = demo_artifacts / "curation" / "legends"
    toolkit, paper = load_set(legends, "toolkit"), load_set(legends, "paper")
    histograms = pl.read_parquet(demo_artifacts / "reports" / "validation" / "label_histograms.parquet")
    app = open_page(demo_artifacts, "legends")
    assert app.title[0].value == "Legends"
    app = choose(app, "Source", "cdl")
    shown = metrics(app)
    differing = {row["code"] for row in differences(toolkit, paper) if row["source"] == "cdl"}
    seen = histograms.filter(pl.col("source") == "cdl")
    assert shown["Codes"] == str(len(toolkit["cdl"].codes))
    assert shown["Codes in the data"] == str(seen["code"].n_unique())
    assert shown["Mapped differently by `paper`"] == str(len(differing))
    assert shown["Pixels mapped differently"] == f"{seen.filter(pl.col('code').is_in(differing))['pixels'].sum():,}"
    table = frame(app, {"code", "target", "paper_target", "differs"})
    assert set(table["code"]) == set(seen["code"])  # the default shows codes present in the data
    rice = table.filter(pl.col("code") == 3)
    assert (rice["target"].item(), rice["paper_target"].item(), rice["differs"].item()) == ("rice", "other", True)
    report = json.loads((demo_artifacts / "reports" / "crosswalks.json").read_text())
    every = frame(app, {"source", "code", "toolkit", "paper", "pixels"})
    assert every.height == len(report["differences"]["paper"])
    assert (
        every.filter(pl.col("source") == "cdl")["pixels"].sum()
        == seen.filter(pl.col("code").is_in(differing))["pixels"].sum()
    )
    summary = frame(app, {"source", "codes_differing", "share_of_source_pixels"})
    cdl = summary.row(by_predicate=pl.col("source") == "cdl", named=True)
    assert cdl["codes_differing"] == len(differing)
    assert cdl["share_of_source_pixels"] == pytest.approx(
        seen.filter(pl.col("code").is_in(differing))["pixels"].sum() / seen["pixels"].sum()
    )
    alone = metrics(choose(app, "Compare with set", "(none)"))
    assert alone["Mapped differently by `(none)`"] == "-" and alone["Pixels mapped differently"] == "-"


def test_chips_gallery_filters_by_source_subset_and_class(demo_artifacts: Path, open_page: OpenPage) -> None:
    manifest = pl.read_parquet(demo_artifacts / "data" / "chips" / "manifest.parquet")
    app = open_page(demo_artifacts, "chips")
    assert app.title[0].value == "Chips"
    assert app.markdown[0].value.startswith(f"**{manifest.height} chips**")
    assert len(app.get("image")) == 12  # one page: each card's picture is the RGB composite beside the labels
    assert any(c.value.startswith(f"Page 1 of {-(-manifest.height // 12)}") for c in app.caption)
    choose(app, "Source", "cdl")
    app = choose(app, "Subset", "test 4")
    assert app.markdown[0].value.startswith("**4 chips**")
    assert len(app.get("image")) == 4
    cdl = manifest.filter(pl.col("source") == "cdl")
    area = cdl["height"] * cdl["width"]
    app = choose(choose(app, "Subset", "all chips"), "Contains class", "maize")
    expected = int(((cdl["px_maize"] / area) >= 0.01).sum())
    assert app.markdown[0].value.startswith(f"**{expected} chips**")


def test_transfer_page_intervals_and_comparisons_match_the_report(demo_artifacts: Path, open_page: OpenPage) -> None:
    paired = pl.read_parquet(demo_artifacts / "metrics" / "comparisons.parquet")
    app = choose(choose(open_page(demo_artifacts, "transfer"), "Protocol", "id"), "Metric", "oa")
    assert "Seeds and intervals" in [h.value for h in app.subheader]
    assert any("Seeds per model: 2" in c.value for c in app.caption)  # the tiny profile: seeds [0, 1]
    shown = frame(app, {"comparison", "verdict", "p_value"})
    base = paired.filter(pl.col("comparison") != "balance", pl.col("balance") == "base")  # strategies: own section
    expected = base.filter(pl.col("protocol") == "id", pl.col("metric") == "oa")
    every = paired.filter(pl.col("protocol") == "id", pl.col("metric") == "oa")
    assert shown.height == expected.height > 0 and expected.height < every.height
    unsupported = int((~expected["supported"]).sum())
    assert any(m.value.startswith(f"**{unsupported} of {expected.height}** comparisons") for m in app.markdown)
    verdicts = shown["verdict"].to_list()
    assert verdicts == sorted(verdicts)  # "not supported by the data" first
    headers = [h.value for h in app.subheader]
    assert "Class-balance strategies" in headers and "Split bias: random against blocked test sets" in headers
    effects = pl.read_parquet(demo_artifacts / "metrics" / "balance.parquet")
    strategies = frame(app, {"strategy", "with_strategy"})
    at_k = effects.filter(pl.col("protocol") == "id", pl.col("k") == 4)  # the tiny profile's one k
    assert strategies.height == at_k.height > 0
    bias = pl.read_parquet(demo_artifacts / "metrics" / "split_bias.parquet")
    shown_bias = frame(app, {"blocked", "random", "bias"})
    expected_bias = bias.filter(pl.col("balance") == "base", pl.col("k") == 4, pl.col("metric") == "oa")
    assert shown_bias["bias"].to_list() == expected_bias.sort("target_source", "backbone")["bias"].to_list()


def test_validation_page_shows_the_last_run(demo_artifacts: Path, open_page: OpenPage) -> None:
    failures = pl.read_parquet(demo_artifacts / "reports" / "validation" / "failures.parquet")
    app = open_page(demo_artifacts, "validation")
    assert app.title[0].value == "Validation"
    shown = metrics(app)
    assert shown["Result"] == "pass" and shown["Chips checked"] == str(SOURCES * CHIPS_PER_SOURCE)
    assert shown["Errors"] == "0" and shown["Warnings"] == str(failures.height)
    assert frame(app, {"severity", "file", "detail", "fix"}).height == failures.height


def test_transfer_page_heatmap_gap_and_recall_match_the_table(demo_artifacts: Path, open_page: OpenPage) -> None:
    every = pl.read_parquet(demo_artifacts / "metrics" / "transfer.parquet")
    transfer = every.filter(pl.col("balance") == "base")  # the page's numbers: base runs (strategies apart)
    assert transfer.height < every.height  # the tiny profile repeats its id runs with the chip sampler
    app = open_page(demo_artifacts, "transfer")
    assert app.title[0].value == "Transfer"
    assert any("random init" in i.value for i in app.info)  # the demo has no weight files
    app = choose(choose(choose(app, "Backbone", "satlas"), "Protocol", "ood+k"), "Metric", "miou")
    picked = transfer.filter(
        pl.col("backbone") == "satlas", pl.col("protocol") == "ood+k", pl.col("k") == 4, pl.col("metric") == "miou"
    )
    heat = frame(app, {"target_source", "nccm"})
    assert heat["target_source"].to_list() == ["cdl"]  # the tiny profile builds models for cdl only
    assert picked["seed"].n_unique() == 2  # the tiny profile's seeds: a cell is their mean
    for row in picked.group_by("test_source").agg(pl.col("value").mean()).iter_rows(named=True):
        assert heat[row["test_source"]].item() == pytest.approx(row["value"])
    reference = transfer.filter(
        pl.col("backbone") == "satlas", pl.col("protocol") == "id", pl.col("metric") == "miou"
    ).filter(pl.col("test_source") == "cdl")
    gaps = frame(app, {"test_source", "in_distribution", "this_target_gap"}).filter(pl.col("test_source") == "cdl")
    own = picked.filter(pl.col("test_source") == "cdl")["value"].mean()
    assert gaps["in_distribution"].item() == pytest.approx(reference["value"].mean())
    assert gaps["this_target_gap"].item() == pytest.approx(own - reference["value"].mean())
    recall = frame(app, {"target_source", "test_source", "maize", "wheat"}).filter(pl.col("test_source") == "cdl")
    expected = transfer.filter(
        pl.col("backbone") == "satlas", pl.col("protocol") == "ood+k", pl.col("metric") == "recall_maize"
    ).filter(pl.col("test_source") == "cdl")
    assert recall["maize"].item() == pytest.approx(expected["value"].mean())
    assert len(app.get("vega_lite_chart")) == 6  # heatmap, gap heatmap, learning curves, recall, confusion, intervals
