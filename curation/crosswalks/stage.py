"""Stage `crosswalks`: validate every configured crosswalk set and compare each with the active one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from curation.core.artifacts import Artifacts
from curation.core.io import atomic_write_json
from curation.core.legends import CrosswalkSet, check_sets, differences
from curation.core.params import load_section
from curation.core.runner import run_stage
from curation.core.shared import SharedParams
from curation.crosswalks.config import CrosswalksParams


def summary(crosswalk_set: CrosswalkSet) -> dict[str, Any]:
    """Per source: how many codes, and how many go to each class."""
    out: dict[str, Any] = {}
    for source, crosswalk in crosswalk_set.crosswalks.items():
        per_class = np.bincount(crosswalk.targets, minlength=crosswalk_set.taxonomy.size)
        out[source] = {
            "file": crosswalk.path,
            "match": crosswalk.match,
            "codes": len(crosswalk.codes),
            "codes_per_class": crosswalk_set.taxonomy.counts_by_name(per_class.astype(np.int64)),
        }
    return out


def report(shared: SharedParams, params: CrosswalksParams) -> dict[str, Any]:
    """Validate the configured sets and describe them, with the differences from the active set."""
    names = list(dict.fromkeys([shared.crosswalk_set, *params.sets]))
    sets = check_sets(shared.legends_dir, names)
    active = sets[shared.crosswalk_set]
    return {
        "active_set": active.name,
        "classes": [
            {"id": i, "name": n, "color": c}
            for i, n, c in zip(active.taxonomy.ids, active.taxonomy.names, active.taxonomy.colors, strict=True)
        ],
        "sets": {name: summary(s) for name, s in sets.items()},
        "differences": {name: differences(active, s) for name, s in sets.items() if name != active.name},
    }


def _run(args: argparse.Namespace) -> str:
    shared = load_section(SharedParams, args.params)
    params = load_section(CrosswalksParams, args.params)
    atomic_write_json(args.out or Artifacts.load(args.params).crosswalks_report.path, report(shared, params))
    return ""


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point: validate the crosswalk sets and write their report."""
    run_stage("crosswalks", _run, argv, lambda p: p.add_argument("--out", type=Path, default=None))
