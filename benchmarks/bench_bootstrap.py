"""The report's bootstrap: `training.intervals` (one matrix product per run) vs a loop over `training.metrics.scores`.

Input: synthetic per-chip confusion counts (the evaluate stage's `chip_confusion.parquet` columns) on the toolkit's
taxonomy: each chip holds some of the five crop classes, each run gets its own share right (a backbone, a size k and
a seed each move it; chips vary about it), the wrong pixels spread over every other class, the ignore class
included.
A (ours): `intervals()` on one run x `--chips` test chips x `--resamples` replicates (target: well under 1 s), then
the report's two calls, `intervals()` and `comparisons()`, on a study-size report: `--test-sources` target sources x
`--backbones` x `--sizes` x `--seeds` runs, each scored on every test source.
B (baseline, the straightforward bootstrap): per replicate, the drawn chips' confusion matrices summed and scored
by `training.metrics.scores`, on the same draws (`chip_weights`); its interval must equal A's, else the run fails.
Prints the medians, the ratio B/A, the thread settings and the peak memory.

Run: `OMP_NUM_THREADS=1 uv run python benchmarks/bench_bootstrap.py --machine-speed`
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from common import bench_parser, machine_speed, rss_mb, write_result

from training.intervals import BootstrapSettings, chip_weights, comparisons, intervals
from training.metrics import scores

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["ignore", "maize", "soybean", "rice", "wheat", "other"]  # the toolkit taxonomy (curation/legends)
K = len(CLASSES)
SOURCES = ("cdl", "eurocrops", "nccm", "agrifieldnet", "south_africa_crop_type", "south_america_soybean")
BACKBONES = ("imagenet", "ssl4eo", "satlas", "scratch", "moco", "dino")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS")
TARGET_S = 1.0
Counts = npt.NDArray[np.int64]


# ------------------------------------------------------------------ synthetic chip confusions


def chip_counts(rng: np.random.Generator, n_chips: int, accuracy: float) -> Counts:
    """[n, K, K] per-chip confusions: about half the real classes per chip, `accuracy` right on average."""
    pixels = rng.integers(200, 6000, size=(n_chips, K - 1)) * (rng.random((n_chips, K - 1)) < 0.5)
    pixels[np.arange(n_chips), rng.integers(0, K - 1, n_chips)] += 500  # no chip without a valid pixel
    share = np.clip(accuracy + rng.normal(0.0, 0.08, (n_chips, 1)), 0.0, 1.0)
    right = rng.binomial(pixels, share)
    wrong = rng.multinomial(pixels - right, np.full(K - 1, 1.0 / (K - 1)))  # [n, target, other class]
    counts = np.zeros((n_chips, K, K), dtype=np.int64)
    for target in range(1, K):
        others = [c for c in range(K) if c != target]
        counts[:, target, target] = right[:, target - 1]
        counts[:, target, others] = wrong[:, target - 1]
    return counts


def chip_frame(run_id: str, test_source: str, counts: Counts) -> pl.DataFrame:
    """The non-zero cells as rows of the chip-confusion table."""
    chip, target, predicted = np.nonzero(counts)
    names = np.array(CLASSES)
    return pl.DataFrame(
        {
            "run_id": np.full(chip.size, run_id),
            "test_source": np.full(chip.size, test_source),
            "chip_id": np.char.add(f"{test_source}_", np.char.zfill(chip.astype(str), 4)),
            "target_class": names[target],
            "predicted_class": names[predicted],
            "pixels": counts[chip, target, predicted],
        }
    )


RUN_SCHEMA = {"run_id": pl.String, "protocol": pl.String, "backbone": pl.String, "target_source": pl.String,
              "k": pl.Int64, "seed": pl.Int64}  # fmt: skip


def report_inputs(args: argparse.Namespace) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The report's inputs: every run (target x backbone x k x seed) scored on every test source."""
    rng = np.random.default_rng(args.seed)
    sources = SOURCES[: args.test_sources]
    runs: list[tuple[str, str, str, str, int, int]] = []
    frames: list[pl.DataFrame] = []
    for target in sources:
        for b, backbone in enumerate(BACKBONES[: args.backbones]):
            for s, k in enumerate(args.sizes):
                for seed in range(args.seeds):
                    run_id = f"id-{backbone}-{target}-k{k}-s{seed}"
                    runs.append((run_id, "id", backbone, target, k, seed))
                    own = 0.6 + 0.05 * b + 0.05 * s + rng.normal(0.0, 0.01)
                    for test in sources:
                        accuracy = own if test == target else own - 0.25
                        frames.append(chip_frame(run_id, test, chip_counts(rng, args.chips, accuracy)))
    return pl.concat(frames), pl.DataFrame(runs, schema=RUN_SCHEMA, orient="row")


# ------------------------------------------------------------------ the baseline


def baseline_interval(counts: Counts, weights: npt.NDArray[np.float64], level: float) -> dict[str, tuple[float, float]]:
    """Per replicate: the drawn chips' confusions summed (each as often as drawn) and scored by `scores`."""
    replicates: dict[str, list[float]] = {"oa": [], "aa": [], "miou": []}
    for draw in weights.astype(np.int64):
        scored = scores(np.tensordot(draw, counts, axes=1), CLASSES)
        for metric, values in replicates.items():
            values.append(scored[metric])
    tail = (1.0 - level) / 2.0
    out: dict[str, tuple[float, float]] = {}
    for metric, values in replicates.items():
        low, high = np.quantile(values, [tail, 1.0 - tail])
        out[metric] = (float(low), float(high))
    return out


# ------------------------------------------------------------------ timing


def timed(call: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall seconds of each of `repeats` calls after an untimed warm-up, and the last result."""
    result = call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    return times, result


def traced_peak_mb(call: Callable[[], Any]) -> float:
    """Peak of the memory allocated through Python's allocators (numpy included, polars' Rust heap not) in one call."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = bench_parser(__doc__, "timed runs per measurement (the median is reported)", "random seed of the data")
    parser.add_argument("--chips", type=int, default=100, help="test chips per test source")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap replicates")
    parser.add_argument("--test-sources", type=int, default=6, choices=range(1, len(SOURCES) + 1), metavar="N")
    parser.add_argument("--backbones", type=int, default=3, choices=range(1, len(BACKBONES) + 1), metavar="N")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 900], help="sizes k of each backbone")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per run")
    parser.add_argument("--skip-report", action="store_true", help="time the one-run bootstrap only")
    parser.add_argument(
        "--machine-speed", action="store_true", help="run ../shared/tools/machine-speed before and after"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, and return the numbers."""
    args = parse_args(argv)
    speed_before = machine_speed() if args.machine_speed else ""
    settings = BootstrapSettings(resamples=args.resamples, level=0.95, seed=0)
    threads = {name: os.environ.get(name, "unset") for name in THREAD_VARIABLES}

    counts = chip_counts(np.random.default_rng(args.seed), args.chips, 0.8)
    one_chips = chip_frame("id-ssl4eo-cdl-k100-s0", "cdl", counts)
    one_runs = pl.DataFrame([("id-ssl4eo-cdl-k100-s0", "id", "ssl4eo", "cdl", 100, 0)], schema=RUN_SCHEMA, orient="row")
    ours_s, table = timed(lambda: intervals(one_chips, one_runs, CLASSES, settings), args.repeats)
    weights = chip_weights(args.chips, "cdl", settings)
    base_s, expected = timed(lambda: baseline_interval(counts, weights, settings.level), args.repeats)
    for metric, (low, high) in expected.items():
        got = table.filter(pl.col("metric") == metric).row(0, named=True)
        if not (np.isclose(got["ci_low"], low, rtol=1e-12) and np.isclose(got["ci_high"], high, rtol=1e-12)):
            raise AssertionError(f"{metric}: ours {got['ci_low']}, {got['ci_high']}, baseline {low}, {high}; void")
    one: dict[str, Any] = {
        "chips": args.chips,
        "resamples": args.resamples,
        "ours_s": ours_s,
        "ours_median_s": statistics.median(ours_s),
        "baseline_s": base_s,
        "baseline_median_s": statistics.median(base_s),
        "intervals_identical": len(expected),
        "traced_peak_mb": traced_peak_mb(lambda: intervals(one_chips, one_runs, CLASSES, settings)),
    }
    one["speedup"] = one["baseline_median_s"] / one["ours_median_s"]
    one["target_met"] = one["ours_median_s"] < TARGET_S
    result: dict[str, Any] = {
        "benchmark": "bootstrap",
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cpus": os.cpu_count(),
        "threads": threads,
        "polars_threads": pl.thread_pool_size(),
        "one_run": one,
        "rss_after_one_run_mb": rss_mb(),
    }
    if not args.skip_report:
        result["report"] = report_numbers(args, settings)
    result["rss_peak_mb"] = rss_mb()
    result["machine_speed"] = {"before": speed_before, "after": machine_speed() if args.machine_speed else ""}
    print_table(result, args)
    if not one["target_met"]:
        raise AssertionError(f"one-run bootstrap took {one['ours_median_s']:.3f} s, target < {TARGET_S:g} s")
    return write_result(args.json, result)


def report_numbers(args: argparse.Namespace, settings: BootstrapSettings) -> dict[str, Any]:
    """The report's two calls on a study-size table of chip confusions."""
    start = time.perf_counter()
    chips, runs = report_inputs(args)
    print(
        f"report inputs: {chips.height:,} rows, {runs.height} runs ({time.perf_counter() - start:.1f} s)",
        file=sys.stderr,
    )
    intervals_s, spread = timed(lambda: intervals(chips, runs, CLASSES, settings), args.repeats)
    comparisons_s, paired = timed(lambda: comparisons(chips, runs, CLASSES, settings), args.repeats)
    return {
        "runs": runs.height,
        "test_sources": args.test_sources,
        "chips_per_test_source": args.chips,
        "chip_rows": chips.height,
        "scored_pairs": chips.select("run_id", "test_source").n_unique(),
        "intervals_rows": spread.height,
        "comparisons_rows": paired.height,
        "supported": int(paired["supported"].sum()),
        "intervals_s": intervals_s,
        "intervals_median_s": statistics.median(intervals_s),
        "comparisons_s": comparisons_s,
        "comparisons_median_s": statistics.median(comparisons_s),
        "traced_peak_mb": traced_peak_mb(lambda: intervals(chips, runs, CLASSES, settings)),
    }


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The numbers as a small table."""
    one = result["one_run"]
    threads = ", ".join(f"{k}={v}" for k, v in result["threads"].items())
    if result["machine_speed"]["before"]:
        print(f"before: {result['machine_speed']['before']}")
    print(
        f"bootstrap: {args.resamples} resamples, level 0.95, median of {args.repeats}, seed {args.seed}, "
        f"{result['cpus']} CPUs, {threads}, polars threads {result['polars_threads']}"
    )
    print(f"one run x {one['chips']} chips, metrics oa, aa, miou   median s")
    print(f"{'A ours: intervals() (weights @ counts)':<48}{one['ours_median_s']:>10.4f}")
    print(f"{'B baseline: scores() per replicate':<48}{one['baseline_median_s']:>10.4f}")
    print(f"intervals identical: {one['intervals_identical']}/3; speed-up B/A: {one['speedup']:.1f}x")
    met = "met" if one["target_met"] else "NOT met"
    print(
        f"A under {TARGET_S:g} s: {met} ({one['ours_median_s'] * 1000:.1f} ms; "
        f"traced peak {one['traced_peak_mb']:.1f} MB)"
    )
    if "report" in result:
        r = result["report"]
        print(
            f"report: {r['runs']} runs x {r['test_sources']} test sources x {r['chips_per_test_source']} chips "
            f"({r['scored_pairs']} scored pairs, {r['chip_rows']:,} chip rows, {args.seeds} seeds): "
            f"intervals() {r['intervals_median_s']:.3f} s ({r['intervals_rows']} rows), "
            f"comparisons() {r['comparisons_median_s']:.3f} s ({r['comparisons_rows']} rows, "
            f"{r['supported']} supported); "
            f"traced peak {r['traced_peak_mb']:.1f} MB"
        )
    print(f"peak RSS MB (getrusage, only grows; torch imported for the baseline): after one run "
          f"{result['rss_after_one_run_mb']:.0f}, at the end {result['rss_peak_mb']:.0f}")  # fmt: skip
    if result["machine_speed"]["after"]:
        print(f"after: {result['machine_speed']['after']}")


if __name__ == "__main__":
    main()
