"""Training input, samples/s: the harness's in-memory batches (ours) vs torchgeo's sampler path (the study's).

Ours: `training.data.load_bank` reads one source's chips into memory once (timed apart, as a one-off), then
`TrainBatches` yields augmented batches: a gather, a random resized crop and random flips for the whole batch in one
`grid_sample`. Baseline (the study's path): torchgeo `RasterDataset`s over the same image and label chip files,
joined with `&` (an IntersectionDataset), a `RandomGeoSampler` of crop-sized windows, a `DataLoader` with
`stack_samples` (0 workers, and 2), then kornia's `AugmentationSequential` (random resized crop and flips, dict style,
`data_keys=None`) on each batch, as torchgeo's datamodules do. Its one-off cost is building the two file indexes.
Both paths must yield batches of the same shapes and dtypes, else the run fails. One source at a time: its chips
share one CRS (torchgeo would warp every other CRS to the first file's), as the study built per-source datasets.

`--gpu` also times a training step (CropTask forward, backward, AdamW) on the harness's batches with the bank on the
GPU against the same model on synthetic tensors already there; it is skipped on a machine without CUDA.

Run: `uv run python benchmarks/bench_training_input.py --source cdl --batches 50 --repeats 3`
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kornia.augmentation as K
import numpy as np
import polars as pl
import rasterio
import torch
from affine import Affine
from common import bench_parser, write_result
from kornia.constants import DataKey, Resample
from rasterio.vrt import WarpedVRT
from torch.utils.data import DataLoader
from torchgeo.datasets import IntersectionDataset, RasterDataset, stack_samples
from torchgeo.samplers import RandomGeoSampler, Units

from curation.core.bands import S2_FILE_ORDER
from curation.core.geotiff import write_geotiff
from training.data import Batch, ChipBank, TrainBatches, load_bank

ROOT = Path(__file__).resolve().parents[1]
DEMO_CHIPS = ROOT / "data" / "chips"
PARAMS = ROOT / "params.yaml"
SYNTHETIC_CRS = "EPSG:3857"
RES_M = 10.0
GPU_WARMUP = 5  # untimed steps before each timed GPU loop (cuDNN autotuning, allocator)


class ImageChips(RasterDataset):
    """13-band uint16 image chips, one GeoTIFF each, no date in the name (read as float32)."""

    filename_glob = "*.tif"
    is_image = True
    all_bands = S2_FILE_ORDER


class LabelChips(RasterDataset):
    """uint8 label chips on the image chips' grids (read as int64 masks)."""

    filename_glob = "*.tif"
    is_image = False


# ----------------------------------------------------------------------------------------------------- input world


def synthetic_world(root: Path, source: str, chips: int, chip_px: int, seed: int) -> float:
    """`chips` image and label chips of one source in one CRS, each at its own offset; returns the build seconds.

    Written with the chips stage's writer (deflate; tiled 256 x 256 from 256 px up), with a manifest holding the
    columns the harness reads. Reused while its params match.
    """
    stamp = root / "SYNTHETIC_WORLD.json"
    wanted = {"source": source, "chips": chips, "chip_px": chip_px, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return 0.0
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    spectra = rng.integers(300, 4000, size=(6, len(S2_FILE_ORDER)))  # class -> reflectance per band
    side = int(np.ceil(np.sqrt(chips)))
    step = 2 * chip_px * RES_M  # a chip-wide gap between chips: no sample window reaches a neighbour
    rows = []
    for number in range(chips):
        col, row = number % side, number // side
        chip_id = f"2023_{col}_{row}"
        transform = Affine(RES_M, 0, -10_000_000 + col * step, 0, -RES_M, 4_000_000 - row * step)
        fields = rng.integers(0, 6, size=(chip_px // 8 + 1, chip_px // 8 + 1), dtype=np.uint8)
        labels = np.kron(fields, np.ones((8, 8), dtype=np.uint8))[:chip_px, :chip_px]
        noise = rng.integers(0, 400, size=(len(S2_FILE_ORDER), chip_px, chip_px))
        image = (spectra[labels].transpose(2, 0, 1) + noise).astype(np.uint16)
        image_path, label_path = f"{source}/images/{chip_id}.tif", f"{source}/labels/{chip_id}.tif"
        write_geotiff(root / image_path, image, SYNTHETIC_CRS, transform, S2_FILE_ORDER)
        write_geotiff(root / label_path, labels, SYNTHETIC_CRS, transform, ("class",))
        rows.append({"chip_id": chip_id, "source": source, "image_path": image_path, "label_path": label_path})
    pl.DataFrame(rows).write_parquet(root / "manifest.parquet")
    stamp.write_text(json.dumps(wanted) + "\n")
    return time.perf_counter() - start


def chip_px_of(chips_root: Path, manifest: pl.DataFrame) -> int:
    """Side in pixels of the first chip (every chip of a run has one shape; `load_bank` checks it)."""
    with rasterio.open(chips_root / manifest["image_path"][0]) as src:
        return int(src.height)


def resolve_world(args: argparse.Namespace) -> tuple[Path, pl.DataFrame, str, float]:
    """Chips root, the source's manifest rows, the world's kind and its build seconds (0 when reused)."""
    built = 0.0
    if args.world == "demo":
        root: Path = args.chips.resolve()
        if not (root / "manifest.parquet").is_file():
            raise SystemExit(f"{root / 'manifest.parquet'}: not found; run `dvc repro chips` or use --world synthetic")
    else:
        root = (args.workdir / "world").resolve()
        built = synthetic_world(root, args.source, args.chips_per_source, args.chip_px or 64, args.seed)
    manifest = pl.read_parquet(root / "manifest.parquet").filter(pl.col("source") == args.source).sort("chip_id")
    if manifest.is_empty():
        raise SystemExit(f"{root}: no chips of source {args.source!r} in manifest.parquet")
    return root, manifest, args.world, built


# ----------------------------------------------------------------------------------------------------- ours


def ours_run(chips_root: Path, manifest: pl.DataFrame, args: argparse.Namespace) -> dict[str, Any]:
    """Load the bank (one-off), then time `args.batches` batches of `TrainBatches` (epoch after epoch)."""
    start = time.perf_counter()
    bank = load_bank(chips_root, manifest, manifest["chip_id"].to_list())
    load_s = time.perf_counter() - start
    batches = TrainBatches(bank, epoch_rows(bank, args.batch_size), args.batch_size, args.crop_px,
                           tuple(args.crop_scale), args.seed)  # fmt: skip
    samples, first = 0, None
    start = time.perf_counter()
    for batch in take(batches, args.batches):
        samples += batch["image"].shape[0]
        if first is None:
            first = batch
    iter_s = time.perf_counter() - start
    assert first is not None
    return {"load_s": load_s, "iter_s": iter_s, "samples": samples, "batch": describe(first)}


def epoch_rows(bank: ChipBank, batch_size: int) -> torch.Tensor:
    """Every chip once per epoch; repeated when there are fewer chips than a batch, so batches are full."""
    rows = bank.index(bank.chip_ids)
    return rows.repeat(-(-batch_size // len(rows)))


def take(batches: TrainBatches, count: int) -> Iterator[Batch]:
    """`count` batches, starting a new epoch whenever one ends."""
    done = 0
    while done < count:
        for batch in batches:
            yield batch
            done += 1
            if done == count:
                return


def describe(batch: Batch) -> dict[str, Any]:
    """Shapes and dtypes of a batch's tensors (the samples axis excluded from the check, kept for the record)."""
    return {key: {"shape": list(batch[key].shape), "dtype": str(batch[key].dtype)} for key in ("image", "mask")}


# ----------------------------------------------------------------------------------------------------- torchgeo


def torchgeo_dataset(chips_root: Path, manifest: pl.DataFrame) -> IntersectionDataset:
    """The study's dataset: image chips & label chips (the same files as ours, listed one by one)."""
    images = ImageChips([chips_root / p for p in manifest["image_path"]])
    labels = LabelChips([chips_root / p for p in manifest["label_path"]])
    return images & labels


def kornia_augment(crop_px: int, scale: tuple[float, float]) -> K.AugmentationSequential:
    """Batch augmentation as torchgeo's datamodules write it: random resized crop and flips, dict in and out."""
    return K.AugmentationSequential(
        K.RandomResizedCrop((crop_px, crop_px), scale=scale),
        K.RandomVerticalFlip(p=0.5),
        K.RandomHorizontalFlip(p=0.5),
        data_keys=None,
        keepdim=True,
        extra_args={DataKey.MASK: {"resample": Resample.NEAREST, "align_corners": None}},
    )


def torchgeo_run(chips_root: Path, manifest: pl.DataFrame, args: argparse.Namespace, workers: int) -> dict[str, Any]:
    """Build the dataset (one-off), then time `args.batches` batches through sampler, DataLoader and kornia."""
    RasterDataset._cached_load_warp_file.cache_clear()  # one LRU of 128 handles shared by every RasterDataset
    start = time.perf_counter()
    dataset = torchgeo_dataset(chips_root, manifest)
    index_s = time.perf_counter() - start
    generator = torch.Generator().manual_seed(args.seed)
    sampler = RandomGeoSampler(
        dataset, size=args.crop_px, length=args.batches * args.batch_size, units=Units.PIXELS, generator=generator
    )
    loader = DataLoader(
        dataset, batch_size=args.batch_size, sampler=sampler, collate_fn=stack_samples, num_workers=workers
    )
    augment = kornia_augment(args.crop_px, tuple(args.crop_scale))
    torch.manual_seed(args.seed)
    samples, first, augment_s = 0, None, 0.0
    start = time.perf_counter()
    for raw in loader:
        # torchgeo's GeoDataModule drops these before the batch goes to the device and the augmentation
        tick = time.perf_counter()
        batch = augment({k: v for k, v in raw.items() if isinstance(v, torch.Tensor)})
        augment_s += time.perf_counter() - tick
        samples += batch["image"].shape[0]
        if first is None:
            first = batch
    iter_s = time.perf_counter() - start
    RasterDataset._cached_load_warp_file.cache_clear()
    assert first is not None
    return {"index_s": index_s, "iter_s": iter_s, "augment_s": augment_s, "samples": samples, "batch": describe(first)}


def torchgeo_reads(chips_root: Path, manifest: pl.DataFrame, args: argparse.Namespace) -> dict[str, Any]:
    """What one sample costs torchgeo in files: chips hit per query, warping, and the chip's block layout."""
    dataset = torchgeo_dataset(chips_root, manifest)
    images = dataset.datasets[0]
    assert isinstance(images, ImageChips)
    sampler = RandomGeoSampler(
        dataset, size=args.crop_px, length=500, units=Units.PIXELS, generator=torch.Generator().manual_seed(1)
    )
    hits: collections.Counter[int] = collections.Counter()
    for x, y, _ in sampler:
        hits[len(images.index.cx[x.start : x.stop, y.start : y.stop])] += 1
    RasterDataset._cached_load_warp_file.cache_clear()
    handle = images._cached_load_warp_file(images.index.filepath.iloc[0])
    warped = isinstance(handle, WarpedVRT)
    RasterDataset._cached_load_warp_file.cache_clear()
    with rasterio.open(chips_root / manifest["image_path"][0]) as src:
        block = list(src.block_shapes[0])
    with rasterio.open(chips_root / manifest["label_path"][0]) as src:
        label_block = list(src.block_shapes[0])
    return {
        "files_per_query": {str(k): v for k, v in sorted(hits.items())},
        "warped": warped,
        "image_block": block,
        "label_block": label_block,
        "handle_cache": RasterDataset._cached_load_warp_file.cache_info().maxsize,
        "handles_needed": 2 * manifest.height,
    }


# ----------------------------------------------------------------------------------------------------- GPU step


def train_step_rates(
    bank: ChipBank, args: argparse.Namespace, device: torch.device, steps: int | None = None, warmup: int = GPU_WARMUP
) -> dict[str, Any]:
    """Samples/s of CropTask train steps on the harness's batches vs on synthetic tensors on `device`."""
    from curation.core.legends import load_taxonomy  # the model stack only when asked for
    from curation.core.params import load_section
    from curation.core.shared import SharedParams
    from training.config import TrainParams
    from training.train import task_factory

    steps = steps or args.batches
    params = load_section(TrainParams, args.params).model_copy(update={"allow_random_init": True})
    shared = load_section(SharedParams, args.params)
    legends = shared.legends_dir if shared.legends_dir.is_absolute() else ROOT / shared.legends_dir
    num_classes = load_taxonomy(legends / "target.csv").size
    torch.manual_seed(args.seed)
    task = task_factory(params, shared, num_classes)(args.backbone).to(device)
    task.train()
    optimizer = torch.optim.AdamW(
        [p for p in task.parameters() if p.requires_grad], lr=params.lr, weight_decay=params.weight_decay
    )

    def step(batch: Batch) -> None:
        optimizer.zero_grad(set_to_none=True)
        task.criterion(task(batch["image"]), batch["mask"]).backward()
        optimizer.step()

    def timed(batches: Iterator[Batch]) -> tuple[float, int]:
        samples = 0
        for number, batch in enumerate(batches):
            if number == warmup:
                sync(device)
                start = time.perf_counter()
            step(batch)
            samples += batch["image"].shape[0] if number >= warmup else 0
        sync(device)
        return time.perf_counter() - start, samples

    on_device = bank.to(device)
    size = args.gpu_batch_size or args.batch_size
    rows = on_device.index(on_device.chip_ids).repeat(size)  # every batch full, like the synthetic one
    harness = TrainBatches(on_device, rows, size, args.crop_px, tuple(args.crop_scale), args.seed)
    shape = (size, bank.images.shape[1], args.crop_px, args.crop_px)
    synthetic: Batch = {
        "image": torch.randint(0, 10_000, shape, device=device).float(),
        "mask": torch.randint(0, num_classes, (shape[0], *shape[2:]), device=device),
    }
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    result.update(backbone=args.backbone, params=str(args.params), decoder_channels=list(params.model.decoder_channels))
    result["frozen_encoder"] = params.model.frozen_encoder
    runs: dict[str, list[float]] = {"harness": [], "synthetic": []}
    for _ in range(args.repeats):
        seconds, samples = timed(take(harness, steps + warmup))
        runs["harness"].append(samples / seconds)
        seconds, samples = timed(iter([synthetic] * (steps + warmup)))
        runs["synthetic"].append(samples / seconds)
    result["steps"], result["batch_size"] = steps, size
    for key, rates in runs.items():
        result[key] = {"samples_per_s_runs": rates, "samples_per_s": statistics.median(rates)}
    result["ratio"] = result["harness"]["samples_per_s"] / result["synthetic"]["samples_per_s"]
    return result


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------------------------------- main


def summary(runs: list[dict[str, Any]], one_off: str) -> dict[str, Any]:
    """Median rates of a path's runs, without and with its one-off cost (spread over the measured batches)."""
    samples = runs[0]["samples"]
    iter_s = [r["iter_s"] for r in runs]
    setup_s = [r[one_off] for r in runs]
    row: dict[str, Any] = {
        "samples": samples,
        "iter_s": iter_s,
        one_off: setup_s,
        f"{one_off}_median": statistics.median(setup_s),
        "samples_per_s": samples / statistics.median(iter_s),
        "samples_per_s_with_one_off": statistics.median(samples / (r["iter_s"] + r[one_off]) for r in runs),
        "batch": runs[0]["batch"],
    }
    if "augment_s" in runs[0]:  # torchgeo: the share of the time kornia's augmentation takes
        row["augment_share"] = statistics.median(r["augment_s"] / r["iter_s"] for r in runs)
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = bench_parser(__doc__, "runs per path (the median is reported)", "random seed")
    has_demo = (DEMO_CHIPS / "manifest.parquet").is_file()
    parser.add_argument(
        "--world",
        choices=("demo", "synthetic"),
        default="demo" if has_demo else "synthetic",
        help="demo: the chips under --chips (default when data/chips exists); synthetic: written into --workdir",
    )
    parser.add_argument("--chips", type=Path, default=DEMO_CHIPS, help="chips root of --world demo")
    parser.add_argument("--source", default="cdl", help="the one source whose chips are read")
    parser.add_argument("--chip-px", type=int, default=None, help="synthetic chip side (default 64; demo: its own)")
    parser.add_argument("--chips-per-source", type=int, default=60, help="synthetic chips")
    parser.add_argument("--crop-px", type=int, default=32, help="side of a training crop (a multiple of 32)")
    parser.add_argument("--crop-scale", type=float, nargs=2, default=(0.5, 1.0), metavar=("LOW", "HIGH"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=50, help="timed batches per run")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers of torchgeo runs")
    parser.add_argument("--threads", type=int, default=0, help="torch threads of this process (0: torch's default)")
    parser.add_argument("--gpu", action="store_true", help="also time train steps on CUDA (skipped without it)")
    parser.add_argument("--params", type=Path, default=PARAMS, help="params file of the --gpu model (train section)")
    parser.add_argument("--backbone", default="ssl4eo", help="backbone of the --gpu model")
    parser.add_argument("--gpu-batch-size", type=int, default=None, help="batch of the --gpu steps (--batch-size)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cropharmony-bench-training")
    args = parser.parse_args(argv)
    if args.crop_px % 32:
        parser.error("--crop-px must be a multiple of 32 (the U-Net's stride)")
    low, high = args.crop_scale
    if not 0 < low <= high <= 1:
        parser.error("--crop-scale: give 0 < LOW <= HIGH <= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, and return the numbers."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    chips_root, manifest, world, built_s = resolve_world(args)
    chip_px = chip_px_of(chips_root, manifest)
    if args.chip_px is not None and args.chip_px != chip_px:
        raise SystemExit(f"--chip-px {args.chip_px}: the {world} chips are {chip_px} px (use --world synthetic)")
    if args.crop_px > chip_px:
        raise SystemExit(f"--crop-px {args.crop_px} exceeds the chips' {chip_px} px")
    note = "reused" if world == "demo" or not built_s else f"built in {built_s:.1f} s"
    print(f"{world} chips: {chips_root} ({manifest.height} of {args.source}, {chip_px} px, {note})", file=sys.stderr)

    ours: list[dict[str, Any]] = []
    theirs: dict[int, list[dict[str, Any]]] = {w: [] for w in args.workers}
    errors: dict[int, str] = {}
    for repeat in range(args.repeats):  # interleaved, so drift on a shared machine hits every path alike
        ours.append(ours_run(chips_root, manifest, args))
        print(f"  run {repeat + 1}/{args.repeats}: ours {ours[-1]['iter_s']:.2f} s", file=sys.stderr, end="")
        for workers in args.workers:
            if workers in errors:
                continue
            try:
                theirs[workers].append(torchgeo_run(chips_root, manifest, args, workers))
                print(f", torchgeo w{workers} {theirs[workers][-1]['iter_s']:.2f} s", file=sys.stderr, end="")
            except Exception as exc:  # a worker setup that fails is reported, not fatal
                errors[workers] = f"{type(exc).__name__}: {exc}"
        print(file=sys.stderr)
    if not any(theirs.values()):
        raise RuntimeError(f"no torchgeo run succeeded: {errors}")

    paths: dict[str, Any] = {"ours": summary(ours, "load_s")}
    for workers, runs in theirs.items():
        paths[f"torchgeo_w{workers}"] = summary(runs, "index_s") if runs else {"error": errors[workers]}
    reference = paths["ours"]["batch"]
    for name, row in paths.items():
        if "batch" in row and row["batch"] != reference:
            raise AssertionError(f"{name} yields {row['batch']}, ours {reference}: batches differ; benchmark void")

    result: dict[str, Any] = {
        "benchmark": "training_input",
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "world": world,
        "source": args.source,
        "chips": manifest.height,
        "chip_px": chip_px,
        "batch": reference,
        "paths": paths,
        "ratios": {
            name: {
                "ours_over_torchgeo": paths["ours"]["samples_per_s"] / row["samples_per_s"],
                "with_one_off": paths["ours"]["samples_per_s_with_one_off"] / row["samples_per_s_with_one_off"],
            }
            for name, row in paths.items()
            if name != "ours" and "samples_per_s" in row
        },
        "torchgeo_reads": torchgeo_reads(chips_root, manifest, args),
    }
    if args.gpu:
        if torch.cuda.is_available():
            bank = load_bank(chips_root, manifest, manifest["chip_id"].to_list())
            result["gpu"] = train_step_rates(bank, args, torch.device("cuda"))
        else:
            result["gpu"] = {"skipped": "torch.cuda.is_available() is False: no train-step numbers on this machine"}
    print_table(result, args)
    return write_result(args.json, result)


def print_table(result: dict[str, Any], args: argparse.Namespace) -> None:
    """The numbers as a small table."""
    batch = result["batch"]
    print(
        f"training input: {result['chips']} {result['source']} chips of {result['chip_px']} px ({result['world']}), "
        f"batch {args.batch_size} x crop {args.crop_px} px, {args.batches} batches, median of {args.repeats}, "
        f"{result['cpus']} CPUs, {result['torch_threads']} torch threads"
    )
    print(f"batches: image {batch['image']['shape']} {batch['image']['dtype']}, mask {batch['mask']['shape']} "
          f"{batch['mask']['dtype']} (identical on every path)")  # fmt: skip
    print(f"{'path':<44}{'one-off s':>10}{'samples/s':>11}{'with one-off':>14}")
    names = {"ours": "ours: in-memory bank + TrainBatches", **{
        f"torchgeo_w{w}": f"torchgeo: RandomGeoSampler, {w} workers" for w in args.workers}}  # fmt: skip
    for key, name in names.items():
        row = result["paths"][key]
        if "error" in row:
            print(f"{name:<44}  failed: {row['error']}")
            continue
        one_off = row.get("load_s_median", row.get("index_s_median"))
        line = f"{name:<44}{one_off:>10.2f}{row['samples_per_s']:>11.1f}{row['samples_per_s_with_one_off']:>14.1f}"
        print(line + (f"   (kornia: {row['augment_share']:.0%} of the time)" if "augment_share" in row else ""))
    print("(one-off: ours loads the chips into memory; torchgeo indexes the files. 'with one-off' spreads it over "
          f"the {args.batches} batches)")  # fmt: skip
    for name, ratio in result["ratios"].items():
        print(
            f"ratio ours / {name}: {ratio['ours_over_torchgeo']:.1f}x "
            f"({ratio['with_one_off']:.1f}x with the one-off costs)"
        )
    reads = result["torchgeo_reads"]
    print(
        f"torchgeo reads: chips hit per query {reads['files_per_query']}, warped: {reads['warped']}, "
        f"image block {reads['image_block']}, label block {reads['label_block']}, "
        f"handle cache {reads['handle_cache']} for {reads['handles_needed']} files"
    )
    gpu = result.get("gpu")
    if gpu is None:
        return
    if "skipped" in gpu:
        print(f"gpu: skipped ({gpu['skipped']})")
        return
    print(
        f"gpu train step ({gpu['device']}, {gpu['backbone']}, batch {gpu['batch_size']} x {args.crop_px} px, "
        f"{gpu['steps']} steps, median of {args.repeats}):"
    )
    print(f"  harness (TrainBatches on the GPU)   {gpu['harness']['samples_per_s']:>10.1f} samples/s")
    print(f"  model alone (synthetic tensors)     {gpu['synthetic']['samples_per_s']:>10.1f} samples/s")
    print(f"  ratio harness / model alone: {gpu['ratio']:.3f}")


if __name__ == "__main__":
    main()
