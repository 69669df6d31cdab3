"""The study's chip lists: names, the tolerant reader, our writer, published sets and their quirks."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.subsets.study_lists import (
    FINAL_DIR,
    accepted_names,
    list_bytes,
    list_name,
    read_list,
    read_published,
    write_list,
)

ROOT = Path(__file__).resolve().parents[2]
SEED_SPLITS = ROOT / "reference" / "seed-splits"  # the project's copy (study profile: subsets.published)
SHARED_SPLITS = ROOT.parent / "shared" / "reference" / "seed-splits"
STUDY_NAMES = ["agrifieldnet_2021", "cdl_2023", "eurocrops", "nccm_2019", "sact_2017", "sas_2021"]
REPLACED = [name for name in STUDY_NAMES if name != "agrifieldnet_2021"]  # AgriFieldNet's 10 list was never replaced


@pytest.fixture(scope="module")
def seed_splits() -> Path:
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


def test_the_project_copy_of_the_lists_is_the_studys() -> None:
    files = sorted(p.relative_to(SEED_SPLITS).as_posix() for p in SEED_SPLITS.rglob("*.csv"))
    assert len(files) == 4 * len(STUDY_NAMES) + len(REPLACED)
    assert [f for f in files if f.startswith(f"{FINAL_DIR}/")] == [
        f"{FINAL_DIR}/{list_name(name, 'train', 10)}" for name in REPLACED
    ]
    if SHARED_SPLITS.is_dir():
        for name in files:
            assert (SEED_SPLITS / name).read_bytes() == (SHARED_SPLITS / name).read_bytes(), name


def test_the_studys_final_lists_replace_its_first_ten_chip_lists(seed_splits: Path) -> None:
    for study in STUDY_NAMES:
        lists = {k: read_list(seed_splits / list_name(study, "train", k)) for k in (10, 100, 900)}
        test = read_list(seed_splits / list_name(study, "test", 100))
        final_file = seed_splits / FINAL_DIR / list_name(study, "train", 10)
        known = set(test) | set(lists[900]) | set(lists[10])
        found, problems = read_published(seed_splits, "x", study, (10, 100, 900), 100, known, "final")
        assert problems == [] and found is not None and found.nested is False
        assert found.train[100] == lists[100] and found.train[900] == lists[900] and found.test == test
        if study in REPLACED:
            assert found.files["10"] == str(final_file)
            assert found.train[10] == read_list(final_file) != lists[10]
            assert set(found.train[10]) <= set(lists[900]) and not set(found.train[10]) & set(lists[100])
            assert found.quirks == [
                "the 10-chip training list is not nested in the 100-chip list: 10 of its 10 chips lie outside it "
                "(as published)"
            ]
        else:
            assert not final_file.exists() and found.train[10] == lists[10]
            assert found.quirks[0] == (
                f"{FINAL_DIR}/ has no 10-chip list for '{study}': the first-published "
                f"{list_name(study, 'train', 10)} is used (the study replaced every 10-chip list but AgriFieldNet's)"
            )
        first, _ = read_published(seed_splits, "x", study, (10, 100, 900), 100, known, "first")
        assert first is not None and first.train[10] == lists[10]  # the first-published lists stay available


def test_final_lists_without_their_folder_are_a_problem_naming_the_setting(tmp_path: Path) -> None:
    write(tmp_path, "test", ["a", "b"])
    write(tmp_path, "1", ["c"])
    found, problems = read_published(tmp_path, "cdl", "demo", (1,), 2, {"a", "b", "c"}, "final")
    assert found is None and len(problems) == 1
    message = str(problems[0])
    assert message.startswith(f"{tmp_path / FINAL_DIR}: final lists exist (subsets.published_revision: final)")
    assert "or set subsets.published_revision: first" in message


def test_a_final_list_replaces_the_first_one_of_the_same_name(tmp_path: Path) -> None:
    known = [f"c{i}" for i in range(20)]
    write(tmp_path, "test", known[:4])
    write(tmp_path, "10", known[4:14])
    write(tmp_path, "20", known[4:20])
    write(tmp_path / FINAL_DIR, "10", known[10:20])  # inside the 20, not the first 10
    found, problems = read_published(tmp_path, "cdl", "demo", (10, 20), 4, set(known), "final")
    assert problems == [] and found is not None and found.nested is True
    assert found.train[10] == known[10:20] and found.files["10"] == str(
        tmp_path / FINAL_DIR / "sentinel2_demo_subsampled_10.csv"
    )
    assert found.quirks == ["sentinel2_demo_subsampled_20.csv lists 16 chips for the 20-chip train set"]
