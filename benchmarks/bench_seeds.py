"""What each extra seed of `train.seeds` costs: one matrix entry trained and evaluated with 1, 2, ... seeds.

Input: the demo's chips and subsets (run `uv run dvc repro subsets` first), the project's `train` and `evaluate`
params with `train.seeds` replaced. For each seed count n, one `train` entry and its `evaluate`, in this process
(imports and the first model build paid once, before the timed runs, as a warm-up with one seed). Prints the wall
time per n, the cost of each extra seed as a share of the one-seed run, T(n) / (n T(1)) (1.0: every cost scales with
the seeds; below: the chip bank, the stage start and the pristine models are shared), the thread settings and the
peak memory.

Run: `uv run python benchmarks/bench_seeds.py --machine-speed` (after `uv run dvc repro subsets`)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch
from common import write_result

from curation.core.params import load_section
from curation.core.shared import SharedParams
from training.config import EvaluateParams, TrainParams
from training.evaluate import evaluate_entry
from training.task import quiet_lightning
from training.train import run_entry

ROOT = Path(__file__).resolve().parents[1]
MACHINE_SPEED = ROOT.parent / "shared" / "tools" / "machine-speed"


def timed_entry(
    train: TrainParams,
    evaluate: EvaluateParams,
    shared: SharedParams,
    entry: tuple[str, str, str, str],
    data: Path,
    work: Path,
) -> dict[str, float]:
    """Train and evaluate one entry on `data` (chips/, subsets/); wall seconds of each and the number of runs."""
    subsets = pl.read_parquet(data / "subsets" / "subsets.parquet")
    chips = data / "chips"
    started = time.perf_counter()
    records = run_entry(train, shared, chips, subsets, entry, work / "runs")
    trained = time.perf_counter()
    evaluate_entry(evaluate, train, shared, chips, subsets, work / "runs", work / "evals")
    done = time.perf_counter()
    return {"runs": len(records), "train_s": trained - started, "evaluate_s": done - trained}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns (and optionally writes) the result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="largest seed count (from 1)")
    parser.add_argument("--entry", nargs=4, default=["all", "ssl4eo", "cdl", "all"], help="protocol backbone source k")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="folder of chips/ and subsets/")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument("--machine-speed", action="store_true", help="print ../shared/tools/machine-speed before/after")
    args = parser.parse_args(argv)
    if not (args.data / "subsets" / "subsets.parquet").is_file():
        sys.exit(f"no {args.data}/subsets/subsets.parquet: run `uv run dvc repro subsets` first")
    speed = (
        [subprocess.run([str(MACHINE_SPEED)], capture_output=True, text=True).stdout.strip()]
        if (args.machine_speed and MACHINE_SPEED.is_file())
        else []
    )
    quiet_lightning()
    base = load_section(TrainParams, args.params)
    evaluate = load_section(EvaluateParams, args.params)
    shared = load_section(SharedParams, args.params)
    entry = tuple(args.entry)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        timed_entry(base.model_copy(update={"seeds": (0,)}), evaluate, shared, entry, args.data, Path(tmp) / "warm")  # type: ignore[arg-type]
        for count in range(1, args.seeds + 1):
            train = base.model_copy(update={"seeds": tuple(range(count))})
            row = timed_entry(train, evaluate, shared, entry, args.data, Path(tmp) / f"n{count}")  # type: ignore[arg-type]
            rows.append({"seeds": count, **row, "total_s": row["train_s"] + row["evaluate_s"]})
    one = rows[0]["total_s"]
    for row in rows:
        row["extra_seed_share"] = (row["total_s"] - one) / one / max(1, row["seeds"] - 1) if row["seeds"] > 1 else 0.0
        row["scaling"] = row["total_s"] / (row["seeds"] * one)
    if args.machine_speed and MACHINE_SPEED.is_file():
        speed.append(subprocess.run([str(MACHINE_SPEED)], capture_output=True, text=True).stdout.strip())
    result = {
        "entry": list(entry),
        "rows": rows,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "machine_speed": speed,
    }
    print(
        f"entry {' '.join(entry)}; torch threads {result['torch_threads']}, OMP_NUM_THREADS {result['omp_num_threads']}"
    )
    for row in rows:
        print(
            f"seeds {row['seeds']}: {row['runs']} runs, train {row['train_s']:.1f} s + "
            f"evaluate {row['evaluate_s']:.1f} s"
            f" = {row['total_s']:.1f} s; each extra seed {100 * row['extra_seed_share']:.0f} % of one; "
            f"T(n)/(n T(1)) {row['scaling']:.2f}"
        )
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB; machine speed: {' | '.join(speed) or 'not measured'}")
    return write_result(args.json, result)


if __name__ == "__main__":
    main()
