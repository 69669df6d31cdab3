"""The Transfer page's cells: a recall of 0 is drawn apart from an absent class, for every model A and test set B;
a cell opens its recall and confusion matrix from a heatmap click, the selector or the address; CSV buttons."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import UnknownElement

from app import charts
from app.queries import cells as cq
from app.queries import transfer as q
from app.views.transfer_cell import CELL_KEY, PICK_KEY
from tests.app.conftest import OpenPage

CLASSES = ["maize", "soybean", "rice", "wheat", "other"]
CELL = "Cell (model built for → test source)"
TRANSFER = "metrics/transfer.parquet"


def chart_data(chart: UnknownElement) -> pl.DataFrame:
    """The rows a Vega-Lite chart of the page draws (its one named dataset)."""
    from streamlit import dataframe_util

    (dataset,) = chart.proto.datasets
    return pl.from_pandas(dataframe_util.convert_arrow_bytes_to_pandas_df(dataset.data.data))


def chart_titled(app: AppTest, start: str) -> UnknownElement:
    for chart in app.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        titles = [spec.get("title"), *[layer.get("title") for layer in spec.get("layer", [])]]
        if any(isinstance(t, str) and t.startswith(start) for t in titles):
            return chart
    raise AssertionError(f"no chart titled {start!r}")


def transfer_rows(metric: str, value: float) -> list[dict[str, object]]:
    base = {"protocol": "id", "backbone": "b", "target_source": "x", "k": 4, "run_id": "r"}
    return [{**base, "test_source": "y", "metric": metric, "value": value}]


def test_a_zero_recall_is_a_failure_and_a_nan_or_missing_recall_is_absent() -> None:
    rows = transfer_rows("recall_maize", 0.0) + transfer_rows("recall_rice", float("nan"))
    rows += transfer_rows("recall_soybean", 0.5) + transfer_rows("oa", 0.3)
    recall = cq.cell_recall(pl.DataFrame(rows), "b", "id", 4, ["maize", "soybean", "rice", "wheat"], ["x", "y"])
    by_class = {r["class"]: (r["status"], r["label"], r["recall"]) for r in recall.iter_rows(named=True)}
    assert by_class == {
        "maize": (cq.ZERO, "0", 0.0),
        "soybean": (cq.MEASURED, "0.5", 0.5),
        "rice": (cq.ABSENT, cq.ABSENT, None),  # NaN in the table: the test set lacks the class
        "wheat": (cq.ABSENT, cq.ABSENT, None),  # no row at all
    }
    assert cq.failures(recall).to_dicts() == [{"target_source": "x", "test_source": "y", "class": "maize"}]


def test_the_recall_chart_draws_zero_as_a_labelled_stub_and_names_absent_classes() -> None:
    rows = transfer_rows("recall_maize", 0.0) + transfer_rows("recall_rice", float("nan"))
    recall = cq.cell_recall(pl.DataFrame(rows), "b", "id", 4, ["maize", "rice"], ["x", "y"])
    spec = charts.class_recall(recall, {"maize": "#ffd300", "rice": "#00a8e2"}, ["maize", "rice"], "t").to_dict()
    layers = spec["spec"]["layer"]
    marks = [(layer["mark"]["type"], layer.get("transform", [{}])[0].get("filter")) for layer in layers]
    assert marks == [("bar", "datum.status == 'measured'"), ("tick", "datum.status == 'zero'"), ("text", None)]
    assert layers[2]["encoding"]["text"]["field"] == "label"
    data = pl.DataFrame(next(iter(spec["datasets"].values())))
    assert data.select("class", "label", "mark_y").rows() == [("maize", "0", 0.0), ("rice", "absent", 0.0)]
    assert spec["facet"]["column"]["field"] == "test_source"


def test_confusion_matrix_sums_the_runs_and_leaves_absent_classes_out() -> None:
    confusion = pl.DataFrame(
        {
            "run_id": ["s0", "s0", "s1", "s1", "other"],
            "test_source": ["y"] * 5,
            "target_class": ["maize", "maize", "maize", "soybean", "maize"],
            "predicted_class": ["maize", "soybean", "maize", "maize", "maize"],
            "pixels": [3, 1, 4, 2, 100],
        }
    )
    matrix = cq.confusion_matrix(confusion, ["s0", "s1"], "y", ["maize", "soybean", "rice"])
    assert matrix.select("target_class", "predicted_class", "pixels").rows() == [
        ("maize", "maize", 7), ("maize", "soybean", 1), ("maize", "rice", 0),
        ("soybean", "maize", 2), ("soybean", "soybean", 0), ("soybean", "rice", 0),
    ]  # fmt: skip
    assert matrix["share"].to_list()[:3] == [7 / 8, 1 / 8, 0.0]
    assert cq.absent_classes(matrix, ["maize", "soybean", "rice"]) == ["rice"]


@pytest.fixture
def zero_recall(demo_artifacts: Path, tmp_path: Path) -> Path:
    """The tiny artifacts with closp's id model for cdl finding no maize on nccm (recall 0 for both seeds)."""
    copy = tmp_path / "project"
    shutil.copytree(demo_artifacts, copy)
    table = pl.read_parquet(copy / TRANSFER)
    hit = (
        (pl.col("backbone") == "closp")
        & (pl.col("protocol") == "id")
        & (pl.col("test_source") == "nccm")
        & (pl.col("metric") == "recall_maize")
    )
    assert table.filter(hit).height > 0
    table.with_columns(value=pl.when(hit).then(0.0).otherwise(pl.col("value"))).write_parquet(copy / TRANSFER)
    return copy


def test_transfer_page_names_and_draws_a_zero_recall_apart_from_absent(zero_recall: Path, open_page: OpenPage) -> None:
    app = open_page(zero_recall, "transfer")  # closp, id, k = 4: the first choices
    assert any(m.value.startswith("**1 class(es) with a recall of 0**: maize in cdl → nccm") for m in app.markdown)
    drawn = chart_data(chart_titled(app, "Recall of closp's model built for cdl"))
    nccm = {r["class"]: r["label"] for r in drawn.filter(pl.col("test_source") == "nccm").iter_rows(named=True)}
    assert nccm["maize"] == "0"
    table = pl.read_parquet(zero_recall / TRANSFER).filter(
        pl.col("backbone") == "closp", pl.col("protocol") == "id", pl.col("balance") == "base"
    )
    for row in drawn.iter_rows(named=True):  # every cell of the model, not only its own test set
        values = table.filter(pl.col("test_source") == row["test_source"], pl.col("metric") == f"recall_{row['class']}")
        mean = values["value"].mean()
        if values.is_empty() or math.isnan(float(mean)):  # type: ignore[arg-type]
            assert row["label"] == "absent"
        else:
            assert row["recall"] == pytest.approx(mean)
    assert set(drawn["test_source"]) == set(table["test_source"]) and "absent" in set(drawn["label"])


def picked_cell(app: AppTest) -> str:
    return str(next(s for s in app.selectbox if s.label == CELL).value)


def test_a_cell_opens_from_the_address_the_heatmap_and_the_selector(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "transfer")
    assert picked_cell(app) == "cdl → cdl"  # the model on its own test set by default
    app.session_state[PICK_KEY] = {"selection": {"cell": [{"target_source": "cdl", "test_source": "eurocrops"}]}}
    app.run()
    assert picked_cell(app) == "cdl → eurocrops" and app.query_params == {"target": "cdl", "test": "eurocrops"}
    next(s for s in app.selectbox if s.label == CELL).set_value("cdl → nccm").run()  # the same click does not undo it
    assert picked_cell(app) == "cdl → nccm" and app.query_params["test"] == "nccm"

    linked = AppTest.from_file(str(Path(__file__).parents[2] / "app" / "streamlit_app.py"), default_timeout=60)
    linked.query_params.update({"target": "cdl", "test": "agrifieldnet"})
    linked.run().switch_page("views/transfer.py").run()
    assert not linked.exception and picked_cell(linked) == "cdl → agrifieldnet"
    assert linked.session_state[CELL_KEY] == "cdl → agrifieldnet"


def test_the_confusion_matrix_of_a_cell_matches_the_artifact(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "transfer")
    next(s for s in app.selectbox if s.label == CELL).set_value("cdl → nccm").run()
    transfer = pl.read_parquet(demo_artifacts / TRANSFER).filter(
        pl.col("backbone") == "closp", pl.col("protocol") == "id", pl.col("k") == 4, pl.col("balance") == "base"
    )
    runs = transfer["run_id"].unique().to_list()
    assert len(runs) == 2  # the tiny profile's two seeds
    expected = (
        pl.read_parquet(demo_artifacts / "metrics" / "confusion.parquet")
        .filter(pl.col("run_id").is_in(runs), pl.col("test_source") == "nccm")
        .group_by("target_class", "predicted_class")
        .agg(pl.col("pixels").sum())
    )
    drawn = chart_data(chart_titled(app, "cdl → nccm: closp, id, k = 4"))
    for row in expected.iter_rows(named=True):
        cell = drawn.filter(
            pl.col("target_class") == row["target_class"], pl.col("predicted_class") == row["predicted_class"]
        )
        assert cell["pixels"].item() == row["pixels"]
    assert drawn["pixels"].sum() == expected["pixels"].sum()
    absent = sorted(set(CLASSES) - set(expected["target_class"]))
    assert any(
        f"Not in nccm's test set: {', '.join(c for c in CLASSES if c in absent)}." in c.value for c in app.caption
    )


def test_every_transfer_table_has_a_visible_csv_button(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "transfer")
    labels = [b.proto.label for b in app.get("download_button")]
    for label in ("heatmap", "gaps", "learning curves", "recall", "confusion matrix", "intervals", "comparisons"):
        assert f"Download {label} CSV" in labels


def test_metric_codes_are_explained_and_the_k_axis_ticks_only_the_ks_run(
    demo_artifacts: Path, open_page: OpenPage
) -> None:
    app = open_page(demo_artifacts, "transfer")
    metric = next(s for s in app.selectbox if s.label == "Metric")
    assert "`aa_study`: average accuracy as the study computed it" in metric.proto.help
    assert any("`miou`: mean intersection over union" in c.value for c in app.caption)
    curves = q.learning_curves(pl.DataFrame(
        {"protocol": ["id"] * 4, "metric": ["oa"] * 4, "target_source": ["a"] * 4, "test_source": ["a"] * 4,
         "backbone": ["x", "x", "y", "y"], "k": [4, 20, 4, 20], "value": [0.1, 0.2, 0.1, 0.2]}
    ), "id", "oa")  # fmt: skip
    axis = charts.learning_curves(curves, "oa", "t").to_dict()["encoding"]["x"]
    assert axis["axis"]["values"] == [4, 20] and axis["axis"]["format"] == "d"
    assert q.identical_lines(curves) == [["x", "y"]]


def test_a_single_k_and_identical_curves_are_said_in_words(demo_artifacts: Path, open_page: OpenPage) -> None:
    app = open_page(demo_artifacts, "transfer")
    app = next(s for s in app.selectbox if s.label == "Protocol").set_value("ood").run()
    assert any("`ood` ran at one k only (k = 0): each backbone is one point" in c.value for c in app.caption)
