"""One click between pages (a balance bar or row opens the filtered gallery, a validation finding opens its chip),
the chip detail, the balance under both crosswalk sets, cloud-robust composites, the offline viewer settings."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from app import render
from app.queries import balance, chips
from app.queries.legends import code_targets
from curation.core.legends import load_set
from tests.app.conftest import ENTRY, OpenPage

MANIFEST = "data/chips/manifest.parquet"
FLAGGED = "2023_-32557_-16125"  # the tiny demo's cdl chip validate warns about (ignore share)


def filters(app: AppTest) -> dict[str, object]:
    return {s.label: s.value for s in app.selectbox if s.label in ("Source", "Subset", "Contains class")}


def test_a_click_on_a_balance_segment_opens_the_filtered_gallery(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "balance")
    app.session_state["balance_grid"] = {
        "selection": {"bar": [{"source": "cdl", "subset": "train 4", "class": "maize"}]}
    }
    app.run()
    assert not app.exception and app.title[0].value == "Chips"
    assert filters(app) == {"Source": "cdl", "Subset": "train 4", "Contains class": "maize"}
    subsets = pl.read_parquet(demo_artifacts / "data" / "subsets" / "subsets.parquet")
    manifest = pl.read_parquet(demo_artifacts / MANIFEST)
    train4 = manifest.join(subsets.filter(pl.col("source") == "cdl", pl.col("split") == "train", pl.col("size") == 4),
                           on=["source", "chip_id"])  # fmt: skip
    expected = int((train4["px_maize"] / (train4["height"] * train4["width"]) >= 0.01).sum())
    assert app.markdown[0].value.startswith(f"**{expected} chips**")


def test_a_selected_imbalance_row_opens_its_subset_in_the_gallery(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "balance")
    ratios = next(pl.from_pandas(d.value) for d in app.dataframe if "imbalance_ratio" in d.value.columns)
    position = ratios.with_row_index().filter(pl.col("source") == "nccm", pl.col("subset") == "test 4")["index"].item()
    app.session_state["balance_imbalance_rows"] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    app.run()
    assert app.title[0].value == "Chips" and filters(app) == {
        "Source": "nccm",
        "Subset": "test 4",
        "Contains class": "(any)",
    }
    assert app.markdown[0].value.startswith("**4 chips**")


def test_a_source_missing_classes_has_an_infinite_ratio_in_words(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "balance")
    ratios = next(pl.from_pandas(d.value) for d in app.dataframe if "imbalance_ratio" in d.value.columns)
    africa = ratios.filter(pl.col("source") == "south_africa_crop_type", pl.col("subset") == "all chips").row(
        0, named=True
    )
    manifest = pl.read_parquet(demo_artifacts / MANIFEST).filter(pl.col("source") == "south_africa_crop_type")
    empty = [c for c in ("maize", "soybean", "rice", "wheat", "other") if manifest[f"px_{c}"].sum() == 0]
    assert len(empty) >= 2  # the demo's South Africa holds wheat and other only
    assert africa["imbalance_ratio"] == float("inf")
    assert africa["imbalance"] == f"∞: {len(empty)} of 5 classes have no pixel"
    assert set(empty) <= set(africa["missing"].split(", "))


def test_class_shares_under_both_crosswalk_sets(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "balance")
    compared = next(pl.from_pandas(d.value) for d in app.dataframe if "share_paper" in d.value.columns)
    legends = demo_artifacts / "curation" / "legends"
    histograms = pl.read_parquet(demo_artifacts / "reports" / "validation" / "label_histograms.parquet")
    paper = code_targets(load_set(legends, "paper").crosswalks, histograms)
    cdl = histograms.filter(pl.col("source") == "cdl").join(paper, on=["source", "code"])
    rice = cdl.filter(pl.col("target_right") == "rice")["pixels"].sum() / cdl["pixels"].sum()
    row = compared.filter(pl.col("source") == "cdl", pl.col("subset") == "all chips", pl.col("class") == "rice")
    assert row["share_paper"].item() == pytest.approx(rice) == 0.0  # the study's set sends CDL rice to other
    toolkit = cdl.filter(pl.col("target") == "rice")["pixels"].sum() / cdl["pixels"].sum()
    assert toolkit > 0 and row["share_toolkit"].item() == pytest.approx(toolkit)
    assert row["paper_minus_toolkit_points"].item() == pytest.approx(-100 * toolkit)
    labels = {b.proto.label for b in app.get("download_button")}
    assert {"Download shares CSV", "Download imbalance CSV", "Download shares by set CSV"} <= labels


def test_set_shares_map_the_same_native_pixels_through_each_set() -> None:
    histograms = pl.DataFrame(
        {"source": ["s"] * 3, "chip_id": ["a", "a", "b"], "code": [1, 2, 2], "pixels": [6, 2, 2], "target": ["x"] * 3}
    )
    rows = pl.DataFrame({"source": ["s", "s"], "chip_id": ["a", "b"], "subset": ["all chips"] * 2})
    targets = {
        "one": pl.DataFrame({"source": ["s", "s"], "code": [1, 2], "target": ["maize", "rice"]}),
        "two": pl.DataFrame({"source": ["s", "s"], "code": [1, 2], "target": ["maize", "other"]}),
    }
    shares = balance.set_shares(histograms, rows, targets)
    table = balance.set_differences(shares, ["maize", "rice", "other"], ["one", "two"])
    assert table.select("class", "share_one", "share_two", "two_minus_one_points").rows() == [
        ("maize", 0.6, 0.6, 0.0), ("rice", 0.4, 0.0, -40.0), ("other", 0.0, 0.4, 40.0),
    ]  # fmt: skip


def test_a_validation_finding_opens_its_chip_detail(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "validation")
    findings = next(pl.from_pandas(d.value) for d in app.dataframe if "chip_id" in d.value.columns)
    assert set(findings["chip_id"].drop_nulls()) == {FLAGGED, "2021_8801_-24057"}  # the shapefile row names none
    position = findings["chip_id"].to_list().index(FLAGGED)
    app.session_state["validation_rows"] = {"selection": {"rows": [position], "columns": [], "cells": []}}
    app.run()
    assert app.title[0].value == "Chips" and app.query_params["chip"] == FLAGGED
    assert f"Chip {FLAGGED}" in [h.value for h in app.subheader]
    warned = next(pl.from_pandas(d.value) for d in app.dataframe if "rule" in d.value.columns)
    assert warned["rule"].to_list() == ["ignore share"] and FLAGGED in warned["detail"].item()


def test_the_chip_detail_shows_shares_location_and_subsets(
    demo_artifacts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = pl.read_parquet(demo_artifacts / MANIFEST)
    subsets = pl.read_parquet(demo_artifacts / "data" / "subsets" / "subsets.parquet")
    chip = subsets.filter(pl.col("source") == "cdl", pl.col("split") == "train", pl.col("size") == 2)["chip_id"][0]
    monkeypatch.setenv("CROPHARMONY_ROOT", str(demo_artifacts))
    app = AppTest.from_file(str(ENTRY), default_timeout=60)
    app.query_params["chip"] = chip
    app.run().switch_page("views/chips.py").run()
    assert not app.exception and f"Chip {chip}" in [h.value for h in app.subheader]
    row = manifest.filter(pl.col("chip_id") == chip).row(0, named=True)
    shares = next(
        pl.from_pandas(d.value) for d in app.dataframe if {"class", "pixels", "share"} <= set(d.value.columns)
    )
    assert shares["pixels"].to_list() == [row[f"px_{c}"] for c in shares["class"]]
    where = next(pl.from_pandas(d.value) for d in app.dataframe if "field" in d.value.columns)
    assert dict(where.rows())["lat, lon"] == f"{row['lat']:.5f}, {row['lon']:.5f}"
    assert any(m.value.startswith("**Subsets**: `train 2`, `train 4`, `train 8`") for m in app.markdown)  # nested sets
    (picture, *_cards) = app.get("image")
    assert picture.proto.imgs[0].caption == "RGB (B04, B03, B02) · labels"
    app.button(key="chips_close").click().run()
    assert f"Chip {chip}" not in [h.value for h in app.subheader] and "chip" not in app.query_params


def test_failure_chip_reads_the_file_stem_or_the_detail() -> None:
    known = {"2023_1_2", "x"}
    assert chips.failure_chip("data/demo/sentinel2/cdl/2023_1_2.tif", None, known) == "2023_1_2"
    assert chips.failure_chip("labels.shp", "chip x: 70% ignore", known) == "x"
    assert chips.failure_chip("data/demo/eurocrops/LV.shp", "3 parcel(s) have no code", known) is None


def test_a_cloud_over_part_of_a_chip_does_not_darken_the_fields() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(400, 1200, size=(3, 32, 32)).astype(np.uint16)
    image[:, :8, :] = 4600  # a saturated cloud over a quarter of the chip
    stretched = render.stretch(image)
    assert stretched[:, 8:, :].mean() > 100  # the fields span the range (a stretch to the cloud left them near 0)
    assert (stretched[:, :8, :] == 255).all()
    naive = np.percentile(image[0], 98)
    assert naive == 4600  # what the percentile of every pixel would have stretched to


def test_the_app_config_hides_the_developer_toolbar_and_deploy_button() -> None:
    config = tomllib.loads((ENTRY.parent / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "viewer"  # no Deploy button, no developer menu
    assert config["browser"]["gatherUsageStats"] is False and config["server"]["address"] == "127.0.0.1"


def test_the_page_icon_is_an_emoji_not_a_fetched_icon() -> None:
    source = ENTRY.read_text()
    assert 'page_icon="🌾"' in source and ":material/grass:" not in source.split("st.Page(")[0]
