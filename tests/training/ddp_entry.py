"""Train one matrix entry of the tiny world from a JSON spec: the DDP test's command.

Lightning's DDP starts every rank but the first by running this same command again (with `LOCAL_RANK` set), so it
is a script: `python tests/training/ddp_entry.py SPEC.json`, run from the project root with it on `PYTHONPATH`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from tests.training.conftest import tiny_shared
from training.config import TrainParams
from training.task import quiet_lightning
from training.train import run_entry


def main(spec_path: Path) -> None:
    """Read the spec (train section, chips, subsets, entry, output) and train the entry."""
    spec = json.loads(spec_path.read_text())
    quiet_lightning()
    params = TrainParams.model_validate(spec["train"])
    subsets = pl.read_parquet(spec["subsets"])
    entry = tuple(spec["entry"])
    run_entry(params, tiny_shared(), Path(spec["chips"]), subsets, entry, Path(spec["out"]))  # type: ignore[arg-type]


if __name__ == "__main__":
    main(Path(sys.argv[1]))
