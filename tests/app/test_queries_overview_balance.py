"""Overview and class-balance queries on a hand-built six-chip manifest (chips of 2 x 5 = 10 pixels)."""

from __future__ import annotations

import polars as pl
import pytest

from app.queries import balance, overview

CLASSES = ["ignore", "maize", "soybean", "rice", "wheat", "other"]
# chip_id, source, year, pixels per class in CLASSES order, dominant
CHIPS = [
    ("c1", "cdl", 2019, (0, 6, 4, 0, 0, 0), "maize"),
    ("c2", "cdl", 2020, (2, 0, 8, 0, 0, 0), "soybean"),
    ("c3", "cdl", 2020, (0, 9, 0, 0, 1, 0), "maize"),
    ("c4", "cdl", 2020, (10, 0, 0, 0, 0, 0), "ignore"),
    ("n1", "nccm", 2019, (0, 6, 0, 4, 0, 0), "maize"),
    ("n2", "nccm", 2019, (4, 0, 0, 6, 0, 0), "rice"),
]
PLACES = {"cdl": ("USA", "North America", -95.0), "nccm": ("Northeast China", "Asia", 125.0)}


def make_manifest(crosswalk_set: str = "toolkit") -> pl.DataFrame:
    rows = []
    for i, (chip_id, source, year, counts, dominant) in enumerate(CHIPS):
        region, continent, lon = PLACES[source]
        row = {"chip_id": chip_id, "source": source, "region": region, "continent": continent, "year": year}
        row |= {"lon": lon + i, "lat": 40.0 + i, "height": 2, "width": 5}
        row |= {f"px_{c}": n for c, n in zip(CLASSES, counts, strict=True)}
        rows.append(row | {"dominant": dominant, "crosswalk_set": crosswalk_set})
    return pl.DataFrame(rows)


def make_subsets() -> pl.DataFrame:
    """Nested training sets (train 2 within train 10), test disjoint; nccm has no train 10."""
    rows = [
        ("c1", "cdl", "train", 2),
        ("c3", "cdl", "train", 2),
        ("c1", "cdl", "train", 10),
        ("c3", "cdl", "train", 10),
        ("c4", "cdl", "train", 10),
        ("c2", "cdl", "test", 1),
        ("n1", "nccm", "train", 2),
        ("n2", "nccm", "test", 1),
    ]
    return pl.DataFrame(rows, schema=["chip_id", "source", "split", "size"], orient="row")


@pytest.fixture
def rows() -> pl.DataFrame:
    return balance.scoped(make_manifest(), make_subsets())


def test_subset_order_sorts_sizes_numerically_train_before_test() -> None:
    subsets = pl.DataFrame(
        {"split": ["test", "train", "train", "test", "train"], "size": [100, 10, 2, 20, 10], "source": ["a"] * 5}
    )
    assert overview.subset_order(subsets) == ["train 2", "train 10", "test 20", "test 100"]


def test_subset_rank_puts_all_chips_first() -> None:
    labels = pl.DataFrame({"subset": ["test 1", "train 10", "all chips", "train 2"]})
    ordered = labels.sort(overview.subset_rank(pl.col("subset")))["subset"].to_list()
    assert ordered == ["all chips", "train 2", "train 10", "test 1"]


def test_counts_per_source_with_nested_subsets() -> None:
    counts = overview.counts_per_source(make_manifest(), make_subsets())
    assert counts.columns == ["source", "region", "continent", "years", "chips", "train 2", "train 10", "test 1"]
    assert counts.rows() == [
        ("cdl", "USA", "North America", "2019, 2020", 4, 2, 3, 1),
        ("nccm", "Northeast China", "Asia", "2019", 2, 1, 0, 1),
    ]
    assert counts["train 10"].dtype == pl.Int64


@pytest.mark.parametrize("subsets", [None, pl.DataFrame(schema={"chip_id": pl.String, "source": pl.String})])
def test_counts_per_source_without_subsets(subsets: pl.DataFrame | None) -> None:
    counts = overview.counts_per_source(make_manifest(), subsets)
    assert counts.columns == ["source", "region", "continent", "years", "chips"]
    assert counts.select("source", "chips").rows() == [("cdl", 4), ("nccm", 2)]


def test_chip_points_colours_and_grey_default() -> None:
    points = overview.chip_points(make_manifest().reverse(), {"cdl": "#111111"})
    assert points.columns == ["source", "chip_id", "lat", "lon", "color"]
    assert points["chip_id"].to_list() == ["c1", "c2", "c3", "c4", "n1", "n2"]
    assert points["color"].to_list() == ["#111111"] * 4 + ["#808080"] * 2
    assert points.row(4) == ("nccm", "n1", 44.0, 129.0, "#808080")


def test_source_palette_follows_the_order_given_and_wraps() -> None:
    assert overview.source_palette(["cdl", "eurocrops", "nccm"]) == {
        "cdl": "#4e79a7",
        "eurocrops": "#f28e2b",
        "nccm": "#e15759",
    }
    assert overview.source_palette(["nccm", "cdl"]) == {"nccm": "#4e79a7", "cdl": "#f28e2b"}  # params order
    ten = overview.source_palette([f"s{i}" for i in range(10)])
    assert ten["s9"] == ten["s0"] == "#4e79a7"
    assert ten["s8"] == "#9c755f"


def test_crosswalk_sets_unique_sorted() -> None:
    manifest = pl.concat([make_manifest("toolkit"), make_manifest("paper")])
    assert overview.crosswalk_sets(manifest) == ["paper", "toolkit"]
    assert overview.crosswalk_sets(make_manifest()) == ["toolkit"]


def test_scoped_tags_every_chip_once_plus_each_subset(rows: pl.DataFrame) -> None:
    per_group = rows.group_by("source", "subset").agg(pl.col("chip_id").sort()).sort("source", "subset")
    assert per_group.rows() == [
        ("cdl", "all chips", ["c1", "c2", "c3", "c4"]),
        ("cdl", "test 1", ["c2"]),
        ("cdl", "train 10", ["c1", "c3", "c4"]),
        ("cdl", "train 2", ["c1", "c3"]),
        ("nccm", "all chips", ["n1", "n2"]),
        ("nccm", "test 1", ["n2"]),
        ("nccm", "train 2", ["n1"]),
    ]
    assert balance.scoped(make_manifest(), None)["subset"].unique().to_list() == ["all chips"]


def test_class_balance_all_chips_exact(rows: pl.DataFrame) -> None:
    table = balance.class_balance(rows, CLASSES, min_share=0.3)
    cdl = table.filter(pl.col("source") == "cdl", pl.col("subset") == "all chips")
    assert cdl["class"].to_list() == CLASSES
    assert cdl["pixels"].to_list() == [12, 15, 12, 0, 1, 0]
    assert cdl["pixel_share"].to_list() == pytest.approx([0.3, 0.375, 0.3, 0.0, 0.025, 0.0])
    # contains = covers >= 30% of the chip: c4 ignore; c1, c3 maize; c1, c2 soybean; wheat (10% of c3) in none
    assert cdl["chips"].to_list() == [1, 2, 2, 0, 0, 0]
    assert cdl["chip_share"].to_list() == pytest.approx([0.25, 0.5, 0.5, 0.0, 0.0, 0.0])
    assert cdl["dominant"].to_list() == [1, 2, 1, 0, 0, 0]
    assert cdl["dominant_share"].to_list() == pytest.approx([0.25, 0.5, 0.25, 0.0, 0.0, 0.0])
    assert cdl["group_chips"].unique().to_list() == [4]


def test_class_balance_group_order_follows_subset_rank(rows: pl.DataFrame) -> None:
    table = balance.class_balance(rows, CLASSES, min_share=0.3)
    groups = table.select("source", "subset").unique(maintain_order=True).rows()
    assert groups == [
        ("cdl", "all chips"),
        ("cdl", "train 2"),
        ("cdl", "train 10"),
        ("cdl", "test 1"),
        ("nccm", "all chips"),
        ("nccm", "train 2"),
        ("nccm", "test 1"),
    ]
    shares = table.group_by("source", "subset").agg(pl.col("pixel_share").sum(), pl.col("dominant_share").sum())
    assert shares["pixel_share"].to_list() == pytest.approx([1.0] * 7)
    assert shares["dominant_share"].to_list() == pytest.approx([1.0] * 7)


def test_class_balance_without_ignore_renormalises_shares(rows: pl.DataFrame) -> None:
    table = balance.class_balance(rows, CLASSES, min_share=0.3, include_ignore=False)
    cdl = table.filter(pl.col("source") == "cdl", pl.col("subset") == "all chips")
    assert cdl["class"].to_list() == CLASSES[1:]
    assert cdl["pixel_share"].to_list() == pytest.approx([15 / 28, 12 / 28, 0.0, 1 / 28, 0.0])
    assert cdl["chips"].to_list() == [2, 2, 0, 0, 0]


def test_class_balance_group_of_only_ignore_has_zero_shares_not_nan() -> None:
    only_ignore = balance.scoped(make_manifest().filter(pl.col("chip_id") == "c4"), None)
    table = balance.class_balance(only_ignore, CLASSES, min_share=0.3, include_ignore=False)
    assert table["pixel_share"].to_list() == [0.0] * 5
    assert table["chip_share"].to_list() == [0.0] * 5
    ratios = balance.imbalance(table)
    assert ratios.rows() == [
        ("cdl", "all chips", 1, "∞: 5 of 5 classes have no pixel", float("inf"), None, None, None, 5,
         "maize, soybean, rice, wheat, other"),
    ]  # fmt: skip


def test_imbalance_ratio_rarest_and_missing(rows: pl.DataFrame) -> None:
    table = balance.class_balance(rows, CLASSES, min_share=0.3)
    ratios = balance.imbalance(table)
    assert ratios.columns == [
        "source", "subset", "chips", "imbalance", "imbalance_ratio", "ratio_present", "commonest", "rarest",
        "classes_missing", "missing",
    ]  # fmt: skip
    # A class without a single pixel makes the ratio infinite; ratio_present is over the classes with pixels.
    labelled = table.filter(pl.col("class") != "ignore")
    empty = labelled.group_by("source", "subset").agg((pl.col("pixels") == 0).sum().alias("empty"))
    for row in ratios.join(empty, on=["source", "subset"]).iter_rows(named=True):
        assert (row["imbalance_ratio"] == float("inf")) == (row["empty"] > 0)
        if row["empty"]:
            assert row["imbalance"] == f"∞: {row['empty']} of 5 classes have no pixel"
        assert row["classes_missing"] == len(row["missing"].split(", "))
    assert ratios.select("source", "subset", "chips", "ratio_present", "commonest", "rarest", "missing").rows() == [
        # wheat has 1 pixel (ratio over classes with pixels) yet no chip contains it (missing)
        ("cdl", "all chips", 4, 15.0, "maize", "wheat", "rice, wheat, other"),
        ("cdl", "train 2", 2, 15.0, "maize", "wheat", "rice, wheat, other"),
        ("cdl", "train 10", 3, 15.0, "maize", "wheat", "rice, wheat, other"),
        ("cdl", "test 1", 1, 1.0, "soybean", "soybean", "maize, rice, wheat, other"),
        ("nccm", "all chips", 2, 10 / 6, "rice", "maize", "soybean, wheat, other"),
        ("nccm", "train 2", 1, 1.5, "maize", "rice", "soybean, wheat, other"),
        ("nccm", "test 1", 1, 1.0, "rice", "rice", "maize, soybean, wheat, other"),
    ]


def make_histograms() -> pl.DataFrame:
    rows = [
        ("cdl", "c1", 1, 6, "maize"),
        ("cdl", "c1", 5, 4, "soybean"),
        ("cdl", "c2", 0, 1, "ignore"),
        ("cdl", "c2", 254, 1, "ignore"),
        ("cdl", "c2", 5, 8, "soybean"),
        ("cdl", "zz", 1, 99, "maize"),  # a chip window not in the manifest: never counted
    ]
    return pl.DataFrame(rows, schema=["source", "chip_id", "code", "pixels", "target"], orient="row")


def test_native_balance_shares_names_and_order(rows: pl.DataFrame) -> None:
    names = pl.DataFrame({"source": ["cdl", "cdl"], "code": [1, 5], "name": ["Corn", "Soybeans"]})
    native = balance.native_balance(make_histograms(), rows, names)
    every = native.filter(pl.col("subset") == "all chips")
    assert every.select("code", "name", "target", "pixels").rows() == [
        (5, "Soybeans", "soybean", 12),
        (1, "Corn", "maize", 6),
        (0, "0", "ignore", 1),  # a tie in pixels goes by code; a code without a name shows the code
        (254, "254", "ignore", 1),
    ]
    assert every["share"].to_list() == pytest.approx([0.6, 0.3, 0.05, 0.05])
    assert native.select("subset").unique(maintain_order=True)["subset"].to_list() == [
        "all chips",
        "train 2",
        "train 10",
        "test 1",
    ]
    train = native.filter(pl.col("subset") == "train 2")
    assert train.select("code", "share").rows() == [(1, 0.6), (5, 0.4)]


def test_native_balance_without_names_and_harmonized_cross_check(rows: pl.DataFrame) -> None:
    native = balance.native_balance(make_histograms(), rows)
    assert native.filter(pl.col("subset") == "test 1")["name"].to_list() == ["5", "0", "254"]
    harmonized = balance.harmonized_from_native(native)
    assert harmonized.filter(pl.col("subset") == "all chips").rows() == [
        ("cdl", "all chips", "ignore", 2),
        ("cdl", "all chips", "maize", 6),
        ("cdl", "all chips", "soybean", 12),
    ]
    # the same as the manifest's counts for the two chips that have histograms
    manifest = balance.class_balance(rows.filter(pl.col("chip_id").is_in(["c1", "c2"])), CLASSES, 0.3)
    counted = manifest.filter(pl.col("subset") == "all chips", pl.col("pixels") > 0)
    assert counted.select("class", "pixels").rows() == [("ignore", 2), ("maize", 6), ("soybean", 12)]
