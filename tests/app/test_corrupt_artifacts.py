"""An artifact that exists but cannot be read: each page names the file and the stage to re-run, and renders the rest.

Every test truncates or overwrites one file of its own copy of the tiny demo's artifacts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.artifacts import Artifacts
from curation.core.io import DEMO_MARKER
from tests.app.conftest import OpenPage

MANIFEST = "data/chips/manifest.parquet"
SUBSETS = "data/subsets/subsets.parquet"
HISTOGRAMS = "reports/validation/label_histograms.parquet"
SUMMARY = "reports/validation/summary.json"
FAILURES = "reports/validation/failures.parquet"
CROSSWALKS = "reports/crosswalks.json"
TRANSFER = "metrics/transfer.parquet"


@pytest.fixture
def project(demo_artifacts: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(demo_artifacts, copy)
    return copy


def truncate(path: Path) -> None:
    """Cut a file in half, as a disk filling up or an interrupted copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def errors(app: AppTest) -> list[str]:
    return [e.value for e in app.error]


def named(app: AppTest, path: Path, stage: str) -> bool:
    """An st.error naming the file, that it cannot be read, and the command re-running its stage."""
    return any(
        f"`{path}` cannot be read" in m and f"`uv run dvc repro --force --single-item {stage}`" in m
        for m in errors(app)
    )


def metrics(app: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in app.metric}


@pytest.mark.parametrize(
    ("page", "artifact", "stage"),
    [
        ("overview", MANIFEST, "chips"),
        ("balance", MANIFEST, "chips"),
        ("chips", MANIFEST, "chips"),
        ("transfer", TRANSFER, "report"),
    ],
)
def test_a_page_without_its_main_artifact_names_it_and_stops(
    project: Path, open_page: OpenPage, page: str, artifact: str, stage: str
) -> None:
    truncate(project / artifact)
    app = open_page(project, page)  # asserts no exception
    assert named(app, project / artifact, stage), errors(app)
    assert app.title[0].value  # the page's title rendered before it stopped
    assert not app.metric


def test_overview_with_unreadable_subsets_shows_the_chips(project: Path, open_page: OpenPage) -> None:
    truncate(project / SUBSETS)
    app = open_page(project, "overview")
    assert named(app, project / SUBSETS, "subsets")
    assert metrics(app)["Chips"] == str(6 * 28) and metrics(app)["Subsets per source"] == "0"
    assert not any("No subsets yet" in i.value for i in app.info)  # it exists: the error says what is wrong
    assert len(app.get("deck_gl_json_chart")) == 2  # the sources on the world, one source's chips


def test_balance_with_unreadable_histograms_shows_the_harmonized_shares(project: Path, open_page: OpenPage) -> None:
    truncate(project / HISTOGRAMS)
    app = open_page(project, "balance")
    assert named(app, project / HISTOGRAMS, "validate")
    assert len(app.get("vega_lite_chart")) == 1  # every source and subset; the charts from histograms left out
    assert not any("is missing" in i.value for i in app.info)


def test_legends_with_unreadable_reports_shows_the_crosswalk(project: Path, open_page: OpenPage) -> None:
    truncate(project / HISTOGRAMS)
    (project / CROSSWALKS).write_text('{"active_set": "toolkit", "differences": {"paper": [')
    app = open_page(project, "legends")
    assert named(app, project / HISTOGRAMS, "validate") and named(app, project / CROSSWALKS, "crosswalks")
    assert metrics(app)["Codes in the data"] == "-" and int(metrics(app)["Codes"]) > 0
    assert not app.info  # neither file is missing: no "run stage X" notes


def test_chips_gallery_with_one_unreadable_chip_shows_the_others(project: Path, open_page: OpenPage) -> None:
    first = sorted((project / "data" / "chips" / "agrifieldnet" / "labels").glob("*.tif"))[0]
    first.write_bytes(b"II*\x00 truncated")
    app = open_page(project, "chips")
    assert named(app, first, "chips"), errors(app)
    assert len(errors(app)) == 1 and len(app.get("image")) == 11  # twelve cards on the page, one without a picture


def test_validation_with_an_unreadable_summary_shows_the_failures(project: Path, open_page: OpenPage) -> None:
    truncate(project / SUMMARY)
    app = open_page(project, "validation")
    assert named(app, project / SUMMARY, "validate")
    assert [s.value for s in app.subheader] == ["Failures"] and app.dataframe


def test_validation_with_unreadable_failures_shows_the_summary(project: Path, open_page: OpenPage) -> None:
    truncate(project / FAILURES)
    app = open_page(project, "validation")
    assert named(app, project / FAILURES, "validate")
    assert metrics(app)["Result"] == "pass" and metrics(app)["Chips checked"] == str(6 * 28)


def test_validation_with_both_unreadable_stops_after_naming_both(project: Path, open_page: OpenPage) -> None:
    truncate(project / SUMMARY)
    (project / FAILURES).unlink()
    app = open_page(project, "validation")
    assert named(app, project / SUMMARY, "validate")
    assert any(f"`{project / FAILURES}` is missing" in w.value for w in app.warning)
    assert not app.subheader


def test_an_unreadable_demo_marker_is_named_and_every_page_still_runs(project: Path, open_page: OpenPage) -> None:
    marker = Artifacts.from_root(project).raw_root / DEMO_MARKER  # where params.yaml puts the demo world
    truncate(marker)
    for page in ("overview", "balance", "legends", "chips", "validation", "transfer"):
        app = open_page(project, page)
        assert named(app, marker, "demo"), page
        assert app.title[0].value and (app.dataframe or app.get("image")), page  # and the page's content
