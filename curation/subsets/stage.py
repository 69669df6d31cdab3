"""The `subsets` stage: per source, a spatially blocked test set and nested, stratified training sets.

With `subsets.random_test_size`, also a random test set drawn without blocks from the chips left over (split
`test_random`, `curation.subsets.random_test`), to measure the bias a random split hides.

Or, with `subsets.published`, the study's own lists (`study_lists`), which need not be nested: the subsets manifest
is then checked without the nesting rule and the report says `nested: false`; each set is one (split, size) group.

Each source's chips are footprints in one metric frame (`curation.subsets.frames`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curation.core.artifacts import LEAKAGE_AUDIT, SUBSET_LISTS, SUBSETS_TABLE, Artifacts
from curation.core.errors import Problem, ProblemsError, shorten
from curation.core.failures import Words, problems_of
from curation.core.io import atomic_write_json, atomic_write_parquet, stage_output
from curation.core.legends import load_set
from curation.core.params import load_section
from curation.core.registry import source_info
from curation.core.runner import run_stage
from curation.core.schemas import TEST_RANDOM, manifest_schema, subsets_schema
from curation.core.shared import SharedParams
from curation.subsets import random_test, splits
from curation.subsets.config import SubsetsParams
from curation.subsets.frames import IGNORE, Sets, SourceChips, source_chips
from curation.subsets.splits import Index, classes_in, names_of, reasons
from curation.subsets.study_lists import list_name, read_published, search_folders, write_list

STAGE = "subsets"


def read_manifest(path: Path, classes: list[str], sources: list[str]) -> pl.DataFrame:
    """The chip manifest, validated: one error lists every broken rule (grouped, with example rows)."""
    if not path.is_file():
        problem = Problem(str(path), "file exists", "no such file", "run the chips stage first or pass --manifest")
        raise ProblemsError("cannot read the chip manifest", [problem])
    manifest = pl.read_parquet(path)
    words = Words(str(path), "rebuild it with the chips stage", grouped=True)
    problems = problems_of(manifest, manifest_schema(classes, sources), words)
    if problems:
        raise ProblemsError("chip manifest is invalid", problems)
    return manifest


SIZE_KEYS = {"train": "train_sizes", "test": "test_size", TEST_RANDOM: "random_test_size"}
SET_WORDS = {"train": "training", "test": "test", TEST_RANDOM: "random test"}


def _shortfall(source: str, split: str, size: int, have: int, where: str) -> Problem:
    return Problem(
        STAGE,
        "pool size",
        f"source '{source}' has {have} chips {where}, {size}-chip {SET_WORDS[split]} set needs {size}",
        f"lower subsets.{SIZE_KEYS[split]} or set subsets.allow_smaller: true",
    )


def _sized(
    source: str, wanted: list[tuple[str, int, int, str]], allow_smaller: bool
) -> tuple[list[Problem], list[str]]:
    """Sets short of their size, each (split, size, chips there are, where): problems, or notes with allow_smaller."""
    problems: list[Problem] = []
    notes: list[str] = []
    for split, size, have, where in wanted:
        if have < size and not allow_smaller:
            problems.append(_shortfall(source, split, size, have, where))
        elif have < size:
            notes.append(f"allow_smaller: the {size}-chip {SET_WORDS[split]} set has the {have} chips {where}")
    return problems, notes


def _with_random(
    chips: SourceChips, sets: Sets, params: SubsetsParams, where: str
) -> tuple[Sets, random_test.Drawn | None, list[Problem], list[str]]:
    """The sets with the random test set drawn from the chips in none of them (unchanged when its size is 0)."""
    if params.random_test_size == 0:
        return sets, None, [], []
    used = [sets.test, *sets.train.values()]
    drawn = random_test.draw(len(chips.ids), used, params.random_test_size, params.seed, chips.source)
    wanted = [(TEST_RANDOM, params.random_test_size, len(drawn.pool), where)]
    problems, notes = _sized(chips.source, wanted, params.allow_smaller)
    return Sets(sets.test, sets.train, drawn.chips), drawn, problems, notes


def _random_why(chips: SourceChips, drawn: random_test.Drawn, classes: list[str]) -> dict[str, str]:
    """Why a class is missing from the random test set: absent from its pool, else not drawn (it is not stratified)."""
    layers = [
        (classes_in(chips.presence), "absent from the source"),
        (classes_in(chips.presence[drawn.pool]), "absent from the chips outside every training and test set"),
    ]
    return reasons(classes, layers, f"not drawn: {len(drawn.chips)} chips drawn at random, not stratified")


def _too_small(what: str, n_classes: int, cover: int, actual: int) -> str:
    return f"set too small: covering the {n_classes} classes of {what} takes {cover} chips, it has {actual}"


def _named(sets: Sets, params: SubsetsParams) -> list[tuple[str, int, Index]]:
    """Every set as (split, nominal size, rows): test, the training sets, then the random test set if any."""
    named = [("test", params.test_size, sets.test), *(("train", k, idx) for k, idx in sets.train.items())]
    return named + ([] if sets.test_random is None else [(TEST_RANDOM, params.random_test_size, sets.test_random)])


def _sets_report(
    chips: SourceChips,
    sets: Sets,
    params: SubsetsParams,
    classes: list[str],
    why: Callable[[str, Index], dict[str, str]],
) -> dict[str, Any]:
    """Each set described (`why(split, idx)` says why a class is missing), with its nominal and actual size."""
    described = {
        f"train_{k}" if split == "train" else split: {
            "size": k,
            **splits.describe(chips.presence, chips.pixels, idx, classes, why(split, idx), IGNORE),
        }
        for split, k, idx in _named(sets, params)
    }
    return {
        "classes_in_source": names_of(classes_in(chips.presence), classes),
        "sizes": {name: {"nominal": d["size"], "actual": d["chips"]} for name, d in described.items()},
        "sets": described,
    }


def choose(chips: SourceChips, params: SubsetsParams, classes: list[str]) -> tuple[Sets, dict[str, Any], list[Problem]]:
    """Select one source's sets and describe them; shortfalls are problems unless `allow_smaller`."""
    rng = splits.rng_for(params.seed, chips.source)
    sel = splits.select(chips.quads, chips.presence, params.test_size, params.block_m, params.buffer_m, rng)
    pool = len(sel.train_order)
    wanted = [("test", params.test_size, len(sel.test), "in the source")]  # test blocks take all blocks if needed
    wanted += [("train", k, pool, "after blocking and buffering") for k in params.train_sizes]
    problems, notes = _sized(chips.source, wanted, params.allow_smaller)
    sets = Sets(sel.test, {k: sel.train_order[:k] for k in params.train_sizes})
    sets, drawn, short, more = _with_random(chips, sets, params, "outside every training and test set")
    problems, notes = problems + short, notes + more
    absent = (classes_in(chips.presence), "absent from the source")
    blocks = classes_in(chips.presence[sel.test_block_chips])
    in_pool = classes_in(chips.presence[sel.train_order])

    def why(split: str, idx: Index) -> dict[str, str]:
        if split == TEST_RANDOM and drawn is not None:
            return _random_why(chips, drawn, classes)
        if split == "test":
            last = _too_small("the test blocks", int(blocks.sum()), sel.test_cover, len(idx))
            return reasons(classes, [absent, (blocks, "absent from the test blocks")], last)
        last = _too_small("the pool", int(in_pool.sum()), sel.train_cover, len(idx))
        return reasons(classes, [absent, (in_pool, "absent from the training pool: in test blocks or buffer")], last)

    report = {
        "mode": "selected",
        "frame": chips.frame,
        "chips": len(chips.ids),
        "blocks": sel.blocks,
        "test_blocks": sel.test_blocks,
        "test_block_chips": len(sel.test_block_chips),
        "unused_test_block_chips": len(sel.test_block_chips) - len(sel.test),
        "excluded_by_buffer": sel.excluded,
        "pool": pool,
        "classes_in_pool": names_of(in_pool, classes),
        **({} if drawn is None else {"random_test_pool": len(drawn.pool)}),
        "notes": notes,
        **_sets_report(chips, sets, params, classes, why),
    }
    return sets, report, problems


def from_lists(
    chips: SourceChips, params: SubsetsParams, classes: list[str], folder: Path
) -> tuple[Sets | None, dict[str, Any], list[Problem]]:
    """One source's sets from the study's published lists, with their quirks as notes."""
    known = set(chips.ids.to_list())
    study = source_info(chips.source).study_name
    found, problems = read_published(
        folder, chips.source, study, params.train_sizes, params.test_size, known, params.published_revision
    )
    if found is None:
        return None, {}, problems
    row = {chip: i for i, chip in enumerate(chips.ids.to_list())}
    listed = Sets(
        np.array([row[c] for c in found.test], dtype=np.int64),
        {k: np.array([row[c] for c in ids], dtype=np.int64) for k, ids in found.train.items()},
    )
    sets, drawn, short, notes = _with_random(chips, listed, params, "outside the published lists")
    in_source = (classes_in(chips.presence), "absent from the source")

    def why(split: str, _: Index) -> dict[str, str]:
        if split == TEST_RANDOM and drawn is not None:
            return _random_why(chips, drawn, classes)
        return reasons(classes, [in_source], "not in the list")

    report = {
        "mode": "published",
        "revision": params.published_revision,
        "frame": chips.frame,
        "chips": len(chips.ids),
        "files": found.files,
        "nested": found.nested,
        **({} if drawn is None else {"random_test_pool": len(drawn.pool)}),
        "notes": found.quirks + notes,
        **_sets_report(chips, sets, params, classes, why),
    }
    return sets, report, problems + short


def leakage(chips: SourceChips, sets: Sets, buffer_m: float, enforce: bool) -> tuple[dict[str, Any], str | None]:
    """A source's audit entry, and what is wrong when it is not clean (`enforce`: the buffer is a rule, not a note)."""
    train = np.unique(np.concatenate([*sets.train.values(), np.empty(0, dtype=np.int64)]))
    shared = np.intersect1d(train, sets.test)
    found = splits.audit(chips.quads[train], chips.quads[sets.test], buffer_m if enforce else 0.0)
    unblocked: dict[str, Any] = {}
    random_leak = None
    if sets.test_random is not None:  # deliberately unblocked: listed with its distances, never held to the buffer
        unblocked[TEST_RANDOM], random_leak = random_test.audit_entry(
            chips.ids, chips.quads, train, sets.test, sets.test_random, buffer_m
        )
    clean = len(shared) == 0 and found.overlaps == 0 and found.offending == 0 and random_leak is None

    def names(train_at: int, test_at: int) -> list[str]:
        return [chips.ids[int(train[train_at])], chips.ids[int(sets.test[test_at])]]

    entry = {
        "train": len(train),
        "test": len(sets.test),
        "shared_chips": len(shared),
        "overlaps": found.overlaps,
        "min_distance_m": found.min_distance,
        "closest_pair": None if found.closest is None else names(*found.closest),
        "buffer_m": buffer_m,
        "buffer_enforced": enforce,
        "clean": clean,
        **unblocked,
    }
    if clean:
        return entry, None
    closer = found.offending - found.overlaps
    parts = [] if random_leak is None else [random_leak]
    if len(shared):
        parts.append(f"{len(shared)} chip(s) in both test and training: {shorten(chips.ids.gather(shared).to_list())}")
    if found.overlaps:
        parts.append(f"{found.overlaps} overlapping train/test footprint pair(s)")
    if closer:
        parts.append(f"{closer} pair(s) closer than the {buffer_m:g} m buffer")
    pairs = ", ".join(f"{'/'.join(names(i, j))} {d:.1f} m" for i, j, d in found.worst)
    closest = f"; closest pairs (train/test): {pairs}" if pairs else ""
    return entry, f"source '{chips.source}': {', '.join(parts)}{closest}"


@dataclass(frozen=True)
class Plan:
    """Everything the stage writes, computed before anything is written."""

    frame: pl.DataFrame  # the subsets manifest
    lists: dict[str, list[str]]  # file name -> chip ids in selection order
    audit: dict[str, Any]
    report: dict[str, Any]


def plan(manifest: pl.DataFrame, params: SubsetsParams, classes: list[str]) -> Plan:
    """Select (or read) every source's sets, audit them and validate the subsets manifest; no file is written."""
    problems: list[Problem] = []
    audits: dict[str, Any] = {}
    reports: dict[str, Any] = {}
    leaks: list[str] = []
    columns: dict[str, list[Any]] = {"chip_id": [], "source": [], "split": [], "size": []}
    lists: dict[str, list[str]] = {}
    nested = True
    if params.published is not None and not params.published.is_dir():
        fix = "point subsets.published at the study's lists (reference/seed-splits) or set it to null"
        raise ProblemsError("cannot make the subsets", [Problem(str(params.published), "folder exists", "none", fix)])
    if params.published is not None:
        _, missing = search_folders(params.published, params.published_revision)
        if missing:
            raise ProblemsError("cannot make the subsets", missing)
    for source in sorted(manifest["source"].unique().to_list()):
        rows = manifest.filter(pl.col("source") == source).sort("chip_id")
        chips = source_chips(rows, classes, params.min_class_share)
        sets: Sets | None
        if params.published is None:
            sets, report, found = choose(chips, params, classes)
        else:
            sets, report, found = from_lists(chips, params, classes, params.published)
            nested = nested and bool(report.get("nested", True))
        problems += found
        if sets is None:
            continue
        audits[chips.source], leak = leakage(chips, sets, params.buffer_m, params.published is None)
        leaks += [leak] if leak else []
        closest = audits[chips.source]["min_distance_m"]
        if params.published is not None and closest is not None and closest < params.buffer_m:
            report["notes"].append(f"train-test distance {closest:.1f} m is under the {params.buffer_m:g} m buffer")
        reports[chips.source] = report
        study = source_info(chips.source).study_name
        for split, size, idx in _named(sets, params):
            ids = chips.ids.gather(idx).to_list()
            lists[list_name(study, split, size)] = ids
            for key, value in (("chip_id", ids), ("source", [chips.source]), ("split", [split]), ("size", [size])):
                columns[key] += value if key == "chip_id" else value * len(ids)
    if problems:
        raise ProblemsError("cannot make the subsets", problems)
    if leaks:
        fix = (
            "this is a bug in the selection: report it with the manifest and params"
            if params.published is None
            else "take the named chips out of the published lists, or set subsets.published: null to select"
        )
        raise ProblemsError("leakage audit failed", [Problem(STAGE, "leakage audit", leak, fix) for leak in leaks])
    schema = {"chip_id": pl.String, "source": pl.String, "split": pl.String, "size": pl.Int64}
    frame = pl.DataFrame(columns, schema=schema).sort("source", "split", "size", "chip_id")
    fix = "report this bug" if params.published is None else "fix the published lists"
    broken = problems_of(frame, subsets_schema(nested=nested), Words(STAGE, fix, grouped=True))
    if broken:
        raise ProblemsError("the subsets manifest breaks its schema", broken)
    settings = params.model_dump(mode="json", exclude={"report"})  # the selection's settings; not where this goes
    summary = {"stage": STAGE, "params": settings, "classes": classes, "sources": reports}
    return Plan(frame, lists, {"sources": audits, "clean": True}, summary)


def write(result: Plan, out: Path) -> None:
    """Write the stage's folder atomically: a failed run leaves the previous output in place."""
    with stage_output(out) as tmp:
        atomic_write_parquet(tmp / SUBSETS_TABLE, result.frame)
        for name, ids in result.lists.items():
            write_list(tmp / SUBSET_LISTS / name, ids)
        atomic_write_json(tmp / LEAKAGE_AUDIT, result.audit)


def run(params: SubsetsParams, shared: SharedParams, manifest: Path, out: Path, report: Path) -> Plan:
    """The stage: read and validate the manifest, plan, write the outputs, then the report."""
    classes = list(load_set(shared.legends_dir, shared.crosswalk_set).taxonomy.names)
    result = plan(read_manifest(manifest, classes, sorted(shared.sources)), params, classes)
    write(result, out)
    atomic_write_json(report, result.report)
    return result


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, default=None, help="chips manifest (default: from params chips.out)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: params subsets.out)")
    parser.add_argument("--report", type=Path, default=None, help="stage report (default: params subsets.report)")


def _run(args: argparse.Namespace) -> str:
    artifacts = Artifacts.load(args.params)
    params = load_section(SubsetsParams, args.params)
    shared = load_section(SharedParams, args.params)
    manifest = args.manifest or artifacts.manifest.path
    run(params, shared, manifest, args.out or params.out, args.report or artifacts.subsets_report.path)
    return ""


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point: write params `subsets.out` and `subsets.report` (or --out and --report)."""
    run_stage("subsets", _run, argv, _options)


if __name__ == "__main__":
    main()
