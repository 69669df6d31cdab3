"""Transfer queries on a hand-built transfer table: two sources, two backbones, id / ood / ood+k."""

from __future__ import annotations

import math

import polars as pl
import pytest

from app.queries import transfer

NAN = math.nan
SOURCES = ("cdl", "nccm")
# protocol, backbone, target_source, k, test_source, metric, value (run suffix tells repeated runs apart)
ROWS = [
    ("id", "ssl4eo", "cdl", 10, "cdl", "oa", 0.9),
    ("id", "ssl4eo", "cdl", 10, "nccm", "oa", 0.5),
    ("id", "ssl4eo", "nccm", 10, "nccm", "oa", 0.8),
    ("id", "ssl4eo", "nccm", 10, "cdl", "oa", 0.4),
    ("id", "ssl4eo", "cdl", 100, "cdl", "oa", 0.95),
    ("id", "ssl4eo", "cdl", 100, "nccm", "oa", 0.6),
    ("id", "ssl4eo", "nccm", 100, "nccm", "oa", 0.85),
    ("id", "ssl4eo", "nccm", 100, "cdl", "oa", 0.5),
    ("ood", "ssl4eo", "cdl", 0, "cdl", "oa", 0.6),
    ("ood", "ssl4eo", "cdl", 0, "nccm", "oa", 0.7),
    ("ood", "ssl4eo", "nccm", 0, "nccm", "oa", 0.5),
    ("ood", "ssl4eo", "nccm", 0, "cdl", "oa", 0.8),
    ("ood+k", "ssl4eo", "cdl", 10, "cdl", "oa", 0.92),
    ("id", "ssl4eo", "cdl", 10, "cdl", "miou", 0.5),
    ("id", "ssl4eo", "cdl", 10, "cdl", "recall_maize", 0.9),
    ("id", "ssl4eo", "cdl", 10, "cdl", "recall_rice", NAN),  # no rice in cdl's test set
    ("id", "ssl4eo", "cdl", 10, "nccm", "recall_maize", 0.1),  # off the diagonal: not a recall row
    ("id", "ssl4eo", "nccm", 10, "nccm", "recall_maize", 0.7),
    ("id", "ssl4eo", "nccm", 10, "nccm", "recall_rice", 0.6),
    ("id", "satlas", "cdl", 10, "cdl", "oa", 0.7),
    ("id", "satlas", "cdl", 10, "cdl", "oa", 0.8),  # a second run of the same model: cells average
    ("id", "satlas", "nccm", 10, "nccm", "oa", 0.6),
]


def make_transfer() -> pl.DataFrame:
    records = []
    for i, (protocol, backbone, target, k, test, metric, value) in enumerate(ROWS):
        others = ",".join(s for s in SOURCES if s != target)
        train = {"id": target, "ood": others, "ood+k": f"{others},{target}"}[protocol]
        satlas = backbone == "satlas"
        records.append(
            {
                "run_id": f"{protocol}-{backbone}-{target}-{k}" + ("-b" if satlas and i % 2 else ""),
                "protocol": protocol,
                "backbone": backbone,
                "target_source": target,
                "train_sources": train,
                "k": k,
                "test_source": test,
                "metric": metric,
                "value": value,
                "crosswalk_set": "paper" if protocol == "ood+k" else "toolkit",
                "weights": "random" if satlas else "pretrained",
                "weights_file": None if satlas else "ssl4eo.pth",
            }
        )
    return pl.DataFrame(records, schema_overrides={"k": pl.Int64, "value": pl.Float64, "weights_file": pl.String})


@pytest.fixture
def table() -> pl.DataFrame:
    return make_transfer()


def test_options_order(table: pl.DataFrame) -> None:
    assert transfer.options(table) == transfer.Choices(
        backbones=["satlas", "ssl4eo"],
        protocols=["id", "ood", "ood+k"],
        metrics=["oa", "miou"],  # headline order; recall_* are not selectable
        sizes=[0, 10, 100],
    )
    assert transfer.sizes(table, "ood") == [0]
    assert transfer.sizes(table, "id") == [10, 100]
    assert transfer.sizes(table, "pretrain-finetune") == []


def test_heatmap_cells(table: pl.DataFrame) -> None:
    cells = transfer.heatmap(table, "ssl4eo", "id", 10, "oa")
    assert cells.rows() == [("cdl", "cdl", 0.9), ("cdl", "nccm", 0.5), ("nccm", "cdl", 0.4), ("nccm", "nccm", 0.8)]


def test_heatmap_averages_repeated_runs_and_nan_is_null(table: pl.DataFrame) -> None:
    cells = transfer.heatmap(table, "satlas", "id", 10, "oa")
    assert cells["value"].to_list() == pytest.approx([0.75, 0.6])
    recall = transfer.heatmap(table, "ssl4eo", "id", 10, "recall_rice")
    assert recall.rows() == [("cdl", "cdl", None), ("nccm", "nccm", 0.6)]


def test_in_distribution_is_the_diagonal(table: pl.DataFrame) -> None:
    assert transfer.in_distribution(table, "ssl4eo", 100, "oa").rows() == [("cdl", 0.95), ("nccm", 0.85)]


def test_gap_to_in_distribution_id(table: pl.DataFrame) -> None:
    gaps = transfer.gap_to_in_distribution(table, "ssl4eo", "id", 10, "oa", reference_k=10)
    assert gaps.columns == ["target_source", "test_source", "value", "id_value", "gap"]
    assert gaps.select("target_source", "test_source").rows() == [
        ("cdl", "cdl"),
        ("cdl", "nccm"),
        ("nccm", "cdl"),
        ("nccm", "nccm"),
    ]
    assert gaps["id_value"].to_list() == pytest.approx([0.9, 0.8, 0.9, 0.8])
    assert gaps["gap"].to_list() == pytest.approx([0.0, -0.3, -0.5, 0.0])


def test_gap_ood_at_k0_against_reference_k(table: pl.DataFrame) -> None:
    gaps = transfer.gap_to_in_distribution(table, "ssl4eo", "ood", 0, "oa", reference_k=100)
    assert gaps["id_value"].to_list() == pytest.approx([0.95, 0.85, 0.95, 0.85])
    assert gaps["gap"].to_list() == pytest.approx([-0.35, -0.15, -0.15, -0.35])
    summary = transfer.gap_summary(gaps)
    assert summary.columns == [
        "test_source",
        "in_distribution",
        "this_target",
        "this_target_gap",
        "other_targets",
        "other_targets_gap",
    ]
    assert summary["test_source"].to_list() == ["cdl", "nccm"]
    assert summary.row(0)[1:] == pytest.approx((0.95, 0.6, -0.35, 0.8, -0.15))
    assert summary.row(1)[1:] == pytest.approx((0.85, 0.5, -0.35, 0.7, -0.15))


def test_gap_without_reference_is_null(table: pl.DataFrame) -> None:
    gaps = transfer.gap_to_in_distribution(table, "ssl4eo", "ood", 0, "oa", reference_k=0)  # id never ran at k=0
    assert gaps.height == 4
    assert gaps["id_value"].null_count() == 4
    assert gaps["gap"].null_count() == 4


def test_gap_summary_means_other_targets_and_misses_own_model() -> None:
    gaps = pl.DataFrame(
        {
            "target_source": ["a", "b", "c", "a", "b"],
            "test_source": ["a", "a", "a", "b", "b"],
            "value": [0.9, 0.5, 0.6, 0.3, 0.4],
            "id_value": [0.9, 0.9, 0.9, 0.8, 0.8],
        }
    )
    summary = transfer.gap_summary(gaps.with_columns(gap=pl.col("value") - pl.col("id_value")))
    assert summary.row(0) == pytest.approx(("a", 0.9, 0.9, 0.0, 0.55, -0.35))
    test_b = summary.row(1, named=True)
    assert test_b["this_target"] == pytest.approx(0.4)
    assert test_b["other_targets"] == pytest.approx(0.3)
    assert test_b["other_targets_gap"] == pytest.approx(-0.5)
    only_own = transfer.gap_summary(gaps.filter(pl.col("target_source") == pl.col("test_source")))
    assert only_own["other_targets"].to_list() == [None, None]
    assert only_own["other_targets_gap"].to_list() == [None, None]


def test_learning_curves_mean_over_sources(table: pl.DataFrame) -> None:
    curves = transfer.learning_curves(table, "id", "oa")
    assert curves.columns == ["backbone", "k", "value", "sources"]
    assert curves.select("backbone", "k", "sources").rows() == [
        ("satlas", 10, 2),
        ("ssl4eo", 10, 2),
        ("ssl4eo", 100, 2),
    ]
    # satlas cdl ran twice (0.7, 0.8): its mean 0.75 weighs as one source beside nccm's 0.6
    assert curves["value"].to_list() == pytest.approx([0.675, 0.85, 0.9])


def test_learning_curves_one_source_and_nan(table: pl.DataFrame) -> None:
    curves = transfer.learning_curves(table, "id", "oa", source="nccm")
    assert curves.rows() == [("satlas", 10, 0.6, 1), ("ssl4eo", 10, 0.8, 1), ("ssl4eo", 100, 0.85, 1)]
    ood = transfer.learning_curves(table, "ood", "oa")
    assert ood.rows() == [("ssl4eo", 0, pytest.approx(0.55), 2)]
    rice = transfer.learning_curves(table, "id", "recall_rice")
    assert rice.rows() == [("ssl4eo", 10, 0.6, 1)]  # cdl's NaN recall is neither a value nor a source


def test_class_recall_nan_becomes_null(table: pl.DataFrame) -> None:
    recall = transfer.class_recall(table, "ssl4eo", "id", 10)
    assert recall.columns == ["test_source", "class", "recall"]
    assert recall.rows() == [
        ("cdl", "maize", 0.9),
        ("cdl", "rice", None),
        ("nccm", "maize", 0.7),
        ("nccm", "rice", 0.6),
    ]
    assert transfer.class_recall(table, "satlas", "id", 10).height == 0


def test_provenance(table: pl.DataFrame) -> None:
    assert transfer.provenance(table) == {"crosswalk_set": ["paper", "toolkit"], "random_init": ["satlas"]}
    pretrained = table.filter(pl.col("backbone") == "ssl4eo")
    assert transfer.provenance(pretrained)["random_init"] == []


def make_compared() -> pl.DataFrame:
    """A comparison as the report writes it: two metrics, one backbone, some numbers without ours."""
    rows = [  # protocol, target, k, metric, origin, theirs, ours, runs, crosswalk set, weights
        ("ood+k", "cdl", 10, "oa", "sheet", 77.34, 80.0, 1, "paper", "pretrained"),
        ("ood", "cdl", 0, "oa", "sheet", 74.51, 70.0, 1, "paper", "pretrained"),
        ("ood", "cdl", 0, "oa", "plot", 75.0, 70.0, 1, "paper", "pretrained"),
        ("id", "nccm", 10, "oa", "sheet", 54.91, None, 0, None, None),
        ("id", "cdl", 10, "oa", "sheet", 58.89, 60.89, 2, "paper,toolkit", "pretrained,random"),
        ("id", "cdl", 10, "miou", "sheet", 30.0, None, 0, None, None),
        ("pretrain-finetune", "cdl", 10, "oa", "sheet", 10.0, 11.0, 1, "paper", "pretrained"),
    ]
    return pl.DataFrame(
        [
            {
                "protocol": p, "backbone": "ssl4eo", "target_source": t, "k": k, "metric": m, "origin": o,
                "theirs_pct": theirs, "ours_pct": ours, "difference_pct": None if ours is None else ours - theirs,
                "runs": runs, "crosswalk_set": cw, "weights": w,
            }
            for p, t, k, m, o, theirs, ours, runs, cw, w in rows
        ],
        schema_overrides={"k": pl.Int64, "ours_pct": pl.Float64, "difference_pct": pl.Float64, "runs": pl.Int64},
    )  # fmt: skip


def test_reference_choices() -> None:
    compared = make_compared()
    assert transfer.reference_metrics(compared) == ["oa", "miou"]  # headline order
    assert transfer.reference_backbones(compared) == ["ssl4eo"]


def test_reference_rows_in_the_studys_order() -> None:
    compared = make_compared()
    rows = transfer.reference_rows(compared, "ssl4eo", "oa", ran_only=False)
    assert list(rows.columns) == list(transfer.REFERENCE_SHOWN)
    assert rows.select("protocol", "target_source", "k", "origin").rows() == [
        ("id", "cdl", 10, "sheet"),
        ("id", "nccm", 10, "sheet"),
        ("ood", "cdl", 0, "plot"),
        ("ood", "cdl", 0, "sheet"),
        ("ood+k", "cdl", 10, "sheet"),
        ("pretrain-finetune", "cdl", 10, "sheet"),  # beyond the study's protocols: last
    ]
    ran = transfer.reference_rows(compared, "ssl4eo", "oa", ran_only=True)
    assert ran.height == 5 and ran["ours_pct"].null_count() == 0
    assert transfer.reference_rows(compared, "ssl4eo", "miou", ran_only=True).is_empty()


def test_reference_summary_means_differences_over_the_numbers_we_ran() -> None:
    found = transfer.reference_summary(make_compared(), "ssl4eo", "oa")
    differences = [80.0 - 77.34, 70.0 - 74.51, 70.0 - 75.0, 60.89 - 58.89, 11.0 - 10.0]
    assert (found.published, found.beside) == (6, 5)
    assert found.mean_difference == pytest.approx(sum(differences) / 5)
    assert found.mean_abs_difference == pytest.approx(sum(abs(d) for d in differences) / 5)
    assert found.crosswalk_sets == ["paper", "toolkit"] and found.random_init is True
    none = transfer.reference_summary(make_compared(), "ssl4eo", "miou")
    assert (none.published, none.beside, none.mean_difference, none.crosswalk_sets) == (1, 0, None, [])
    assert none.random_init is False
