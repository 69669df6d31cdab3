"""From params and the subsets table to concrete runs: which chips each phase trains and validates on.

A matrix entry (protocol, backbone, source, size; each a value or `all`) expands to the grid's valid cells: a
protocol that trains on the target source takes k > 0 of its chips, one that never does runs once with k = 0.
The `others` pool is the target's list of other sources (`train.others`), each with its set of `others_size`
chips or its whole training pool, optionally cut to one pixel budget as the study's balanced runs were
(`train.pixel_balance`). Validation chips are held out by spatial block (ours: no neighbour of a training chip
validates it) or at random over the phase (the study's `random_bbox_assignment`).
"""

from __future__ import annotations

import difflib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from curation.core.artifacts import SUBSETS_TABLE
from curation.core.errors import ParamsError, Problem
from curation.core.schemas import class_column
from training.backbones import MATRIX_BACKBONES, SPECTRAL
from training.config import ALL, BASE, OTHERS_DEFAULT, PhaseParams, TrainParams

EARTH_M_PER_DEG = 111_320.0
BALANCE_CLASSES = ("ignore", "other")  # the study's balance sorts on class 0, then class 5, fewest first


@dataclass(frozen=True)
class PhasePlan:
    """One phase: the chips it fits on and validates on, and for how long."""

    train_on: tuple[str, ...]  # target / others, as in params
    sources: tuple[str, ...]  # the sources those resolve to
    train_ids: tuple[str, ...]
    val_ids: tuple[str, ...]
    epochs: int


@dataclass(frozen=True)
class RunPlan:
    """One run of the grid."""

    run_id: str
    protocol: str
    backbone: str
    target: str
    k: int
    phases: tuple[PhasePlan, ...]
    seed: int | None = None  # the training seed of this repeat (None: the fit settings' seed)
    balance: str = BASE  # the class-balance strategy (train.balance) this repeat runs under

    @property
    def train_sources(self) -> tuple[str, ...]:
        """Every source a phase trained on, sorted."""
        return tuple(sorted({s for phase in self.phases for s in phase.sources}))

    def chip_ids(self) -> list[str]:
        """Every chip the run reads."""
        return sorted({c for phase in self.phases for c in (*phase.train_ids, *phase.val_ids)})


def entry_name(protocol: str, backbone: str, source: str, size: int | str) -> str:
    """The folder of one matrix entry under runs/ and evals/ (dvc.yaml builds the same name)."""
    return f"{protocol}_{backbone}_{source}_{size}"


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """The hint before an error's fix: the closest known value, or nothing when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _axis(entry: str | int, values: Sequence[str | int], axis: str) -> list[str | int]:
    if entry == ALL:
        return list(values)
    if entry not in values:
        hint = did_you_mean(str(entry), [str(v) for v in values])
        rule = f"train.matrix.{axis} lists known values"
        raise ParamsError(
            f"unknown {axis} in the matrix",
            [Problem("params.yaml", rule, repr(entry), f"{hint}use one of {list(values)}")],
        )
    return [entry]


def set_ids(subsets: pl.DataFrame, source: str, split: str, size: int | str) -> list[str]:
    """The chips of one subset (sorted), or an error naming the size the subsets stage lacks.

    Size `all` is a source's whole training pool: every chip of any of its training sets (the largest set when
    they are nested, their union when published lists are not). Test chips are never in it, so a model trained
    on the others is still scored on test chips it never saw.
    """
    rows = subsets.filter((pl.col("source") == source) & (pl.col("split") == split))
    ids = rows if size == ALL else rows.filter(pl.col("size") == size)
    if ids.is_empty():
        sizes = sorted(subsets.filter(pl.col("source") == source)["size"].unique().to_list())
        raise ParamsError(
            "no such subset",
            [
                Problem(
                    f"{SUBSETS_TABLE} (params subsets.out)",
                    "train.sizes and train.others_size are subsets.train_sizes (others_size may be `all`)",
                    f"{source} {split} size {size} (has {sizes})",
                    "list sizes the subsets stage builds",
                )
            ],
        )
    return sorted(set(ids["chip_id"].to_list()))


def targets_of(params: TrainParams, sources: Sequence[str]) -> list[str]:
    """The sources runs train for (`train.targets`), in `shared.sources` order; unknown names named."""
    if params.targets == ALL:
        return list(sources)
    unknown = [name for name in params.targets if name not in sources]
    if unknown:
        hint = did_you_mean(unknown[0], sources)
        rule = "train.targets lists sources of shared.sources"
        raise ParamsError(
            "unknown target source",
            [Problem("params.yaml", rule, repr(unknown[0]), f"{hint}use `all` or some of {list(sources)}")],
        )
    return [name for name in sources if name in params.targets]


def others_of(params: TrainParams, target: str, sources: Sequence[str]) -> list[str]:
    """The other sources a target's `others` pool draws from, in `shared.sources` order; unknown names named."""
    problems = []
    for key, listed in params.others.items():
        names = [key] if key != OTHERS_DEFAULT else []
        names += list(listed) if listed != ALL else []
        for name in names:
            if name not in sources:
                hint = did_you_mean(name, sources)
                value = f"others.{key}: {name!r}" if name != key else f"others key {key!r}"
                rule = "train.others names sources of shared.sources"
                problems.append(Problem("params.yaml", rule, value, f"{hint}use one of {list(sources)}"))
    if problems:
        raise ParamsError("unknown source in train.others", problems)
    listed = params.others.get(target, params.others[OTHERS_DEFAULT])
    chosen = [s for s in sources if s != target and (listed == ALL or s in listed)]
    if not chosen:
        key = target if target in params.others else OTHERS_DEFAULT
        raise ParamsError(
            "no other source",
            [
                Problem(
                    "params.yaml",
                    "train.others gives each target another source",
                    f"others.{key}: {listed}",
                    f"add `others.{target}`",
                )
            ],
        )
    return chosen


def balance_pixels(groups: Sequence[tuple[str, list[str]]], manifest: pl.DataFrame, seed: int) -> list[list[str]]:
    """The study's balanced pixel sampling: every other source cut to the labelled pixels of the smallest one.

    As `utils/balance_pixel_sample*.py` of the study: chips in random order (seeded here), sorted by their
    `ignore` pixels and then their `other` pixels, fewest first, taken until their labelled (not `ignore`) pixels
    reach the budget. The source with the fewest labelled pixels sets the budget and keeps every chip (South
    Africa's, in the study). So crop-rich chips fill each source's share and `other` no longer dominates.
    """
    wanted = [class_column(name) for name in BALANCE_CLASSES]
    missing = [c for c in (*wanted, "height", "width") if c not in manifest.columns]
    if missing:
        raise ParamsError(
            "pixel balance needs class pixel counts",
            [Problem("manifest.parquet", "has px_ignore, px_other, height, width", f"lacks {missing}", "re-run chips")],
        )
    counts = {
        chip: (ignore, other, area - ignore)
        for chip, ignore, other, area in manifest.select(
            "chip_id", *wanted, (pl.col("height") * pl.col("width")).alias("area")
        ).iter_rows()
    }
    totals = [sum(counts[c][2] for c in ids) for _, ids in groups]
    budget = min(totals, default=0)
    picked = []
    for (source, ids), total in zip(groups, totals, strict=True):
        if total <= budget:
            picked.append(list(ids))
            continue
        order = sorted(ids)
        random.Random(f"{seed}/{source}").shuffle(order)
        order.sort(key=lambda c: counts[c][:2])  # stable: ties keep the seeded random order
        chosen, labelled = [], 0
        for chip in order:
            chosen.append(chip)
            labelled += counts[chip][2]
            if labelled >= budget:
                break
        picked.append(sorted(chosen))
    return picked


def random_hold_out(chip_ids: Sequence[str], share: float, seed: int) -> set[str]:
    """Seeded random chips, floor(share x chips) of them, as torchgeo's `random_bbox_assignment` sizes a split."""
    count = math.floor(share * len(chip_ids))  # as torchgeo: floor of the float product, no rounding
    if count <= 0 or len(chip_ids) < 2:
        return set()
    return set(random.Random(seed).sample(sorted(chip_ids), count))


def hold_out(chip_ids: Sequence[str], manifest: pl.DataFrame, share: float, block_m: float, seed: int) -> set[str]:
    """Chips of whole spatial blocks, drawn at random until `share` of the chips is held out (never all of them)."""
    if share <= 0 or len(chip_ids) < 2:
        return set()
    rows = manifest.filter(pl.col("chip_id").is_in(list(chip_ids))).sort("chip_id")
    lat0 = math.radians(float(rows["lat"].mean()))  # type: ignore[arg-type]
    blocks: dict[tuple[int, int], list[str]] = {}
    for chip_id, lon, lat in rows.select("chip_id", "lon", "lat").iter_rows():
        x, y = lon * EARTH_M_PER_DEG * math.cos(lat0), lat * EARTH_M_PER_DEG
        blocks.setdefault((math.floor(x / block_m), math.floor(y / block_m)), []).append(chip_id)
    keys = sorted(blocks)
    random.Random(seed).shuffle(keys)
    wanted = max(1, round(share * len(chip_ids)))
    held: set[str] = set()
    for key in keys:
        if len(held) >= wanted:
            break
        if len(held) + len(blocks[key]) < len(chip_ids):
            held.update(blocks[key])
    return held


def _phase(
    phase: PhaseParams,
    target: str,
    k: int,
    others: Sequence[str],
    params: TrainParams,
    subsets: pl.DataFrame,
    manifest: pl.DataFrame,
    pixel_budget: bool = False,
) -> PhasePlan:
    groups: list[tuple[str, list[str]]] = []
    for pool in phase.train_on:
        if pool == "target":
            groups.append((target, set_ids(subsets, target, "train", k)))
            continue
        picked = [(s, set_ids(subsets, s, "train", params.others_size)) for s in others]
        if params.pixel_balance == "study" or pixel_budget:
            picked = list(zip(others, balance_pixels(picked, manifest, params.seed), strict=True))
        groups += picked
    train: list[str] = []
    val: list[str] = []
    if params.val_split == "random":
        every = [c for _, ids in groups for c in ids]
        held = random_hold_out(every, params.val_share, params.seed)
        train, val = [c for c in every if c not in held], [c for c in every if c in held]
    else:
        for _, ids in groups:
            held = hold_out(ids, manifest, params.val_share, params.val_block_m, params.seed)
            train += [c for c in ids if c not in held]
            val += sorted(held)
    sources = tuple(sorted(source for source, _ in groups))
    return PhasePlan(phase.train_on, sources, tuple(train), tuple(val), phase.epochs)


SPECTRAL_STRATEGIES = (BASE, "pixel-budget")
"""The spectral baseline samples pixels per class already and has no loss or chip draws to weigh: only the
pixel budget (a choice of chips) changes what it learns from."""


def strategies_of(params: TrainParams, protocol: str, backbone: str) -> list[str]:
    """The balance strategies a protocol's runs of a backbone repeat under (base always, first).

    Left out where a strategy would repeat base exactly: the pixel budget (cut on the others' pools) under a
    protocol that never trains on them, and the loss and chip strategies for the spectral baseline.
    """
    listed = params.balance.protocols
    if listed != ALL and protocol not in listed:
        return [BASE]
    strategies: list[str] = list(params.balance.strategies)
    if not any("others" in phase.train_on for phase in params.protocols[protocol]):
        strategies = [s for s in strategies if s != "pixel-budget"]
    return [s for s in strategies if s in SPECTRAL_STRATEGIES] if backbone == SPECTRAL else strategies


def run_name(protocol: str, backbone: str, target: str, k: int, seed: int, balance: str = BASE) -> str:
    """A run's id: base runs `<protocol>-<backbone>-<target>-k<k>-s<seed>`, others with `-<strategy>` before `-s`."""
    strategy = "" if balance == BASE else f"-{balance}"
    return f"{protocol}-{backbone}-{target}-k{k}{strategy}-s{seed}"


def plan_entry(
    params: TrainParams,
    sources: Sequence[str],
    subsets: pl.DataFrame,
    manifest: pl.DataFrame,
    entry: tuple[str, str, str, str | int],
) -> list[RunPlan]:
    """Every run of one matrix entry, in a fixed order."""
    protocol, backbone, source, size = entry
    protocols = _axis(protocol, list(params.protocols), "protocol")
    backbones = _axis(backbone, list(MATRIX_BACKBONES), "backbone")
    targets = _axis(source, targets_of(params, sources), "source")
    sizes = _axis(size if size == ALL else int(size), [0, *params.sizes], "size")
    plans = []
    for name in protocols:
        phases = params.protocols[str(name)]
        uses_target = any("target" in phase.train_on for phase in phases)
        for bb in backbones:
            for target in targets:
                others = others_of(params, str(target), sources)
                for k in sizes:
                    if uses_target != (int(k) > 0):
                        continue
                    for balance in strategies_of(params, str(name), str(bb)):
                        budget = balance == "pixel-budget"
                        built = tuple(
                            _phase(p, str(target), int(k), others, params, subsets, manifest, budget) for p in phases
                        )
                        for seed in params.seeds:  # the repeats share their chips: only training randomness differs
                            run_id = run_name(str(name), str(bb), str(target), int(k), seed, balance)
                            cell = (str(name), str(bb), str(target), int(k))
                            plans.append(RunPlan(run_id, *cell, built, seed, balance))
    return plans
