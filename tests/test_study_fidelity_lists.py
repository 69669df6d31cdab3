"""The study profile's lists, crosswalk set and reference table (docs/study-fidelity.md, sections 5, 8 and the table).

Each assertion is a row of the fidelity doc: the study's value in `profiles/study.yaml`, ours in `params.yaml`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.core.params import load_section
from curation.core.reference import read_reference
from curation.core.registry import source_info, source_names
from curation.core.shared import SharedParams
from curation.subsets.config import SubsetsParams
from curation.subsets.study_lists import FINAL_DIR, list_name, read_list, read_published
from training.config import ReportParams

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "profiles" / "study.yaml"
OURS = ROOT / "params.yaml"
CORRECTED = ROOT / "profiles" / "study-corrected.yaml"
LISTS = Path("reference/seed-splits")
TABLE = Path("reference/study_results_v1.csv")


def test_the_study_profile_uses_the_paper_crosswalk_set_and_ours_the_toolkit() -> None:
    assert load_section(SharedParams, STUDY, whole_file=False).crosswalk_set == "paper"
    assert load_section(SharedParams, OURS, whole_file=False).crosswalk_set == "toolkit"


def test_the_study_profile_uses_the_studys_final_lists() -> None:
    study = load_section(SubsetsParams, STUDY, whole_file=False)
    assert study.published == LISTS and study.published_revision == "final"
    assert study.train_sizes == (10, 100, 900) and study.test_size == 100  # the study's list sizes
    finals = sorted(p.name for p in (ROOT / LISTS / FINAL_DIR).iterdir())
    replaced = [source_info(s).study_name for s in source_names() if s != "agrifieldnet"]
    assert finals == sorted(list_name(name, "train", 10) for name in replaced)


def test_every_source_reads_the_study_profiles_lists() -> None:
    """The final 10-chip lists lie inside the 900 and outside the 100: read, not nested, AgriFieldNet's as first."""
    study = load_section(SubsetsParams, STUDY, whole_file=False)
    assert study.published is not None
    folder = ROOT / study.published
    for source in source_names():
        name = source_info(source).study_name
        lists = {k: read_list(folder / list_name(name, "train", k)) for k in (10, 100, 900)}
        known = {*read_list(folder / list_name(name, "test", 100)), *lists[900], *lists[10]}
        found, problems = read_published(
            folder, source, name, study.train_sizes, study.test_size, known, study.published_revision
        )
        assert problems == [] and found is not None and found.nested is False, source
        if source == "agrifieldnet":
            assert found.train[10] == lists[10]  # never replaced
        else:
            assert found.files["10"] == str(folder / FINAL_DIR / list_name(name, "train", 10))
            assert set(found.train[10]) <= set(lists[900]) and not set(found.train[10]) & set(lists[100])


def test_ours_select_our_own_sets() -> None:
    ours = load_section(SubsetsParams, OURS, whole_file=False)
    assert ours.published is None and ours.published_revision == "final"


@pytest.mark.parametrize("profile", [STUDY, OURS], ids=["study", "ours"])
def test_the_report_sets_the_studys_published_table_beside_ours(profile: Path) -> None:
    reference = load_section(ReportParams, profile, whole_file=False).reference
    assert reference == TABLE
    assert read_reference(ROOT / reference, source_names()).height == 203


def test_the_corrected_profile_keeps_the_studys_chips_with_our_crosswalk_set() -> None:
    subsets = load_section(SubsetsParams, CORRECTED, whole_file=False)
    assert subsets.published == LISTS and subsets.published_revision == "final"  # the same chips as the study
    assert load_section(SharedParams, CORRECTED, whole_file=False).crosswalk_set == "toolkit"
