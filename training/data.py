"""Chips in memory, batches made on the device: the training loop reads no file per step.

A run's chips are read once into one uint16 block (kept as int16 bits, which every CUDA kernel handles) and moved
to the GPU when there is one. Each batch is a gather from that block, a random resized crop done with one affine
`grid_sample` for the whole batch, and random flips: no Python loop over samples, no worker processes. Chips are
square (`shared.chip_px`), so crop shares of the side hold for both axes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import rasterio
import torch
import torch.nn.functional as F
from tqdm import tqdm

from curation.core.artifacts import MANIFEST
from curation.core.errors import Problem, ProblemsError
from training.distributed import rank_and_world

Batch = dict[str, torch.Tensor]


class ChipReadError(ProblemsError):
    """A chip listed in the manifest cannot be read as the harness expects."""


@dataclass
class ChipBank:
    """Every chip of a run in memory: images [N, bands, H, W] as int16 bits of uint16, labels [N, H, W] uint8."""

    chip_ids: tuple[str, ...]
    images: torch.Tensor
    labels: torch.Tensor

    @property
    def device(self) -> torch.device:
        """Where the block lives."""
        return self.images.device

    def to(self, device: torch.device | str) -> ChipBank:
        """The same block on `device` (one copy; no-op when already there)."""
        return ChipBank(self.chip_ids, self.images.to(device), self.labels.to(device))

    def index(self, chip_ids: Sequence[str]) -> torch.Tensor:
        """Row numbers of `chip_ids`, on the bank's device."""
        position = {chip_id: i for i, chip_id in enumerate(self.chip_ids)}
        missing = [c for c in chip_ids if c not in position]
        if missing:
            raise KeyError(f"chips not loaded: {missing[:3]}")
        return torch.tensor([position[c] for c in chip_ids], dtype=torch.long, device=self.device)

    def gather(self, rows: torch.Tensor) -> Batch:
        """Float images (raw reflectance values) and long labels of `rows`."""
        picked = self.images.index_select(0, rows)
        if picked.device.type == "cpu":  # uint16 converts directly on the CPU (3x faster than via int32)
            image = picked.view(torch.uint16).float()
        else:
            image = (picked.to(torch.int32) & 0xFFFF).float()
        return {"image": image, "mask": self.labels.index_select(0, rows).long()}


def _read_pair(root: Path, image: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with rasterio.open(root / image) as src:
            pixels = src.read()
        with rasterio.open(root / label) as src:
            classes = src.read(1)
    except rasterio.RasterioIOError as exc:
        raise ChipReadError(
            "cannot read a chip",
            [Problem(str(root / image), "readable chip and label", str(exc), "re-run `dvc repro chips`")],
        ) from exc
    if pixels.dtype != np.uint16 or classes.dtype != np.uint8 or pixels.shape[1:] != classes.shape:
        raise ChipReadError(
            "unexpected chip layout",
            [
                Problem(
                    str(root / image),
                    "uint16 image and uint8 label on one grid",
                    f"image {pixels.dtype}{pixels.shape}, label {classes.dtype}{classes.shape}",
                    "re-run `dvc repro chips`",
                )
            ],
        )
    return pixels, classes


def load_bank(chips_root: Path, manifest: pl.DataFrame, chip_ids: Sequence[str], threads: int = 4) -> ChipBank:
    """Read `chip_ids` (paths from the manifest, relative to `chips_root`) into one in-memory block."""
    ids = list(dict.fromkeys(chip_ids))
    rows = manifest.filter(pl.col("chip_id").is_in(ids)).unique("chip_id", keep="first")
    paths = dict(zip(rows["chip_id"], zip(rows["image_path"], rows["label_path"], strict=True), strict=True))
    missing = [c for c in ids if c not in paths]
    if missing:
        raise ChipReadError(
            "chips missing from the manifest",
            [
                Problem(
                    str(chips_root / MANIFEST),
                    "lists every subset chip",
                    f"{missing[:3]}",
                    "re-run `dvc repro`",
                )
            ],
        )
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pairs = list(
            tqdm(
                pool.map(lambda c: _read_pair(chips_root, *paths[c]), ids),
                total=len(ids),
                desc="load chips",
                disable=len(ids) < 200,
            )
        )
    shapes = {p.shape for p, _ in pairs}
    if len(shapes) != 1:
        raise ChipReadError(
            "chips differ in shape",
            [
                Problem(
                    str(chips_root), "one chip shape per run", f"{sorted(shapes)}", "chip all sources at one chip_px"
                )
            ],
        )
    images = torch.from_numpy(np.stack([p for p, _ in pairs]).view(np.int16))
    labels = torch.from_numpy(np.stack([c for _, c in pairs]))
    return ChipBank(tuple(ids), images, labels)


SQUARE = (1.0, 1.0)
CROP_TRIES = 10  # kornia's RandomResizedCrop draws ten (area, ratio) candidates per sample


def crop_sides(
    batch: int, scale: tuple[float, float], ratio: tuple[float, float], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height of random crops as shares of a square chip's side.

    Square crops take one area draw each. Other ratio ranges follow kornia's `RandomResizedCrop` (and
    torchvision's): ten draws of area and log-uniform width / height, the first that fits the chip wins, and a
    sample none fits falls back to the largest crop of the range's nearest ratio (the whole chip when it holds 1).
    """
    if ratio == SQUARE:
        side = torch.empty(batch).uniform_(scale[0], scale[1], generator=generator).sqrt()
        return side, side
    area = torch.empty(batch, CROP_TRIES).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(batch, CROP_TRIES).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    width, height = (area * log_ratio.exp()).sqrt(), (area / log_ratio.exp()).sqrt()
    fits = (width <= 1) & (height <= 1)
    first = (fits.cumsum(1) == 1) & fits
    index = first.int().argmax(1, keepdim=True)
    width, height = width.gather(1, index).squeeze(1), height.gather(1, index).squeeze(1)
    fallback = (1.0, 1.0 / ratio[0]) if ratio[0] > 1 else (ratio[1], 1.0) if ratio[1] < 1 else SQUARE
    found = fits.any(1)
    return torch.where(found, width, fallback[0]), torch.where(found, height, fallback[1])


def crop_thetas(
    batch: int, scale: tuple[float, float], generator: torch.Generator, ratio: tuple[float, float] = SQUARE
) -> torch.Tensor:
    """Affine matrices [B, 2, 3] of random resized crops with random flips, drawn on the CPU from `generator`.

    A flip of the resampled crop is the crop of the flipped chip at the mirrored place, and the place is uniform,
    so folding the flips into the matrix draws what crop-then-flip (the study's order) draws. The draws stay on
    the CPU (the same numbers on every device); the grids they give are built where the batch is (`augment`).
    """
    width, height = crop_sides(batch, scale, ratio, generator)
    sides = torch.stack([width, height], dim=1)
    centre = (torch.rand(batch, 2, generator=generator) * 2 - 1) * (1 - sides)
    flips = torch.where(torch.rand(batch, 2, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = width * flips[:, 0]
    theta[:, 1, 1] = height * flips[:, 1]
    theta[:, :, 2] = centre
    return theta


def crop_grids(
    batch: int,
    out_px: int,
    scale: tuple[float, float],
    generator: torch.Generator,
    ratio: tuple[float, float] = SQUARE,
) -> torch.Tensor:
    """Sampling grids of `crop_thetas`' crops, [B, out, out, 2] in [-1, 1] coordinates, every crop out x out."""
    return grids_of(crop_thetas(batch, scale, generator, ratio), out_px)


def grids_of(theta: torch.Tensor, out_px: int) -> torch.Tensor:
    """The sampling grids of crop matrices, on the matrices' device."""
    return F.affine_grid(theta, [theta.shape[0], 1, out_px, out_px], align_corners=False)


def augment(batch: Batch, theta: torch.Tensor, out_px: int) -> Batch:
    """Resample a batch through its crop matrices: bilinear for reflectance, nearest for class ids.

    The grid is built on the batch's device from the [B, 2, 3] matrices: a 256 px grid of a batch of 128 is 64 MB,
    which built on the CPU and copied would cost more than the step's input.
    """
    grids = grids_of(theta.to(batch["image"].device), out_px)
    image = F.grid_sample(batch["image"], grids, mode="bilinear", padding_mode="border", align_corners=False)
    mask = F.grid_sample(batch["mask"].unsqueeze(1).float(), grids, mode="nearest", align_corners=False)
    return {"image": image, "mask": mask.squeeze(1).long()}


SAMPLINGS = ("permutation", "with_replacement", "class_balanced")


def chip_class_pixels(bank: ChipBank, rows: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[rows, K] pixels per class id of each chip: its label's counts, the manifest's `px_<class>` columns."""
    labels = bank.labels.index_select(0, rows).flatten(1).long()
    offsets = torch.arange(len(rows), device=labels.device).unsqueeze(1) * num_classes
    counts = torch.bincount((labels + offsets).flatten(), minlength=len(rows) * num_classes)
    return counts.reshape(len(rows), num_classes)


def balanced_chip_weights(counts: torch.Tensor, ignore_index: int = 0) -> torch.Tensor:
    """Draw weights of chips by their rare-class content: each class's pixel share of a chip, summed over classes.

    A chip's weight is the sum over real classes of its pixels of the class / the class's pixels in all the rows,
    so every class present carries the same total weight, spread over its chips by their share of it: a chip
    holding most of the rare class's pixels is drawn as often as all the chips of the common one together. Chips
    with no labelled pixel weigh 0; when no chip has one, every chip weighs the same.
    """
    counts = counts.double().clone()
    counts[:, ignore_index] = 0
    totals = counts.sum(dim=0)
    shares = torch.where(totals > 0, counts / totals.clamp(min=1), torch.zeros_like(counts))
    weights = shares.sum(dim=1)
    return weights if bool((weights > 0).any()) else torch.ones(len(counts), dtype=torch.float64)


class TrainBatches:
    """An epoch of augmented batches drawn from a bank; every `iter()` is a new seeded epoch.

    An epoch is one permutation of the rows, or (`with_replacement`) as many uniform draws as there are rows, as
    torchgeo's RandomGeoSampler gave the study, or (`class_balanced`) as many draws weighted by each chip's rare-class
    content (`balanced_chip_weights`; `num_classes` needed). Under DDP every rank draws the same epoch and takes
    every world-size-th batch of it, so ranks see disjoint batches of one permutation. Each rank must step as often
    as the others (a gradient is a collective): where the batches do not divide evenly, the short ranks repeat the
    epoch's first batches, as torch's DistributedSampler pads. `shard=False` gives every rank the whole epoch (the
    BatchNorm calibration every rank runs alike).
    """

    def __init__(
        self,
        bank: ChipBank,
        rows: torch.Tensor,
        batch_size: int,
        crop_px: int,
        scale: tuple[float, float],
        seed: int,
        ratio: tuple[float, float] = SQUARE,
        sampling: str = "permutation",
        num_classes: int | None = None,
        shard: bool = True,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling is one of {', '.join(SAMPLINGS)}, got {sampling!r}")
        if sampling == "class_balanced" and num_classes is None:
            raise ValueError("class_balanced sampling weighs chips by class: give num_classes")
        self.bank = bank
        self.rows = rows
        self.batch_size = batch_size
        self.crop_px = crop_px
        self.scale = scale
        self.ratio = ratio
        self.sampling = sampling
        self.shard = shard
        self.generator = torch.Generator().manual_seed(seed)
        self.weights: torch.Tensor | None = None
        if sampling == "class_balanced" and num_classes is not None:
            self.weights = balanced_chip_weights(chip_class_pixels(bank, rows, num_classes)).cpu()

    def _shard(self) -> tuple[int, int]:
        return rank_and_world() if self.shard else (0, 1)

    def _bounds(self) -> list[tuple[int, int]]:
        """Batch slices; a last batch of one chip joins the one before (BatchNorm needs two samples at 1x1)."""
        bounds = [(s, min(s + self.batch_size, len(self.rows))) for s in range(0, len(self.rows), self.batch_size)]
        if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
            bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]
        return bounds

    def _numbers(self, count: int) -> list[int]:
        """This rank's batch numbers among `count`: every world-size-th, padded from the start to equal shares."""
        rank, world = self._shard()
        steps = math.ceil(count / world)
        return [(rank + world * step) % count for step in range(steps)]

    def __len__(self) -> int:
        return len(self._numbers(len(self._bounds())))

    def __iter__(self) -> Iterator[Batch]:
        count = len(self.rows)
        if self.weights is not None:
            picks = torch.multinomial(self.weights, count, replacement=True, generator=self.generator)
        elif self.sampling == "with_replacement":
            picks = torch.randint(count, (count,), generator=self.generator)
        else:
            picks = torch.randperm(count, generator=self.generator)
        order = self.rows[picks.to(self.rows.device)]
        bounds = self._bounds()
        thetas = [crop_thetas(stop - start, self.scale, self.generator, self.ratio) for start, stop in bounds]
        for number in self._numbers(len(bounds)):
            start, stop = bounds[number]
            yield augment(self.bank.gather(order[start:stop]), thetas[number], self.crop_px)


class EvalBatches:
    """Whole chips in a fixed order, no augmentation: validation and test.

    Under DDP (`shard=True`, validation) rank r takes every world-size-th chip from the r-th, and the task adds the
    ranks' sums up (`CropTask.on_validation_epoch_end`): a whole-set figure, each chip scored once. A rank left
    without chips gets one empty batch, so that it still joins the sum.
    """

    def __init__(self, bank: ChipBank, rows: torch.Tensor, batch_size: int, shard: bool = False) -> None:
        self.bank = bank
        self.rows = rows
        self.batch_size = batch_size
        self.shard = shard

    def _mine(self) -> torch.Tensor:
        rank, world = rank_and_world() if self.shard else (0, 1)
        return self.rows[rank::world]

    def __len__(self) -> int:
        batches = math.ceil(len(self._mine()) / self.batch_size)
        return max(batches, 1) if self.shard else batches

    def __iter__(self) -> Iterator[Batch]:
        rows = self._mine()
        if self.shard and not len(rows):
            yield self.bank.gather(rows)
        for start in range(0, len(rows), self.batch_size):
            yield self.bank.gather(rows[start : start + self.batch_size])


def class_pixels(bank: ChipBank, rows: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Pixels per class id over `rows` (for class-balanced loss weights)."""
    return torch.bincount(bank.labels.index_select(0, rows).flatten().long(), minlength=num_classes)[:num_classes]
