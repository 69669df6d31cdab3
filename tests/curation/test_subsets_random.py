"""The `subsets` stage's random, unblocked test set (split `test_random`), on the small manifests of test_subsets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from curation.core.failures import failures
from curation.core.params import load_section
from curation.core.schemas import subsets_schema
from curation.publish.config import PublishParams
from curation.publish.stage import _chosen
from curation.subsets import random_test
from curation.subsets import stage as subsets
from curation.subsets.study_lists import list_name, read_list
from tests.curation.test_subsets import (
    CLASSES,
    ROOT,
    make_manifest,
    published_world,
    run_stage,
    sets_of,
    stage_error,
    write_project,
)

STUDY_NAMES = {"cdl": "cdl_2023", "nccm": "nccm_2019"}


def outputs(tmp: Path, out: str = "subsets") -> tuple[pl.DataFrame, dict[str, Any]]:
    folder = tmp / out
    return pl.read_parquet(folder / "subsets.parquet"), json.loads((folder / "leakage_audit.json").read_text())


def test_each_source_gets_a_random_test_set_outside_every_other_set_and_beside_training(tmp_path: Path) -> None:
    manifest = make_manifest()
    report = run_stage(tmp_path, write_project(tmp_path, manifest, random_test_size=8))
    frame, audit = outputs(tmp_path)
    assert failures(frame, subsets_schema(nested=True)) == []
    for source, study in STUDY_NAMES.items():
        sets = sets_of(frame, source)
        drawn, train, test = sets[("test_random", 8)], sets[("train", 20)], sets[("test", 8)]
        assert len(drawn) == 8 and not drawn & train and not drawn & test
        assert drawn <= set(manifest.filter(pl.col("source") == source)["chip_id"])
        listed = read_list(tmp_path / "subsets" / "lists" / list_name(study, "test_random", 8))
        assert set(listed) == drawn and len(listed) == 8
        entry = report["sources"][source]
        assert entry["sizes"]["test_random"] == {"nominal": 8, "actual": 8}
        assert entry["random_test_pool"] == entry["chips"] - 20 - 8  # every chip in no training or test set
        assert entry["sets"]["test_random"]["chips"] == 8
        unblocked = audit["sources"][source]["test_random"]
        assert unblocked["deliberately_unblocked"] is True and unblocked["shared_chips"] == 0
        assert unblocked["chips"] == 8 and unblocked["buffer_m"] == 640.0
        assert unblocked["within_buffer_of_train"] > 0  # what a blocked test set keeps out, and the point here
        assert unblocked["min_distance_to_train_m"] < 640.0
        assert audit["sources"][source]["clean"] is True  # beside training by design: not flagged as leakage
    assert audit["clean"] is True


def test_the_random_set_leaves_the_blocked_selection_as_it_was(tmp_path: Path) -> None:
    manifest = make_manifest(seed=4)
    run_stage(tmp_path, write_project(tmp_path, manifest, random_test_size=0), out="none", report="none.json")
    run_stage(tmp_path, write_project(tmp_path, manifest, random_test_size=8), out="some", report="some.json")
    without, _ = outputs(tmp_path, "none")
    with_random, _ = outputs(tmp_path, "some")
    assert with_random.filter(pl.col("split") != "test_random").rows() == without.rows()


def test_random_test_size_0_writes_no_random_set(tmp_path: Path) -> None:
    report = run_stage(tmp_path, write_project(tmp_path, make_manifest(), random_test_size=0))
    frame, audit = outputs(tmp_path)
    assert set(frame["split"]) == {"train", "test"}
    assert not list((tmp_path / "subsets" / "lists").glob("*test_random*"))
    for source in STUDY_NAMES:
        assert "test_random" not in report["sources"][source]["sizes"]
        assert "random_test_pool" not in report["sources"][source]
        assert "test_random" not in audit["sources"][source]


def test_the_random_set_is_deterministic_and_follows_the_seed(tmp_path: Path) -> None:
    manifest = make_manifest(seed=3)
    params = write_project(tmp_path, manifest, random_test_size=8)
    run_stage(tmp_path, params, out="first", report="first.json")
    manifest.sample(fraction=1.0, shuffle=True, seed=7).write_parquet(tmp_path / "manifest.parquet")
    run_stage(tmp_path, params, out="second", report="second.json")
    first = sorted(p.relative_to(tmp_path / "first") for p in (tmp_path / "first").rglob("*") if p.is_file())
    assert len(first) == 13  # manifest, audit, 2 sources x 5 lists, the owner marker
    for name in first:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
    assert (tmp_path / "first.json").read_bytes() == (tmp_path / "second.json").read_bytes()
    run_stage(tmp_path, write_project(tmp_path, manifest, random_test_size=8, seed=1), out="other", report="o.json")
    other, _ = outputs(tmp_path, "other")
    again, _ = outputs(tmp_path, "first")
    for source in STUDY_NAMES:
        assert sets_of(other, source)[("test_random", 8)] != sets_of(again, source)[("test_random", 8)]


def test_a_random_pool_too_small_fails_naming_the_param(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_project(tmp_path, make_manifest(chips={"cdl": 40, "nccm": 90}), random_test_size=30)
    err = stage_error(tmp_path, params, capsys)
    assert "cannot make the subsets (1 problem)" in err  # nccm has 62 chips left: enough
    assert (
        "subsets: pool size: source 'cdl' has 12 chips outside every training and test set, "
        "30-chip random test set needs 30" in err
    )
    assert "Fix: lower subsets.random_test_size or set subsets.allow_smaller: true" in err
    assert not (tmp_path / "subsets").exists() and not (tmp_path / "report.json").exists()


def test_allow_smaller_gives_the_whole_random_pool_and_keeps_the_nominal_size(tmp_path: Path) -> None:
    manifest = make_manifest(chips={"cdl": 40, "nccm": 90})
    report = run_stage(tmp_path, write_project(tmp_path, manifest, random_test_size=30, allow_smaller=True))
    frame, _ = outputs(tmp_path)
    cdl = report["sources"]["cdl"]
    assert cdl["sizes"]["test_random"] == {"nominal": 30, "actual": 12} and cdl["random_test_pool"] == 12
    assert (
        "allow_smaller: the 30-chip random test set has the 12 chips outside every training and test set"
        in (cdl["notes"])
    )
    sets = sets_of(frame, "cdl")
    everything = set(manifest.filter(pl.col("source") == "cdl")["chip_id"])
    assert sets[("test_random", 30)] == everything - sets[("train", 20)] - sets[("test", 8)]
    assert len(sets_of(frame, "nccm")[("test_random", 30)]) == 30


def test_published_mode_draws_from_the_chips_the_lists_do_not_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = make_manifest(seed=2)
    folder, chosen = published_world(tmp_path, manifest)
    params = write_project(tmp_path, manifest, published=str(folder), published_revision="first", random_test_size=8)
    report = run_stage(tmp_path, params)
    frame, audit = outputs(tmp_path)
    assert failures(frame, subsets_schema(nested=False)) == []
    for source in STUDY_NAMES:
        used = {c for ids in chosen[source].values() for c in ids}
        drawn = sets_of(frame, source)[("test_random", 8)]
        assert len(drawn) == 8 and not drawn & used
        assert drawn <= set(manifest.filter(pl.col("source") == source)["chip_id"])
        entry = report["sources"][source]
        assert entry["mode"] == "published" and entry["random_test_pool"] == entry["chips"] - len(used)
        assert audit["sources"][source]["test_random"]["shared_chips"] == 0
    big = write_project(tmp_path, manifest, published=str(folder), published_revision="first", random_test_size=100)
    err = stage_error(tmp_path, big, capsys)
    assert "cannot make the subsets (2 problems)" in err
    assert "source 'cdl' has 88 chips outside the published lists, 100-chip random test set needs 100" in err
    assert "source 'nccm' has 58 chips outside the published lists" in err


def test_the_schema_keeps_the_random_set_apart_from_training_and_test() -> None:
    rows = [("a", "cdl", "train", 4), ("b", "cdl", "test", 8), ("c", "cdl", "test_random", 8)]
    frame = pl.DataFrame(rows, schema=["chip_id", "source", "split", "size"], orient="row")
    assert failures(frame, subsets_schema(nested=False)) == []
    for other in ("train", "test"):
        broken = pl.concat([frame, pl.DataFrame([("c", "cdl", other, 4)], schema=frame.schema, orient="row")])
        rules = {f.rule for f in failures(broken, subsets_schema(nested=False))}
        assert rules == {"random test disjoint from training and test"}, other
    elsewhere = pl.concat([frame, pl.DataFrame([("c", "nccm", "train", 4)], schema=frame.schema, orient="row")])
    assert failures(elsewhere, subsets_schema(nested=False)) == []  # another source's chip of the same id
    unknown = frame.with_columns(pl.lit("test_blocked").alias("split"))
    assert failures(unknown, subsets_schema(nested=False)) != []


def test_a_random_chip_shared_with_training_fails_the_audit() -> None:
    manifest = make_manifest(chips={"cdl": 30}).sort("chip_id")
    chips = subsets.source_chips(manifest, CLASSES, 0.01)
    index = np.arange
    sets = subsets.Sets(index(0, 4), {4: index(4, 8)}, np.array([7, 9, 10], dtype=np.int64))
    entry, leak = subsets.leakage(chips, sets, 640.0, True)
    assert entry["test_random"]["shared_chips"] == 1 and entry["clean"] is False
    assert leak is not None and f"1 random test chip(s) also in training or the test set: {chips.ids[7]}" in leak
    entry, leak = subsets.leakage(chips, subsets.Sets(sets.test, sets.train, index(20, 23)), 0.0, False)
    assert entry["test_random"]["shared_chips"] == 0 and "test_random" in entry and (leak is None) == entry["clean"]


def test_the_draw_is_uniform_over_the_unused_rows_and_its_prefixes_nest() -> None:
    used = [np.array([0, 1, 2], dtype=np.int64), np.array([5, 6], dtype=np.int64)]
    small = random_test.draw(20, used, 4, 0, "cdl")
    large = random_test.draw(20, used, 10, 0, "cdl")
    assert small.pool.tolist() == [3, 4, *range(7, 20)]
    assert large.chips[:4].tolist() == small.chips.tolist() and len(set(large.chips.tolist())) == 10
    assert not set(large.chips.tolist()) & {0, 1, 2, 5, 6}
    assert random_test.draw(20, used, 4, 0, "nccm").chips.tolist() != small.chips.tolist()
    counts = np.zeros(20, dtype=np.int64)
    for seed in range(400):
        counts[random_test.draw(20, used, 3, seed, "cdl").chips] += 1
    assert counts[[0, 1, 2, 5, 6]].sum() == 0
    assert counts[small.pool].min() > 40 and counts[small.pool].max() < 125  # 80 each on average (15 of 1200)


def test_releases_leave_the_random_set_out() -> None:
    publish = load_section(PublishParams, ROOT / "params.yaml", whole_file=False)
    size = publish.train_sizes[0]  # a random set of a released training size must still stay out
    rows = [(f"t{k}", "cdl", "train", k) for k in publish.train_sizes]
    rows += [("b", "cdl", "test", 8), ("c", "cdl", "test_random", size)]
    frame = pl.DataFrame(rows, schema=["chip_id", "source", "split", "size"], orient="row")
    chosen = _chosen(frame, publish, "subsets.parquet")
    assert chosen["split"].to_list() == ["test", *["train"] * len(publish.train_sizes)]
