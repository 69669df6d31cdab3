"""From params and the subsets table to concrete runs: which chips each phase trains and validates on.

A matrix entry (protocol, backbone, source, size; each a value or `all`) expands to the grid's valid cells: a
protocol that trains on the target source takes k > 0 of its chips, one that never does runs once with k = 0.
Validation chips are held out of each phase's training chips by spatial block, so they are not neighbours.
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
from training.backbones import MATRIX_BACKBONES
from training.config import ALL, PhaseParams, TrainParams

EARTH_M_PER_DEG = 111_320.0


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


def _axis(entry: str | int, values: Sequence[str | int], axis: str) -> list[str | int]:
    if entry == ALL:
        return list(values)
    if entry not in values:
        close = difflib.get_close_matches(str(entry), [str(v) for v in values], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        rule = f"train.matrix.{axis} lists known values"
        raise ParamsError(
            f"unknown {axis} in the matrix",
            [Problem("params.yaml", rule, repr(entry), f"{hint}use one of {list(values)}")],
        )
    return [entry]


def set_ids(subsets: pl.DataFrame, source: str, split: str, size: int) -> list[str]:
    """The chips of one subset (sorted), or an error naming the size the subsets stage lacks."""
    ids = subsets.filter((pl.col("source") == source) & (pl.col("split") == split) & (pl.col("size") == size))
    if ids.is_empty():
        sizes = sorted(subsets.filter(pl.col("source") == source)["size"].unique().to_list())
        raise ParamsError(
            "no such subset",
            [
                Problem(
                    f"{SUBSETS_TABLE} (params subsets.out)",
                    "train.sizes and train.others_size are subsets.train_sizes",
                    f"{source} {split} size {size} (has {sizes})",
                    "list sizes the subsets stage builds",
                )
            ],
        )
    return sorted(ids["chip_id"].to_list())


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
) -> PhasePlan:
    sources: list[str] = []
    train: list[str] = []
    val: list[str] = []
    for pool in phase.train_on:
        picked = [(target, k)] if pool == "target" else [(s, params.others_size) for s in others]
        for source, size in picked:
            ids = set_ids(subsets, source, "train", size)
            held = hold_out(ids, manifest, params.val_share, params.val_block_m, params.seed)
            sources.append(source)
            train += [c for c in ids if c not in held]
            val += sorted(held)
    return PhasePlan(phase.train_on, tuple(sorted(sources)), tuple(train), tuple(val), phase.epochs)


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
    targets = _axis(source, list(sources), "source")
    sizes = _axis(size if size == ALL else int(size), [0, *params.sizes], "size")
    plans = []
    for name in protocols:
        phases = params.protocols[str(name)]
        uses_target = any("target" in phase.train_on for phase in phases)
        for bb in backbones:
            for target in targets:
                others = [s for s in sources if s != target]
                for k in sizes:
                    if uses_target != (int(k) > 0):
                        continue
                    built = tuple(_phase(p, str(target), int(k), others, params, subsets, manifest) for p in phases)
                    run_id = f"{name}-{bb}-{target}-k{k}"
                    plans.append(RunPlan(run_id, str(name), str(bb), str(target), int(k), built))
    return plans
