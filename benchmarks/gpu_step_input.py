"""bench_gpu_step's input path alone: ours (`TrainBatches` over the bank on the device) vs torchgeo's sampler path.

The batches both sides yield must match in shape and dtype; torchgeo's are moved to the device and augmented there,
as its datamodules do. Also the batches of the step benchmark (`train_batches`), so both parts draw alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch
from bench_training_input import describe, kornia_augment, sync, take, torchgeo_dataset
from torch.utils.data import DataLoader
from torchgeo.datasets import RasterDataset, stack_samples
from torchgeo.samplers import RandomGeoSampler, Units

from training.data import ChipBank, TrainBatches, load_bank


def epoch_of(bank: ChipBank, chips: int) -> torch.Tensor:
    """Rows of an epoch of `chips` chips: the bank's chips over and over (a run's training set is this size)."""
    rows = bank.index(bank.chip_ids)
    return rows.repeat(-(-chips // len(rows)))[:chips]


def train_batches(bank: ChipBank, args: argparse.Namespace, facts: dict[str, Any]) -> TrainBatches:
    """The harness's batches at the study's crops (crop side = chip side, scale and ratio from --params)."""
    scale, ratio = tuple(facts["crop_scale"]), tuple(facts["crop_ratio"])
    rows = epoch_of(bank, args.epoch_chips)
    return TrainBatches(bank, rows, args.batch_size, args.crop_px, scale, args.seed, ratio=ratio)


def ours_input_run(chips_root: Path, manifest: pl.DataFrame, args: argparse.Namespace, device: torch.device,
                   facts: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Load the bank onto the device (the one-off), then time `--input-batches` batches of `TrainBatches`."""
    start = time.perf_counter()
    bank = load_bank(chips_root, manifest, manifest["chip_id"].to_list()).to(device)
    sync(device)
    load_s = time.perf_counter() - start
    batches = train_batches(bank, args, facts)
    first = next(iter(batches))  # untimed: the device's kernels loaded
    sync(device)
    samples, start = 0, time.perf_counter()
    for batch in take(batches, args.input_batches):
        samples += batch["image"].shape[0]
    sync(device)
    return {"one_off_s": load_s, "iter_s": time.perf_counter() - start, "samples": samples, "batch": describe(first)}


def torchgeo_input_run(chips_root: Path, manifest: pl.DataFrame, args: argparse.Namespace, device: torch.device,
                       facts: dict[str, Any], workers: int) -> dict[str, Any]:  # fmt: skip
    """bench_training_input's torchgeo path, each batch moved to the device and augmented there (torchgeo's order)."""
    RasterDataset._cached_load_warp_file.cache_clear()  # one LRU of 128 handles shared by every RasterDataset
    start = time.perf_counter()
    dataset = torchgeo_dataset(chips_root, manifest)
    index_s = time.perf_counter() - start
    generator = torch.Generator().manual_seed(args.seed)
    sampler = RandomGeoSampler(
        dataset, size=args.crop_px, length=args.input_batches * args.batch_size, units=Units.PIXELS,
        generator=generator,
    )  # fmt: skip
    loader = DataLoader(
        dataset, batch_size=args.batch_size, sampler=sampler, collate_fn=stack_samples, num_workers=workers
    )
    augment = kornia_augment(args.crop_px, tuple(facts["crop_scale"]))  # kornia's ratio: (3/4, 4/3)
    torch.manual_seed(args.seed)
    samples, first = 0, None
    start = time.perf_counter()
    for raw in loader:  # torchgeo's GeoDataModule drops the non-tensors, moves the batch, then augments it
        moved = {k: v.to(device, non_blocking=True) for k, v in raw.items() if isinstance(v, torch.Tensor)}
        batch = augment(moved)
        samples += batch["image"].shape[0]
        first = first or describe(batch)
    sync(device)
    iter_s = time.perf_counter() - start
    RasterDataset._cached_load_warp_file.cache_clear()
    assert first is not None
    return {"one_off_s": index_s, "iter_s": iter_s, "samples": samples, "batch": first}


def input_rates(chips_root: Path, manifest: pl.DataFrame, args: argparse.Namespace, device: torch.device,
                facts: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Samples/s of both input paths, interleaved over `--repeats`; the batches must match in shape and dtype."""
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], **{f"torchgeo_w{w}": [] for w in args.workers}}
    errors: dict[str, str] = {}
    for repeat in range(args.repeats):
        runs["ours"].append(ours_input_run(chips_root, manifest, args, device, facts))
        ours_ms = runs["ours"][-1]["iter_s"] * 1000
        print(f"  input run {repeat + 1}/{args.repeats}: ours {ours_ms:.1f} ms", file=sys.stderr, end="")
        for workers in args.workers:
            name = f"torchgeo_w{workers}"
            if name in errors:
                continue
            try:
                runs[name].append(torchgeo_input_run(chips_root, manifest, args, device, facts, workers))
                print(f", {name} {runs[name][-1]['iter_s'] * 1000:.1f} ms", file=sys.stderr, end="")
            except Exception as exc:  # a worker setup that fails is reported, not fatal
                errors[name] = f"{type(exc).__name__}: {exc}"
        print(file=sys.stderr)
    paths: dict[str, Any] = {}
    for name, done in runs.items():
        if not done:
            paths[name] = {"error": errors.get(name, "no run")}
            continue
        iter_s = [r["iter_s"] for r in done]
        paths[name] = {
            "samples": done[0]["samples"],
            "iter_s": iter_s,
            "one_off_s": statistics.median(r["one_off_s"] for r in done),
            "samples_per_s": done[0]["samples"] / statistics.median(iter_s),
            "batch": done[0]["batch"],
        }
    reference = paths["ours"]["batch"]
    for name, row in paths.items():
        if "batch" in row and row["batch"] != reference:
            raise AssertionError(f"{name} yields {row['batch']}, ours {reference}: batches differ; benchmark void")
    ratios = {
        name: paths["ours"]["samples_per_s"] / row["samples_per_s"]
        for name, row in paths.items()
        if name != "ours" and "samples_per_s" in row
    }
    if not ratios:
        raise RuntimeError(f"no torchgeo run succeeded: {errors}")
    return {"paths": paths, "ratios": ratios}
