"""A training step of the study's model fed by the in-memory bank (ours) vs on pre-made device tensors (the ceiling).

The model is the study's: `CropTask` (smp U-Net, ResNet-50 encoder, `--encoder-depth` 5, smp's default decoder
256-128-64-32-16, 13 bands), built as `training/factory.py` builds it from the `train` section of `--params`
(default `profiles/study.yaml`: encoder frozen, its BatchNorm in train mode) with random init. One step is what
Lightning runs per batch, written as a plain torch loop so that nothing but the input differs between the sides:
`zero_grad`, `task.training_step` (forward, cross-entropy with ignore) under `torch.autocast` for the mixed
precisions (as Lightning's `bf16-mixed` / `16-mixed` plugins do; 16-mixed with a GradScaler), `backward` and the
task's own AdamW step. Ours: each step takes the next batch of `TrainBatches` over the chip bank on the device
(a gather, one `grid_sample` for the random resized crops and flips, epochs of `--epoch-chips`, so every epoch's
start is in the timed steps as often as in a run). Ceiling: the same task and step on one batch made beforehand by
the same `TrainBatches`, already on the device. Ratio = ceiling step time / ours (target at least 0.9). Both sides
run after `--warmup` untimed steps, with the device synchronized around the timed ones, alternating which side goes
first, for every precision and memory format (`--precisions`, `--memory-formats`), each also as a speed-up over
32-true contiguous in the same run.

Then the input path alone (no model): ours (bank on the device, `TrainBatches`) against torchgeo's
`RandomGeoSampler` path on the same chips (bench_training_input's dataset and kornia augmentation; each batch moved
to the device and augmented there, as torchgeo's datamodules do): samples/s and their ratio (target at least 20x on
a GPU). The chips are bench_training_input's synthetic world, one source, one CRS.

`--tiny` (the default without CUDA) runs in seconds on a CPU; `--full` (the default with CUDA) is the study's size.

Run (GPU): `uv run python benchmarks/bench_gpu_step.py --full --machine-speed`
Run (CPU): `OMP_NUM_THREADS=1 uv run python benchmarks/bench_gpu_step.py --tiny --machine-speed` (torch on 1 thread)
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import polars as pl
import torch
from bench_training_input import (
    chip_px_of,
    describe,
    sync,
    synthetic_world,
    take,
)
from common import bench_parser, machine_speed, rss_mb, write_result
from gpu_step_input import input_rates, train_batches

from training.data import Batch, ChipBank, load_bank

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "profiles" / "study.yaml"
SMP_DECODER = (256, 128, 64, 32, 16)  # smp's default decoder, the study's
REFERENCE = ("32-true", "contiguous")  # every configuration's speed-up is against this one, in the same run
SIZES: dict[str, dict[str, Any]] = {  # what --tiny and --full set; every flag given on the command line wins
    "tiny": dict(chip_px=64, chips_per_source=8, batch_size=4, encoder_depth=3, decoder_channels=(32, 16, 16),
                 epoch_chips=8, warmup=2, steps=4, input_batches=3, workers=[0], threads=1),
    "full": dict(chip_px=256, chips_per_source=60, batch_size=128, encoder_depth=5, decoder_channels=SMP_DECODER,
                 epoch_chips=1024, warmup=8, steps=16, input_batches=10, workers=[0, 8], threads=0),
}  # fmt: skip
Step = Callable[[Batch, int], None]


# ----------------------------------------------------------------------------------------------------- the model


def build_tasks(args: argparse.Namespace, device: torch.device) -> tuple[dict[str, Any], int, dict[str, Any]]:
    """One CropTask per memory format (same seed, same weights), on `device`; the classes and the model's facts."""
    from curation.core.legends import load_taxonomy  # the model stack only here (as bench_training_input's --gpu)
    from curation.core.params import load_section
    from curation.core.shared import SharedParams
    from training.config import TrainParams
    from training.factory import task_factory

    params = load_section(TrainParams, args.params)
    model = params.model.model_copy(
        update={
            "encoder_depth": args.encoder_depth,
            "decoder_channels": tuple(args.decoder_channels),
            "frozen_encoder": params.model.frozen_encoder and not args.train_encoder,
        }
    )
    shared = load_section(SharedParams, args.params)
    legends = shared.legends_dir if shared.legends_dir.is_absolute() else ROOT / shared.legends_dir
    num_classes = load_taxonomy(legends / "target.csv").size
    tasks: dict[str, Any] = {}
    for layout in args.memory_formats:
        update = {"allow_random_init": True, "model": model, "channels_last": layout == "channels_last"}
        torch.manual_seed(args.seed)
        task = task_factory(params.model_copy(update=update), shared, num_classes)(args.backbone).to(device)
        task.train()
        tasks[layout] = task
    first = next(iter(tasks.values()))
    facts = {
        "backbone": args.backbone,
        "params": str(args.params),
        "encoder_depth": args.encoder_depth,
        "decoder_channels": list(args.decoder_channels),
        "in_channels": first.backbone_spec.in_channels,
        "frozen_encoder": first.frozen,
        "frozen_batchnorm": first.frozen_batchnorm,
        "weights": first.provenance.weights,
        "parameters": sum(p.numel() for p in first.parameters()),
        "trainable_parameters": sum(p.numel() for p in first.parameters() if p.requires_grad),
        "crop_scale": list(params.crop_scale),
        "crop_ratio": list(params.crop_ratio),
    }
    return tasks, num_classes, facts


def make_step(task: Any, device: torch.device, precision: str) -> Step:  # noqa: ANN401 - a CropTask
    """One training step as Lightning runs it: autocast around the task's training computation, then the update."""
    optimizer = task.configure_optimizers()["optimizer"]  # the task's AdamW over its trainable parameters
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type) if precision == "16-mixed" else None

    def step(batch: Batch, number: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext():
            loss = task.training_step(batch, number)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()

    return step


def timed_steps(step: Step, batches: Iterator[Batch], warmup: int, device: torch.device) -> dict[str, float]:
    """Seconds per step after `warmup` untimed steps, the device synchronized on both ends; its peak memory."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    steps, start = 0, time.perf_counter()
    for number, batch in enumerate(batches):
        if number == warmup:
            sync(device)
            start = time.perf_counter()
        step(batch, number)
        steps += number >= warmup
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return {"step_s": seconds / steps, "peak_mb": peak}


def config_name(precision: str, layout: str) -> str:
    """`32-true`, `bf16-mixed, channels_last`...: a configuration's key in the result."""
    return precision if layout == "contiguous" else f"{precision}, {layout}"


def unsupported(precision: str, device: torch.device) -> str | None:
    """Why a precision cannot run here (None: it can)."""
    if precision == "bf16-mixed" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    return None


def step_rates(bank: ChipBank, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Every configuration's step time, ours and the ceiling, interleaved over `--repeats`."""
    tasks, num_classes, facts = build_tasks(args, device)
    batches = train_batches(bank, args, facts)
    ceiling = {key: value.clone() for key, value in next(iter(batches)).items()}  # made by the harness, once
    configs = [(p, layout) for p in args.precisions for layout in args.memory_formats]
    steps = {(p, layout): make_step(tasks[layout], device, p) for p, layout in configs}
    runs: dict[tuple[str, str], dict[str, list[dict[str, float]]]] = {c: {"ours": [], "ceiling": []} for c in configs}
    errors: dict[tuple[str, str], str] = {c: why for c in configs if (why := unsupported(c[0], device))}
    count = args.warmup + args.steps
    for repeat in range(args.repeats):
        for config in configs:
            if config in errors:
                continue
            sides = {"ours": lambda: take(batches, count), "ceiling": lambda: itertools.repeat(ceiling, count)}
            order = ("ours", "ceiling") if repeat % 2 == 0 else ("ceiling", "ours")  # drift falls on both alike
            try:
                for side in order:
                    runs[config][side].append(timed_steps(steps[config], sides[side](), args.warmup, device))
            except Exception as exc:  # e.g. an autocast this device does not do: reported, not fatal
                errors[config] = f"{type(exc).__name__}: {exc}"
                continue
            times = ", ".join(f"{s} {runs[config][s][-1]['step_s'] * 1000:.1f} ms" for s in order)
            print(f"  run {repeat + 1}/{args.repeats} {config_name(*config)}: {times}", file=sys.stderr)
    rows: dict[str, Any] = {}
    for config in configs:
        name = config_name(*config)
        if config in errors:
            rows[name] = {"error": errors[config]}
            continue
        row: dict[str, Any] = {"precision": config[0], "memory_format": config[1]}
        for side, timed in runs[config].items():
            step_s = [t["step_s"] for t in timed]
            row[side] = {
                "step_s_runs": step_s,
                "step_s": statistics.median(step_s),
                "samples_per_s": args.batch_size / statistics.median(step_s),
                "peak_gpu_mb": max(t["peak_mb"] for t in timed),
            }
        row["ceiling_over_ours"] = row["ceiling"]["step_s"] / row["ours"]["step_s"]
        row["ceiling_over_ours_best"] = min(row["ceiling"]["step_s_runs"]) / min(row["ours"]["step_s_runs"])
        rows[name] = row
    reference = rows.get(config_name(*REFERENCE), {})
    for row in rows.values():
        if "ours" in row and "ours" in reference:
            row["ours_speedup_vs_fp32"] = reference["ours"]["step_s"] / row["ours"]["step_s"]
            row["ceiling_speedup_vs_fp32"] = reference["ceiling"]["step_s"] / row["ceiling"]["step_s"]
    return {"model": facts, "num_classes": num_classes, "batch": describe(next(iter(batches))), "configs": rows}


# ----------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; --tiny / --full fill in every size option not given."""
    parser = bench_parser(__doc__, "timed runs per configuration and path (the median is reported)", "random seed")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_const", const="tiny", dest="size",
                      help=f"CPU smoke size (the default without CUDA): {SIZES['tiny']}")  # fmt: skip
    size.add_argument("--full", action="store_const", const="full", dest="size",
                      help=f"the study's size, for a GPU (the default with CUDA): {SIZES['full']}")  # fmt: skip
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when present")
    parser.add_argument("--params", type=Path, default=STUDY, help="params file of the model (its train section)")
    parser.add_argument("--backbone", default="ssl4eo", help="registry backbone (random init; 13 bands)")
    parser.add_argument("--train-encoder", action="store_true", help="train the whole network (the study froze it)")
    parser.add_argument("--encoder-depth", type=int, choices=(3, 4, 5), default=None)
    parser.add_argument("--decoder-channels", type=int, nargs="+", default=None, help="one width per encoder stage")
    parser.add_argument("--chip-px", type=int, default=None, help="side of the synthetic chips (and the crops)")
    parser.add_argument("--chips-per-source", type=int, default=None, help="synthetic chips in the bank")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--epoch-chips", type=int, default=None, help="chips per training epoch (bank chips repeated)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps before each timed loop")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per loop")
    parser.add_argument("--input-batches", type=int, default=None, help="timed batches per input-path run")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="DataLoader workers of torchgeo runs")
    parser.add_argument("--precisions", nargs="+", choices=("32-true", "bf16-mixed", "16-mixed"),
                        default=["32-true", "bf16-mixed"], help="train.precision values measured")  # fmt: skip
    parser.add_argument("--memory-formats", nargs="+", choices=("contiguous", "channels_last"),
                        default=["contiguous", "channels_last"], help="train.channels_last off / on")  # fmt: skip
    threads = "torch threads (0: torch's default; --tiny: 1, as OpenMP spins on shared cores)"
    parser.add_argument("--threads", type=int, default=None, help=threads)
    parser.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    parser.add_argument("--no-input", action="store_true", help="skip the input-path comparison")
    parser.add_argument(
        "--machine-speed", action="store_true", help="run ../shared/tools/machine-speed before and after"
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cropharmony-bench-gpu-step")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False on this machine")
    args.device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    args.device = "cpu" if args.device == "auto" else args.device
    args.size = args.size or ("full" if args.device == "cuda" else "tiny")
    for key, value in SIZES[args.size].items():
        if getattr(args, key) is None:
            setattr(args, key, value if key != "decoder_channels" else value[: args.encoder_depth])
    if len(args.decoder_channels) != args.encoder_depth:
        parser.error(f"--decoder-channels: give {args.encoder_depth} widths, one per encoder stage")
    args.crop_px = args.chip_px  # the study's crops are resized back to the chip's side
    if args.chip_px % 32:
        parser.error("--chip-px must be a multiple of 32 (the U-Net's stride)")
    if REFERENCE[0] not in args.precisions or REFERENCE[1] not in args.memory_formats:
        parser.error("measure 32-true and contiguous: every ratio is against them")
    if args.warmup < 0 or args.steps < 1 or args.input_batches < 1 or args.batch_size < 2:
        parser.error("--warmup >= 0, --steps >= 1, --input-batches >= 1 and --batch-size >= 2 (BatchNorm)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, and return the numbers."""
    args = parse_args(argv)
    begun = time.perf_counter()
    speed_before = machine_speed() if args.machine_speed else ""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    warnings.filterwarnings("ignore", message=r".*`self\.log\(\)`.*")  # training_step logs; no Trainer here
    device = torch.device(args.device)
    world = (args.workdir / "world").resolve()
    built = synthetic_world(world, "cdl", args.chips_per_source, args.chip_px, args.seed)
    manifest = pl.read_parquet(world / "manifest.parquet").sort("chip_id")
    assert chip_px_of(world, manifest) == args.chip_px
    note = f"built in {built:.1f} s" if built else "reused"
    print(f"synthetic chips: {world} ({manifest.height} of cdl, {args.chip_px} px, {note})", file=sys.stderr)

    start = time.perf_counter()
    bank = load_bank(world, manifest, manifest["chip_id"].to_list()).to(device)
    sync(device)
    load_s = time.perf_counter() - start
    steps = step_rates(bank, args, device)
    rss_after_steps = rss_mb()
    inputs = None if args.no_input else input_rates(world, manifest, args, device, steps["model"])
    configs = steps["configs"]
    result: dict[str, Any] = {
        "benchmark": "gpu_step",
        "size": args.size,
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "device_type": device.type,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "torch": torch.__version__,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "conv_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "chips": manifest.height,
        "chip_px": args.chip_px,
        "bank_load_s": load_s,
        **steps,
        "input": inputs,
        "ratios": {
            "step_ceiling_over_ours": {k: r["ceiling_over_ours"] for k, r in configs.items() if "ours" in r},
            "step_best_runs": {k: r["ceiling_over_ours_best"] for k, r in configs.items() if "ours" in r},
            "ours_speedup_vs_fp32": {k: r["ours_speedup_vs_fp32"] for k, r in configs.items() if "ours" in r},
            "ceiling_speedup_vs_fp32": {k: r["ceiling_speedup_vs_fp32"] for k, r in configs.items() if "ours" in r},
            "input_ours_over_torchgeo": {} if inputs is None else inputs["ratios"],
        },
        "rss_peak_mb": {"after_steps": rss_after_steps, "at_end": rss_mb()},
    }
    result["machine_speed"] = {"before": speed_before, "after": machine_speed() if args.machine_speed else ""}
    result["seconds"] = time.perf_counter() - begun
    print_table(result, args)
    return write_result(args.json, result)


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The numbers as small tables."""
    model, image = result["model"], result["batch"]["image"]["shape"]
    if result["machine_speed"]["before"]:
        print(f"before: {result['machine_speed']['before']}")
    print(
        f"gpu step ({args.size}) on {result['device']}: U-Net ResNet-50 depth {model['encoder_depth']}, decoder "
        f"{model['decoder_channels']}, {model['in_channels']} bands, batch {image[0]} x {image[-1]} px, "
        f"{model['backbone']} ({model['weights']}), encoder {'frozen' if model['frozen_encoder'] else 'trained'} "
        f"(BatchNorm {model['frozen_batchnorm']}), {model['trainable_parameters']:,} of {model['parameters']:,} "
        f"parameters trained"
    )
    print(
        f"step: plain torch loop (zero_grad, task.training_step under autocast, backward, AdamW step); "
        f"{args.warmup} warm-up + {args.steps} timed steps, median of {args.repeats}; epochs of {args.epoch_chips} "
        f"chips ({result['chips']} in the bank, {args.chip_px} px)"
    )
    print(
        f"threads: torch {result['torch_threads']}, OMP_NUM_THREADS={result['omp_num_threads']}, "
        f"{result['cpus']} CPUs; cudnn.benchmark {result['cudnn_benchmark']}, conv TF32 {result['conv_tf32']}, "
        f"matmul precision {result['matmul_precision']}; torch {result['torch']}"
    )
    print(f"{'configuration':<28}{'ours ms':>10}{'ceiling ms':>12}{'ceiling/ours':>14}{'ours vs fp32':>14}"
          f"{'ceiling vs fp32':>17}{'peak GPU MB ours/ceil':>23}")  # fmt: skip
    for name, row in result["configs"].items():
        if "error" in row:
            print(f"{name:<28}  failed: {row['error']}")
            continue
        ours, ceiling = row["ours"], row["ceiling"]
        on_gpu = result["device_type"] == "cuda"
        peaks = f"{ours['peak_gpu_mb']:.0f} / {ceiling['peak_gpu_mb']:.0f}" if on_gpu else "-"
        print(
            f"{name:<28}{ours['step_s'] * 1000:>10.1f}{ceiling['step_s'] * 1000:>12.1f}"
            f"{row['ceiling_over_ours']:>14.3f}{row['ours_speedup_vs_fp32']:>13.2f}x"
            f"{row['ceiling_speedup_vs_fp32']:>16.2f}x{peaks:>23}"
        )
    steps = result["ratios"]["step_ceiling_over_ours"]
    print("ratio ceiling / ours step time (target >= 0.9): " + ", ".join(f"{k} {v:.3f}" for k, v in steps.items()))
    best = result["ratios"]["step_best_runs"]
    print("the same, fastest run of each side (a shared machine's load only slows runs): "
          + ", ".join(f"{k} {v:.3f}" for k, v in best.items()))  # fmt: skip
    inputs = result["input"]
    if inputs is not None:
        print(f"input path alone (no model), batch {image[0]} x {image[-1]} px, {args.input_batches} batches, "
              f"on {result['device_type']}:")  # fmt: skip
        print(f"{'path':<56}{'one-off s':>10}{'samples/s':>12}")
        names = {"ours": f"ours: bank on {result['device_type']} + TrainBatches", **{
            f"torchgeo_w{w}": f"torchgeo: RandomGeoSampler, {w} workers, kornia on {result['device_type']}"
            for w in args.workers}}  # fmt: skip
        for key, name in names.items():
            row = inputs["paths"][key]
            if "error" in row:
                print(f"{name:<56}  failed: {row['error']}")
                continue
            print(f"{name:<56}{row['one_off_s']:>10.2f}{row['samples_per_s']:>12.1f}")
        for name, ratio in inputs["ratios"].items():
            print(f"ratio ours / {name}: {ratio:.1f}x (target >= 20x on a GPU)")
        batch_ms = image[0] / inputs["paths"]["ours"]["samples_per_s"] * 1000
        reference = result["configs"][config_name(*REFERENCE)]
        if "ceiling" in reference:
            share = batch_ms / (reference["ceiling"]["step_s"] * 1000)
            print(f"ours' input alone: {batch_ms:.2f} ms a batch, {share:.1%} of the 32-true ceiling step")
    rss = result["rss_peak_mb"]
    print(
        f"peak RSS MB (getrusage, only grows): after the steps {rss['after_steps']:.0f}, at the end "
        f"{rss['at_end']:.0f}; bank load {result['bank_load_s']:.2f} s; whole run {result['seconds']:.1f} s"
    )
    if result["machine_speed"]["after"]:
        print(f"after: {result['machine_speed']['after']}")


if __name__ == "__main__":
    main()
