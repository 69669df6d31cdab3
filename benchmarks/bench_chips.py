"""The `chips` stage on a Dask LocalCluster: 1 worker vs 2 workers (scaling), with the in-process run for reference.

Input: a demo world (`curation.demo.stage.build`: all six sources in their native layouts, `--chips-per-source`
image chips or chip-product fields of `--chip-px` pixels each), built once into the work folder and reused while its
params match. Each timed run is the whole stage, `curation.chips.stage.build` (`chips.link` from `--link`,
params.yaml's by default: `auto`, a reflink or hard link), with params that differ only in `shared.dask`: `local`
with 1 worker, `local` with `--workers` workers (default 2), and `synchronous` (in-process, no Dask). Runs are
interleaved (1, 2, synchronous, then again) so drift on a shared machine hits all three alike. Every run must write
a byte-identical manifest.parquet, else the benchmark fails. The previous run's output is removed before a run,
untimed, as `dvc repro` removes a stage's outputs before it runs the stage. The stage's time includes starting and
stopping its cluster; that fixed cost (cluster start, workers importing the stage module, shutdown) is also timed on
its own, with one trivial task, so the per-chip rate without it can be told apart.

The floor of a chip's work is timed too, in this process between the runs (`--floor`): copy the chip's image file
(a chip product's band files) and read its label window (`read_labels`, the stage's own read, on the image's grid).
The 1-worker stage's cost per chip, without the fixed cost, is compared with it (target: at most 1.3x).

Run: `uv run python benchmarks/bench_chips.py --chip-px 256 --chips-per-source 60 --repeats 3`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rasterio
from affine import Affine
from common import bench_parser, write_result
from rasterio.crs import CRS

from curation.chips import stage as chips
from curation.chips.config import ChipsParams
from curation.core.artifacts import MANIFEST
from curation.core.parallel import run_tasks
from curation.core.params import load_section
from curation.core.shared import DaskParams, SharedParams
from curation.demo import stage as demo
from curation.demo.config import DemoParams
from curation.inputs.chip_refs import product_bands, read_labels
from curation.inputs.facts import GDAL_OPEN
from curation.sources.base import ChipGrid

ROOT = Path(__file__).resolve().parents[1]
LEGENDS = ROOT / "curation" / "legends"
PARAMS = ROOT / "params.yaml"
CLOUD_PROBABILITY = 0.2


def demo_params(args: argparse.Namespace, out: Path) -> DemoParams:
    """The demo world's params from the command line."""
    return DemoParams(
        seed=args.seed,
        out=out,
        chip_px=args.chip_px,
        chips_per_source=args.chips_per_source,
        cloud_probability=CLOUD_PROBABILITY,
    )


def ensure_world(params: DemoParams) -> float:
    """Build the demo world into `params.out` unless the one there has the same params; returns the build seconds."""
    stamp = params.out / "DEMO_WORLD.json"
    if stamp.is_file():
        built = json.loads(stamp.read_text())
        wanted = {"seed": params.seed, "chip_px": params.chip_px, "chips_per_source": params.chips_per_source}
        if all(built.get(key) == value for key, value in wanted.items()):
            return 0.0
    start = time.perf_counter()
    demo.build(params, LEGENDS, params.out)
    return time.perf_counter() - start


def shared_params(raw: Path, chip_px: int, scheduler: str, workers: int) -> SharedParams:
    """The demo profile's shared params, pointed at the benchmark's world, with one Dask setting changed."""
    shared = load_section(SharedParams, PARAMS)
    return shared.model_copy(
        update={
            "raw_root": raw,
            "legends_dir": LEGENDS,
            "chip_px": chip_px,
            "dask": DaskParams(scheduler=scheduler, workers=workers),
        }
    )


def run_stage(shared: SharedParams, out: Path, workdir: Path, link: str = "copy") -> tuple[float, int]:
    """Time one whole `chips.build` into `out` (its report goes under `workdir`); returns seconds and chips."""
    report_file = workdir / "reports" / "chips.json"
    params = ChipsParams(out=out, report=report_file, link=link, product_images="vrt", skip_failed=False)
    shutil.rmtree(out, ignore_errors=True)  # `dvc repro` removes a stage's outputs before it runs the stage
    with contextlib.chdir(workdir):
        start = time.perf_counter()
        report = chips.build(shared, params, report_file)
        seconds = time.perf_counter() - start
    return seconds, int(report["chips"])


def chip_floor(shared: SharedParams, workdir: Path) -> tuple[float, int]:
    """Seconds to copy every chip's image file(s) and read its label window in this process; returns them and chips.

    The least a chip costs: its bytes copied once and its labels read once, with nothing checked, remapped or written
    but the copy. Files open under the stage's `GDAL_OPEN`, as its reads do.
    """
    scratch = workdir / "floor"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    params = ChipsParams(out=scratch, report=scratch / "r.json", link="copy", product_images="vrt", skip_failed=False)
    tasks, _ = chips._tasks(shared, params, scratch)  # the stage's own listing, untimed
    start = time.perf_counter()
    with rasterio.Env.from_defaults(**GDAL_OPEN):
        for number, task in enumerate(tasks):
            ref = task.chip.ref
            if ref.image is not None:
                files = [ref.image]
                with rasterio.open(ref.image) as src:
                    grid = ChipGrid(src.crs, src.transform, src.width, src.height, ref.chip_id)
            else:
                bands = product_bands(ref)
                files, grid = list(bands.files.values()), bands.grid
            for k, file in enumerate(files):
                shutil.copyfile(file, scratch / f"{number}_{k}{file.suffix}")
            read_labels(ref, grid)
    seconds = time.perf_counter() - start
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds, len(tasks)


def fixed_cost(workers: int) -> float:
    """Seconds for a LocalCluster of `workers` to start, run one trivial task of the stage module, and stop."""
    grid = ChipGrid(CRS.from_epsg(3857), Affine(10, 0, 0, 0, -10, 0), 16, 16, "probe")
    start = time.perf_counter()
    run_tasks(chips.grid_text, [grid], DaskParams(scheduler="local", workers=workers), "probe")
    return time.perf_counter() - start


def mode_row(times: list[float], chips_done: int, overhead: list[float] | None) -> dict[str, Any]:
    """One mode's numbers: every run, the median, chips per second, and the rate without the fixed cost."""
    median = statistics.median(times)
    row: dict[str, Any] = {"times_s": times, "median_s": median, "chips_per_s": chips_done / median}
    if overhead is not None:
        fixed = statistics.median(overhead)
        row["fixed_s"] = fixed
        row["fixed_s_runs"] = overhead
        row["chips_per_s_without_fixed"] = chips_done / (median - fixed) if median > fixed else float("nan")
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = bench_parser(__doc__, "timed runs per mode (the median is reported)", "seed of the demo world")
    parser.add_argument("--chip-px", type=int, default=256, help="image chip side in 10 m pixels (the study: 256)")
    parser.add_argument("--chips-per-source", type=int, default=60, help="image chips per source (six sources)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the run compared with 1 worker")
    parser.add_argument(
        "--fixed-cost",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time each cluster's fixed cost (start, stage import, stop) with one trivial task",
    )
    parser.add_argument(
        "--link",
        choices=("copy", "hardlink", "reflink", "auto"),
        default=load_section(ChipsParams, PARAMS).link,
        help="chips.link of the timed runs: how image chips get beside their labels [params.yaml's]",
    )
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time each chip's floor in this process: copy its image file(s) and read its label window",
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cropharmony-bench-chips")
    args = parser.parse_args(argv)
    if args.workers < 2:
        parser.error("--workers must be 2 or more (it is compared with 1 worker)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, and return the numbers."""
    args = parse_args(argv)
    workdir: Path = args.workdir.resolve()
    world = demo_params(args, workdir / "raw")
    built_s = ensure_world(world)
    print(
        f"demo world ready: {world.out} ({'cached' if not built_s else f'built in {built_s:.1f} s'})", file=sys.stderr
    )

    modes: dict[str, tuple[str, int]] = {
        "local_1": ("local", 1),
        f"local_{args.workers}": ("local", args.workers),
        "synchronous": ("synchronous", 1),
    }
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    overhead: dict[str, list[float]] = {mode: [] for mode in modes if modes[mode][0] == "local"}
    manifests: dict[str, bytes] = {}
    floors: list[float] = []
    chips_done = 0
    for repeat in range(args.repeats):
        if args.floor:
            seconds, count = chip_floor(shared_params(world.out, args.chip_px, "synchronous", 1), workdir)
            floors.append(seconds / count)
            print(f"  floor run {repeat + 1}/{args.repeats}: {seconds:.2f} s ({count} chips)", file=sys.stderr)
        for mode, (scheduler, workers) in modes.items():
            out = workdir / f"chips-{mode}"
            shared = shared_params(world.out, args.chip_px, scheduler, workers)
            seconds, chips_done = run_stage(shared, out, workdir, args.link)
            times[mode].append(seconds)
            manifests[mode] = (out / MANIFEST).read_bytes()
            message = f"  {mode} run {repeat + 1}/{args.repeats}: {seconds:.2f} s ({chips_done} chips)"
            if args.fixed_cost and mode in overhead:
                overhead[mode].append(fixed_cost(workers))
                message += f"; fixed cost {overhead[mode][-1]:.2f} s"
            print(message, file=sys.stderr)
    reference = manifests["local_1"]
    different = [mode for mode, data in manifests.items() if data != reference]
    if different:
        raise AssertionError(f"manifest.parquet of {', '.join(different)} differs from local_1's; benchmark void")

    rows = {mode: mode_row(times[mode], chips_done, overhead.get(mode) if args.fixed_cost else None) for mode in modes}
    many = f"local_{args.workers}"
    result: dict[str, Any] = {
        "benchmark": "chips",
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cpus": os.cpu_count(),
        "chips": chips_done,
        "identical_manifests": len(manifests),
        "modes": rows,
        "scaling": rows[many]["chips_per_s"] / rows["local_1"]["chips_per_s"],
    }
    if args.fixed_cost:
        result["scaling_without_fixed"] = (
            rows[many]["chips_per_s_without_fixed"] / rows["local_1"]["chips_per_s_without_fixed"]
        )
    if args.floor:
        result["floor_per_chip_s"] = statistics.median(floors)
        result["floor_per_chip_s_runs"] = floors
        one = rows["local_1"]
        result["per_chip_1_worker_s"] = one["median_s"] / chips_done
        result["floor_ratio"] = result["per_chip_1_worker_s"] / result["floor_per_chip_s"]
        if args.fixed_cost:
            result["per_chip_1_worker_without_fixed_s"] = 1 / one["chips_per_s_without_fixed"]
            result["floor_ratio_without_fixed"] = (
                result["per_chip_1_worker_without_fixed_s"] / result["floor_per_chip_s"]
            )
    print_table(result, many, args)
    return write_result(args.json, result)


def _cell(row: dict[str, Any], key: str, spec: str) -> str:
    return format(row[key], spec) if key in row else "-"


def print_table(result: dict[str, Any], many: str, args: argparse.Namespace) -> None:
    """The numbers as a small table."""
    print(
        f"chips stage: {result['chips']} chips of {args.chip_px} px (6 sources x {args.chips_per_source}), "
        f"link {args.link}, median of {args.repeats}, seed {args.seed}, {result['cpus']} CPUs"
    )
    fixed = args.fixed_cost
    header = f"{'mode':<34}{'total s':>10}{'chips/s':>10}"
    print(header + (f"{'fixed s':>10}{'chips/s w/o fixed':>20}" if fixed else ""))
    names: dict[str, str] = {
        "local_1": "local cluster, 1 worker",
        many: f"local cluster, {args.workers} workers",
        "synchronous": "synchronous (in-process, reference)",
    }
    for mode, name in names.items():
        row = result["modes"][mode]
        line = f"{name:<34}{row['median_s']:>10.2f}{row['chips_per_s']:>10.1f}"
        if fixed:
            line += f"{_cell(row, 'fixed_s', '.2f'):>10}{_cell(row, 'chips_per_s_without_fixed', '.1f'):>20}"
        print(line)
    print(f"manifests identical: {result['identical_manifests']}/{len(names)}")
    print(f"scaling ({args.workers} workers / 1 worker): {result['scaling']:.2f}x")
    if fixed:
        print(f"scaling without the fixed cost: {result['scaling_without_fixed']:.2f}x")
    if "floor_ratio" in result:
        floor_ms = result["floor_per_chip_s"] * 1e3
        line = f"1 worker per chip / floor (copy the image, read the labels: {floor_ms:.1f} ms): "
        line += f"{result['floor_ratio']:.2f}x"
        if "floor_ratio_without_fixed" in result:
            line += f", {result['floor_ratio_without_fixed']:.2f}x without the fixed cost (target <= 1.3x)"
        print(line)


if __name__ == "__main__":
    main()
