"""Semantic version rules of releases: which bump a change requires, and the guard in the publish stage."""

from __future__ import annotations

from typing import Any

import pytest

from curation.core.errors import ProblemsError
from curation.publish.config import PublishParams
from curation.publish.stage import check_version
from curation.publish.version import bump_of, next_version, required_bump

BASE: dict[str, Any] = {
    "crosswalks": "c1",
    "chips": {"cdl/a": "h1", "cdl/b": "h2", "nccm/c": "h3"},
    "subsets": {"cdl/a": ["train 4"], "cdl/b": ["test 4"], "nccm/c": ["train 4"]},
}


def changed(**parts: object) -> dict[str, Any]:
    return {**BASE, **parts}


def test_bump_levels_and_next_versions() -> None:
    assert bump_of("1.2.3", "2.0.0") == "major"
    assert bump_of("1.2.3", "1.3.0") == "minor"
    assert bump_of("1.2.3", "1.2.4") == "patch"
    assert bump_of("1.2.3", "1.2.3") is None and bump_of("1.2.3", "1.1.9") is None
    assert bump_of("1.9.0", "1.10.0") == "minor"  # numeric, not lexical
    assert [next_version("1.2.3", b) for b in ("major", "minor", "patch")] == ["2.0.0", "1.3.0", "1.2.4"]


def test_identical_data_is_a_patch() -> None:
    assert required_bump(BASE, changed()).bump == "patch"


@pytest.mark.parametrize(
    ("current", "reason"),
    [
        (changed(crosswalks="c2"), "the crosswalks changed"),
        (changed(chips={"cdl/a": "h1", "cdl/b": "h2"}), "1 released chip(s) are gone"),
        (changed(chips={**BASE["chips"], "cdl/a": "other"}), "1 chip(s) changed content"),
        (changed(subsets={**BASE["subsets"], "cdl/a": ["test 4"]}), "a re-split"),
    ],
)
def test_changed_crosswalks_content_or_splits_are_major(current: dict[str, Any], reason: str) -> None:
    change = required_bump(BASE, current)
    assert change.bump == "major"
    assert any(reason in r for r in change.reasons), change.reasons


def test_added_chips_or_new_subsets_are_minor() -> None:
    added = changed(chips={**BASE["chips"], "cdl/d": "h4"}, subsets={**BASE["subsets"], "cdl/d": ["train 4"]})
    assert required_bump(BASE, added).bump == "minor"
    larger = changed(subsets={**BASE["subsets"], "cdl/a": ["train 4", "train 10"]})  # a new, larger training set
    assert required_bump(BASE, larger).bump == "minor"


def params(version: str) -> PublishParams:
    return PublishParams(
        version=version,
        title="t",
        description="d",
        date="2026-11-25",
        licence="CC-BY-4.0",
        url=None,
        train_sizes=(4,),
        files="copy",
        tag_prefix="data-v",
        changelog={version: "x"},
        out="releases",
    )


def record(version: str, sums: str = "s1", fingerprints: dict[str, Any] = BASE) -> dict[str, Any]:
    return {"version": version, "tag": f"data-v{version}", "sums_sha256": sums, "fingerprints": fingerprints}


def test_guard_refuses_to_overwrite_a_published_version() -> None:
    published = {"1.0.0": record("1.0.0")}
    assert "identical" in check_version(params("1.0.0"), published, BASE, "s1", "params.yaml")
    with pytest.raises(ProblemsError, match="published versions are immutable") as error:
        check_version(params("1.0.0"), published, BASE, "s2", "params.yaml")
    assert "raise publish.version" in str(error.value)


def test_guard_asks_for_the_bump_the_changes_need() -> None:
    published = {"1.0.0": record("1.0.0"), "1.1.0": record("1.1.0")}
    with pytest.raises(ProblemsError, match=r"the crosswalks changed: a major version.*set publish.version to 2.0.0"):
        check_version(params("1.1.1"), published, changed(crosswalks="c2"), "s9", "params.yaml")
    assert "a major version after 1.1.0" in check_version(
        params("2.0.0"), published, changed(crosswalks="c2"), "s9", "p"
    )
    with pytest.raises(ProblemsError, match=r"set publish\.version to 1\.1\.1"):
        check_version(params("1.0.5"), published, BASE, "s9", "params.yaml")  # below the latest published
    assert "a patch version" in check_version(params("1.1.1"), published, BASE, "s9", "params.yaml")
    assert "first published version" in check_version(params("0.1.0"), {}, BASE, "s9", "params.yaml")
