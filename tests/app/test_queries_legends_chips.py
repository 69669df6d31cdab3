"""Legend tables on the project's real crosswalk sets, and the gallery's chip filter and captions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from app.queries import balance, chips, legends
from curation.core.legends import CrosswalkSet, load_set

LEGENDS = Path(__file__).resolve().parents[2] / "curation" / "legends"
CLASSES = ["ignore", "maize", "soybean", "rice", "wheat", "other"]


@pytest.fixture(scope="module")
def toolkit() -> CrosswalkSet:
    return load_set(LEGENDS, "toolkit")


@pytest.fixture(scope="module")
def paper() -> CrosswalkSet:
    return load_set(LEGENDS, "paper")


def seen(codes: dict[int, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"code": list(codes), "pixels": list(codes.values())}, schema={"code": pl.Int64, "pixels": pl.Int64}
    )


def test_crosswalk_frame_is_the_csv(toolkit: CrosswalkSet) -> None:
    frame = legends.crosswalk_frame(toolkit["cdl"])
    assert frame.schema == pl.Schema({"code": pl.Int64, "name": pl.String, "target": pl.String, "note": pl.String})
    assert frame.height == 134  # every named CDL code, one row each
    assert frame.head(4).select("code", "name", "target").rows() == [
        (0, "Background", "ignore"),
        (1, "Corn", "maize"),
        (2, "Cotton", "other"),
        (3, "Rice", "rice"),
    ]
    assert frame.row(3, named=True)["note"].startswith("decision: rice kept as rice")
    assert frame.row(1, named=True)["note"] == ""


def test_pixels_seen_sums_one_source() -> None:
    histograms = pl.DataFrame(
        {
            "source": ["cdl", "cdl", "cdl", "nccm"],
            "chip_id": ["a", "b", "b", "n"],
            "code": [5, 1, 5, 1],
            "pixels": [3, 4, 7, 100],
            "target": ["soybean", "maize", "soybean", "maize"],
        }
    )
    assert legends.pixels_seen(histograms, "cdl").rows() == [(1, 4), (5, 10)]
    assert legends.pixels_seen(histograms, "eurocrops").height == 0


def test_legend_table_cdl_rice_differs_from_paper(toolkit: CrosswalkSet, paper: CrosswalkSet) -> None:
    table = legends.legend_table(toolkit["cdl"], paper["cdl"], seen({1: 10, 3: 20, 5: 30}))
    assert table.columns == ["code", "name", "target", "note", "pixels", "paper_target", "differs"]
    assert table.height == 134
    assert table["code"].is_sorted()
    shown = table.filter(pl.col("pixels") > 0).select("code", "name", "target", "paper_target", "differs", "pixels")
    assert shown.rows() == [
        (1, "Corn", "maize", "maize", False, 10),
        (3, "Rice", "rice", "other", True, 20),
        (5, "Soybeans", "soybean", "soybean", False, 30),
    ]
    assert legends.differing_pixels(table) == 20


def test_legend_table_eurocrops_prefix_matched_codes(toolkit: CrosswalkSet, paper: CrosswalkSet) -> None:
    # 3301010198 is not listed: it follows common soft wheat (3301010100); 3301090499 follows green silo maize
    codes = {0: 5, 3301010198: 10, 3301090400: 30, 3301090499: 20}
    table = legends.legend_table(toolkit["eurocrops"], paper["eurocrops"], seen(codes))
    listed = legends.crosswalk_frame(toolkit["eurocrops"]).height
    assert table.height == listed + 2
    shown = table.filter(pl.col("pixels") > 0).select("code", "name", "target", "paper_target", "differs", "pixels")
    assert shown.rows() == [
        (0, "no HCAT code / outside parcels", "ignore", "ignore", False, 5),
        (3301010198, legends.NOT_LISTED, "wheat", "wheat", False, 10),
        (3301090400, "green_silo_maize", "maize", "other", True, 30),
        (3301090499, legends.NOT_LISTED, "maize", "other", True, 20),
    ]
    assert table.filter(pl.col("code") == 3301010198)["note"].to_list() == [""]
    assert legends.differing_pixels(table) == 50


def test_legend_table_exact_source_unlisted_code_is_unmapped(toolkit: CrosswalkSet) -> None:
    listed = set(toolkit["cdl"].codes.tolist())
    code = next(c for c in range(256) if c not in listed)
    table = legends.legend_table(toolkit["cdl"], None, seen({code: 7}))
    row = table.filter(pl.col("code") == code).row(0, named=True)
    assert row == {
        "code": code,
        "name": legends.NOT_IN_CROSSWALK,
        "target": legends.UNMAPPED_NAME,
        "note": "",
        "pixels": 7,
    }
    assert "differs" not in table.columns
    assert legends.differing_pixels(table) == 0


def test_legend_table_without_seen_pixels(toolkit: CrosswalkSet, paper: CrosswalkSet) -> None:
    table = legends.legend_table(toolkit["cdl"], paper["cdl"], None)
    assert "pixels" not in table.columns
    assert table.filter(pl.col("differs"))["code"].to_list()[0] == 3
    assert legends.differing_pixels(table) == 0  # nothing seen, nothing to weigh


# chips: the scoped manifest of three 10-pixel chips
def make_rows() -> pl.DataFrame:
    counts = {"c1": (0, 6, 4, 0, 0, 0), "c3": (0, 9, 0, 0, 1, 0), "n1": (0, 6, 0, 4, 0, 0), "n2": (4, 0, 0, 6, 0, 0)}
    dominant = {"c1": "maize", "c3": "maize", "n1": "maize", "n2": "rice"}
    manifest = pl.DataFrame(
        [
            {"chip_id": chip, "source": "cdl" if chip.startswith("c") else "nccm", "dominant": dominant[chip]}
            | {f"px_{c}": n for c, n in zip(CLASSES, px, strict=True)}
            for chip, px in counts.items()
        ]
    )
    subsets = pl.DataFrame(
        {"chip_id": ["c3", "n2"], "source": ["cdl", "nccm"], "split": ["train", "test"], "size": [2, 1]}
    )
    return balance.scoped(manifest, subsets)


def test_filter_chips_defaults_to_all_chips_sorted() -> None:
    out = chips.filter_chips(make_rows().reverse(), CLASSES)
    assert out["chip_id"].to_list() == ["c1", "c3", "n1", "n2"]
    assert out.filter(pl.col("chip_id") == "c1").select(f"share_{c}" for c in CLASSES).row(0) == pytest.approx(
        (0.0, 0.6, 0.4, 0.0, 0.0, 0.0)
    )


def test_filter_chips_by_source_and_subset() -> None:
    rows = make_rows()
    assert chips.filter_chips(rows, CLASSES, source="nccm")["chip_id"].to_list() == ["n1", "n2"]
    assert chips.filter_chips(rows, CLASSES, subset="train 2")["chip_id"].to_list() == ["c3"]
    assert chips.filter_chips(rows, CLASSES, source="nccm", subset="train 2").height == 0


def test_filter_chips_contains_sorts_by_share_then_source() -> None:
    rows = make_rows()
    maize = chips.filter_chips(rows, CLASSES, contains="maize")
    assert maize.select("chip_id", "share_maize").rows() == [("c3", 0.9), ("c1", 0.6), ("n1", 0.6)]
    assert chips.filter_chips(rows, CLASSES, contains="maize", min_share=0.7)["chip_id"].to_list() == ["c3"]
    assert chips.filter_chips(rows, CLASSES, contains="wheat")["chip_id"].to_list() == ["c3"]
    assert chips.filter_chips(rows, CLASSES, contains="rice", source="cdl").height == 0
    assert chips.filter_chips(rows, CLASSES, contains="rice", min_share=0.6)["chip_id"].to_list() == ["n2"]


def test_caption_lists_present_classes_in_class_order() -> None:
    out = chips.filter_chips(make_rows(), CLASSES)
    captions = [chips.caption(row, CLASSES) for row in out.iter_rows(named=True)]
    assert captions == [
        "c1 · maize · maize 60%, soybean 40%",
        "c3 · maize · maize 90%, wheat 10%",
        "n1 · maize · maize 60%, rice 40%",
        "n2 · rice · ignore 40%, rice 60%",
    ]
    assert chips.caption({"chip_id": "x", "dominant": "other", "share_other": None}, CLASSES) == "x · other · "


def test_difference_summary_shares_each_source_pixels(toolkit: CrosswalkSet, paper: CrosswalkSet) -> None:
    histograms = pl.DataFrame(
        {"source": ["cdl", "cdl", "cdl", "nccm"], "code": [1, 3, 3, 1], "pixels": [60, 30, 10, 7]},
        schema={"source": pl.String, "code": pl.Int64, "pixels": pl.Int64},
    )
    summary = legends.difference_summary(toolkit, paper, histograms)
    assert summary["source"].to_list() == list(toolkit.crosswalks)  # every source, in the set's order
    cdl = summary.row(by_predicate=pl.col("source") == "cdl", named=True)
    differing = legends.legend_table(toolkit["cdl"], paper["cdl"], None)["differs"].sum()
    assert cdl["codes_differing"] == differing > 0
    assert (cdl["codes_differing_in_data"], cdl["pixels_differing"], cdl["pixels_of_source"]) == (1, 40, 100)
    assert cdl["share_of_source_pixels"] == pytest.approx(0.4)  # rice (3): 40 of cdl's 100 pixels
    unseen = summary.row(by_predicate=pl.col("source") == "eurocrops", named=True)
    assert unseen["pixels_of_source"] == 0 and unseen["share_of_source_pixels"] is None  # no pixels: no share
    without = legends.difference_summary(toolkit, paper, None)
    assert without["codes_differing"].to_list() == summary["codes_differing"].to_list()
    assert without["share_of_source_pixels"].null_count() == without.height


def test_differences_with_pixels_joins_each_source_codes() -> None:
    rows: list[dict[str, object]] = [
        {"source": "cdl", "code": 3, "name": "Rice", "toolkit": "rice", "paper": "other"},
        {"source": "nccm", "code": 3, "name": "Rice", "toolkit": "rice", "paper": "other"},
        {"source": "cdl", "code": 24, "name": "Winter Wheat", "toolkit": "wheat", "paper": "other"},
    ]
    histograms = pl.DataFrame(
        {"source": ["cdl", "cdl", "nccm"], "code": [3, 1, 9], "pixels": [25, 75, 5]},
        schema={"source": pl.String, "code": pl.Int64, "pixels": pl.Int64},
    )
    frame = legends.differences_with_pixels(rows, histograms)
    assert frame.select("source", "code", "pixels").rows() == [("cdl", 3, 25), ("nccm", 3, 0), ("cdl", 24, 0)]
    assert frame["share_of_source_pixels"].to_list() == pytest.approx([0.25, 0.0, 0.0])
    assert legends.differences_with_pixels(rows, None).columns == ["source", "code", "name", "toolkit", "paper"]
    assert legends.differences_with_pixels([], histograms).is_empty()
