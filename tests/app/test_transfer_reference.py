"""The Transfer page's "beside the study's published table" section, on a small hand-built project (no `dvc repro`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from curation.core.io import DEMO_MARKER
from curation.core.reference import VS_REFERENCE, read_reference
from curation.core.registry import source_names
from tests.app.conftest import OpenPage
from tests.app.test_queries_transfer import make_transfer
from training.report import beside_reference

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = """protocol,backbone,target_source,k,metric,value_pct,origin
ood,ssl4eo,cdl,0,oa,74.51,sheet
id,ssl4eo,cdl,10,oa,58.89,sheet
id,ssl4eo,nccm,100,oa,84.87,sheet
id,ssl4eo,cdl,900,oa,85.2,sheet
id,ssl4eo,cdl,10,miou,30.0,sheet
"""
NOT_THE_STUDY = "The demo world is not the study's data"


def project(root: Path, demo: bool, reference: str | None = REFERENCE) -> Path:
    """params.yaml and legends of the repository, a hand-built transfer table and its comparison."""
    shutil.copy2(ROOT / "params.yaml", root / "params.yaml")
    shutil.copytree(ROOT / "curation" / "legends", root / "curation" / "legends")
    (root / "metrics").mkdir()
    transfer = make_transfer()
    transfer.write_parquet(root / "metrics" / "transfer.parquet")
    published = None
    if reference is not None:
        (root / "reference.csv").write_text(reference, encoding="utf-8")
        published = read_reference(root / "reference.csv", source_names())
    beside_reference(transfer, published).write_parquet(root / "metrics" / VS_REFERENCE)
    if demo:  # params.yaml's raw root is the demo world's folder
        (root / "data" / "demo").mkdir(parents=True)
        marker = {"seed": 0, "chips_per_source": 28, "chip_px": 32}
        (root / "data" / "demo" / DEMO_MARKER).write_text(json.dumps(marker), encoding="utf-8")
    return root


def shown(app: AppTest) -> pl.DataFrame:
    return next(pl.from_pandas(d.value) for d in app.dataframe if {"theirs_pct", "ours_pct"} <= set(d.value.columns))


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


def test_the_demo_says_it_is_not_the_studys_data(tmp_path: Path, open_page: OpenPage) -> None:
    app = open_page(project(tmp_path, demo=True), "transfer")
    warnings = [w.value for w in app.warning]
    assert any("Synthetic data" in w for w in warnings)  # the app's banner, on every page
    (note,) = [w for w in warnings if NOT_THE_STUDY in w]
    assert "28 generated chips of 32 px per source" in note and "profiles/study.yaml" in note
    assert metrics(app)["Published numbers"] == "4" and metrics(app)["With ours beside"] == "3"
    table = shown(app)  # oa of ssl4eo, the numbers we ran, in the study's order
    assert table.select("protocol", "target_source", "k").rows() == [
        ("id", "cdl", 10),
        ("id", "nccm", 100),
        ("ood", "cdl", 0),
    ]
    assert table["theirs_pct"].to_list() == [58.89, 84.87, 74.51]
    assert table["ours_pct"].to_list() == pytest.approx([90.0, 85.0, 60.0])  # the table's fractions, in percent
    assert table["difference_pct"].to_list() == pytest.approx([90.0 - 58.89, 85.0 - 84.87, 60.0 - 74.51])
    mean = ((90.0 - 58.89) + (85.0 - 84.87) + (60.0 - 74.51)) / 3
    assert metrics(app)["Mean difference (points)"] == f"{mean:+.2f}"
    assert any("crosswalk set toolkit" in c.value for c in app.caption)  # not the study's `paper` mapping

    app.toggle[0].set_value(False).run()
    assert shown(app).height == 4 and shown(app)["ours_pct"].null_count() == 1  # k = 900: we ran none
    next(s for s in app.selectbox if s.label == "Published metric").set_value("miou")
    app.run()
    assert shown(app)["ours_pct"].to_list() == pytest.approx([50.0])


def test_real_data_gets_no_demo_note(tmp_path: Path, open_page: OpenPage) -> None:
    app = open_page(project(tmp_path, demo=False), "transfer")
    assert not any(NOT_THE_STUDY in w.value or "Synthetic data" in w.value for w in app.warning)
    assert shown(app).height == 3


def test_without_a_reference_the_page_says_how_to_set_one(tmp_path: Path, open_page: OpenPage) -> None:
    app = open_page(project(tmp_path, demo=True, reference=None), "transfer")
    assert any("`report.reference` is null" in i.value for i in app.info)
    assert not any(NOT_THE_STUDY in w.value for w in app.warning)
    assert (
        app.title[0].value == "Transfer" and len(app.get("vega_lite_chart")) == 3
    )  # the rest still renders (no recall rows: no cell charts)


def test_a_report_without_the_comparison_names_the_stage(tmp_path: Path, open_page: OpenPage) -> None:
    root = project(tmp_path, demo=False)
    (root / "metrics" / VS_REFERENCE).unlink()
    app = open_page(root, "transfer")
    assert any(f"`{root / 'metrics' / VS_REFERENCE}` is missing" in i.value for i in app.info)
    assert any("`uv run dvc repro report`" in i.value for i in app.info)


def test_an_unreadable_comparison_names_the_file_and_the_rest_renders(tmp_path: Path, open_page: OpenPage) -> None:
    root = project(tmp_path, demo=False)
    path = root / "metrics" / VS_REFERENCE
    path.write_bytes(path.read_bytes()[:40])
    app = open_page(root, "transfer")
    assert any(f"`{path}` cannot be read" in e.value and "--single-item report" in e.value for e in app.error)
    assert not any("is missing" in i.value and VS_REFERENCE in i.value for i in app.info)
    assert len(app.get("vega_lite_chart")) == 3  # heatmap, gaps, learning curves (the table has no recall rows)
