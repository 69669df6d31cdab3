"""The random test set of the `subsets` stage (split `test_random`): what a random split would have tested on.

A source's random test set is drawn uniformly, without blocks or buffer, from its chips in no training set and not
in the blocked test set (with `subsets.published`: the manifest chips its lists do not use), so its chips lie beside
training chips as a random split's do. One model scored on both test sets measures the optimistic bias that the
blocking removes. Its draw has its own random stream per (seed, source): the blocked selection is the same with or
without it, and a larger `random_test_size` extends the same ordering (the k-chip set is its first k).
The leakage audit lists it as deliberately unblocked: closeness to training chips is its point and is reported, not
flagged; only a chip shared with training or the blocked test set is an error.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from curation.core.errors import shorten
from curation.core.schemas import TEST_RANDOM
from curation.subsets import splits
from curation.subsets.splits import Index, Quads

STREAM = zlib.crc32(TEST_RANDOM.encode("utf-8"))  # a third seed word: apart from the blocked selection's stream
NOTE = "drawn at random without blocks or buffer, to measure the bias of a random split: not held apart from training"


def rng_for(seed: int, source: str) -> np.random.Generator:
    """The random test set's generator: per (seed, source), independent of the blocked selection's draws."""
    return np.random.default_rng([seed, zlib.crc32(source.encode("utf-8")), STREAM])


@dataclass(frozen=True)
class Drawn:
    """One source's random test set: indices into its rows (sorted by chip id)."""

    chips: Index  # in draw order, at most the nominal size
    pool: Index  # the chips it was drawn from, ascending


def draw(n_chips: int, used: Sequence[Index], size: int, seed: int, source: str) -> Drawn:
    """`size` chips (or the whole pool, when smaller) drawn uniformly from the rows in none of `used`."""
    taken = np.zeros(n_chips, dtype=np.bool_)
    for idx in used:
        taken[idx] = True
    pool = np.flatnonzero(~taken).astype(np.int64)
    order = rng_for(seed, source).permutation(len(pool))
    return Drawn(pool[order[:size]].astype(np.int64), pool)


def audit_entry(
    ids: pl.Series, quads: Quads, train: Index, test: Index, drawn: Index, buffer_m: float
) -> tuple[dict[str, Any], str | None]:
    """The random test set's audit entry (how near training it lies), and what is wrong when it shares chips."""
    shared = np.union1d(np.intersect1d(drawn, train), np.intersect1d(drawn, test))
    found = splits.audit(quads[train], quads[drawn], 0.0)
    beside = splits.near(quads[drawn], quads[train], buffer_m)
    closest = None if found.closest is None else [ids[int(train[found.closest[0]])], ids[int(drawn[found.closest[1]])]]
    entry = {
        "chips": len(drawn),
        "deliberately_unblocked": True,
        "note": NOTE,
        "shared_chips": len(shared),
        "overlaps_with_train": found.overlaps,
        "min_distance_to_train_m": found.min_distance,
        "closest_pair": closest,
        "within_buffer_of_train": int(beside.sum()),  # chips a blocked test set could not hold
        "buffer_m": buffer_m,
    }
    if len(shared) == 0:
        return entry, None
    return (
        entry,
        f"{len(shared)} random test chip(s) also in training or the test set: {shorten(ids.gather(shared).to_list())}",
    )
