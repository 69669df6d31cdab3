"""The study's chip lists: names, the tolerant reader, our writer, published sets and their quirks."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.subsets.study_lists import accepted_names, list_bytes, list_name, read_list, read_published, write_list

ROOT = Path(__file__).resolve().parents[2]
SEED_SPLITS = ROOT.parent / "shared" / "reference" / "seed-splits"
STUDY_NAMES = ["agrifieldnet_2021", "cdl_2023", "eurocrops", "nccm_2019", "sact_2017", "sas_2021"]


@pytest.fixture(scope="module")
def seed_splits() -> Path:
    if not SEED_SPLITS.is_dir():
        pytest.skip(f"the study's lists are not at {SEED_SPLITS} (they live in ../shared/reference beside the project)")
    return SEED_SPLITS


def test_names_follow_the_study() -> None:
    assert list_name("cdl_2023", "test", 100) == "sentinel2_cdl_2023_subsampled_test.csv"
    assert list_name("cdl_2023", "train", 100) == "sentinel2_cdl_2023_subsampled_100_train.csv"
    assert list_name("sact_2017", "train", 900) == "sentinel2_sact_2017_subsampled_900.csv"
    assert accepted_names("x", "train", 10) == ["sentinel2_x_subsampled_10.csv", "sentinel2_x_subsampled_10_train.csv"]
    assert accepted_names("x", "train", 100) == [
        "sentinel2_x_subsampled_100_train.csv",
        "sentinel2_x_subsampled_100.csv",
    ]


def test_the_reader_tolerates_header_bom_line_ends_and_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbfTest\r\n2023_1_2.tif\r\n\r\n 2023_3_4.tif \n2023_5_6\n")
    assert read_list(path) == ["2023_1_2", "2023_3_4", "2023_5_6"]
    path.write_text("2023_1_2.tif\n2023_3_4.tif\n")  # no header row
    assert read_list(path) == ["2023_1_2", "2023_3_4"]


def test_written_lists_are_in_the_study_format_and_read_back(tmp_path: Path) -> None:
    ids = ["2023_-3961_-1511", "2017_819", "2021_ref_agrifieldnet_competition_v1_labels_train_f2eb7"]
    assert list_bytes(ids[:1]) == b"Test\r\n2023_-3961_-1511.tif\r\n"
    write_list(tmp_path / "lists" / "x.csv", ids)
    assert read_list(tmp_path / "lists" / "x.csv") == ids


def write(folder: Path, name: str, ids: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"sentinel2_demo_subsampled_{name}.csv").write_bytes(list_bytes(ids))


def test_published_sets_report_non_nesting_repeats_and_short_lists(tmp_path: Path) -> None:
    known = [f"c{i}" for i in range(40)]
    write(tmp_path, "test", known[:8])
    write(tmp_path, "4_train", [known[30], known[31], known[30], known[32], known[33]])  # a repeat, outside the 10
    write(tmp_path, "10", known[10:20])
    write(tmp_path, "20", known[10:29])  # one short
    found, problems = read_published(tmp_path, "cdl", "demo", (4, 10, 20), 8, set(known))
    assert problems == [] and found is not None
    assert found.test == known[:8] and found.train[4] == known[30:34] and found.train[20] == known[10:29]
    assert found.nested is False
    assert found.files["4"].endswith("sentinel2_demo_subsampled_4_train.csv")
    quirks = " | ".join(found.quirks)
    assert "sentinel2_demo_subsampled_4_train.csv repeats 1 chip(s)" in quirks
    assert "sentinel2_demo_subsampled_20.csv lists 19 chips for the 20-chip train set" in quirks
    assert "the 4-chip training list is not nested in the 10-chip list: 4 of its 4 chips lie outside it" in quirks
    assert "10-chip training list is not nested" not in quirks


def test_missing_files_and_unknown_ids_are_problems_naming_them(tmp_path: Path) -> None:
    write(tmp_path, "test", ["a", "b"])
    found, problems = read_published(tmp_path, "cdl", "demo", (1,), 2, {"a", "b"})
    assert found is None and len(problems) == 1
    assert str(problems[0]).startswith(f"{tmp_path}: published list exists: source 'cdl': no 1 list")
    assert "sentinel2_demo_subsampled_1.csv or sentinel2_demo_subsampled_1_train.csv" in str(problems[0])
    write(tmp_path, "1", ["a", *(f"ghost{i}" for i in range(8))])
    found, problems = read_published(tmp_path, "cdl", "demo", (1,), 2, {"a", "b"})
    assert found is None and len(problems) == 1
    message = str(problems[0])
    assert "8 of 9 chips are not in the manifest: ghost0, ghost1, ghost2, ghost3, ghost4 (+3 more)" in message
    assert "subsets.published: null" in message


def test_the_studys_published_lists_read_with_their_known_quirks(seed_splits: Path) -> None:
    for study in STUDY_NAMES:
        lists = {k: read_list(seed_splits / list_name(study, "train", k)) for k in (10, 100, 900)}
        test = read_list(seed_splits / list_name(study, "test", 100))
        assert [len(lists[k]) for k in (10, 100, 900)] == [10, 100, 900] and len(test) == 100
        assert all(not chip.endswith(".tif") and chip != "Test" for chip in test + lists[900])
        assert set(lists[100]) <= set(lists[900]) and not set(test) & set(lists[900])
        assert len(set(lists[10]) - set(lists[100])) >= 8  # the 10-chip lists lie mostly outside the 100
        known = set(test) | set(lists[10]) | set(lists[900])
        found, problems = read_published(seed_splits, "x", study, (10, 100, 900), 100, known)
        assert problems == [] and found is not None and found.nested is False
        assert found.train[900] == lists[900] and found.test == test
        assert len(found.quirks) == 1 and found.quirks[0].startswith("the 10-chip training list is not nested")
