"""Chip pictures for the gallery: an RGB composite of the Sentinel-2 chip and its label in the target colours.

Plain numpy and rasterio: the views cache the arrays per file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio

RGB = ("B04", "B03", "B02")
OVERLAY_ALPHA = 0.65  # label colour over the image; ignore pixels show the image dimmed


def band_indexes(descriptions: Sequence[str | None], bands: Sequence[str]) -> list[int]:
    """1-based indexes of B04, B03, B02: from the file's band descriptions, else from the declared band order."""
    named = [d or "" for d in descriptions]
    order = named if all(b in named for b in RGB) else list(bands)
    missing = [b for b in RGB if b not in order]
    if missing:
        raise ValueError(f"bands {', '.join(missing)} not found: the chip's bands are {', '.join(order)}")
    return [order.index(b) + 1 for b in RGB]


def clear_pixels(image: npt.NDArray[np.number], far: float = 4.0) -> npt.NDArray[np.bool_]:
    """Pixels that are not far brighter than the chip's bulk (clouds, haze, saturated pixels are).

    Brightness is the mean over the bands; a pixel is clear unless it lies more than `far` median absolute
    deviations above the median: robust while clouds cover less than half of the chip.
    """
    brightness = image.astype(np.float64).mean(axis=0)
    median = float(np.median(brightness))
    spread = float(np.median(np.abs(brightness - median)))
    clear: npt.NDArray[np.bool_] = brightness <= median + far * max(spread, 1e-9)
    return clear


def stretch(image: npt.NDArray[np.number], low: float = 2.0, high: float = 98.0) -> npt.NDArray[np.uint8]:
    """Per-band percentile stretch to 0-255, per chip (reflectance ranges differ by region and season).

    The percentiles come from the chip's clear pixels (`clear_pixels`), so a cloud over part of a chip shows white
    instead of darkening the fields to black; where the clear pixels of a band are flat, from all its pixels.
    """
    out = np.empty(image.shape, dtype=np.uint8)
    clear = clear_pixels(image)
    for i, band in enumerate(image.astype(np.float64)):
        lo, hi = np.percentile(band[clear], [low, high]) if clear.any() else (0.0, 0.0)
        if hi <= lo:
            lo, hi = np.percentile(band, [low, high])
        scaled = (band - lo) / (hi - lo) if hi > lo else np.zeros_like(band)
        out[i] = np.clip(scaled * 255.0, 0, 255).astype(np.uint8)
    return out


def side_by_side(*pictures: npt.NDArray[np.uint8], gap: int = 2, scale: int = 1) -> npt.NDArray[np.uint8]:
    """RGB pictures of one height in a row, `gap` white pixels apart, each pixel repeated `scale` times (crisp)."""
    height = pictures[0].shape[0]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts: list[npt.NDArray[np.uint8]] = []
    for i, picture in enumerate(pictures):
        parts += [spacer, picture] if i else [picture]
    row = np.concatenate(parts, axis=1)
    out: npt.NDArray[np.uint8] = np.repeat(np.repeat(row, scale, axis=0), scale, axis=1) if scale > 1 else row
    return out


def rgb_composite(path: Path, bands: Sequence[str]) -> npt.NDArray[np.uint8]:
    """The chip as an RGB picture (height, width, 3)."""
    with rasterio.open(path) as src:
        data = src.read(band_indexes(src.descriptions, bands))
    return np.moveaxis(stretch(data), 0, -1)


def palette(ids: Sequence[int], colors: Sequence[str]) -> npt.NDArray[np.uint8]:
    """A 256-entry RGB lookup table of the class colours (#rrggbb), black for ids without a class."""
    table = np.zeros((256, 3), dtype=np.uint8)
    for class_id, color in zip(ids, colors, strict=True):
        table[class_id] = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return table


def label_overlay(
    rgb: npt.NDArray[np.uint8], labels: npt.NDArray[np.integer], table: npt.NDArray[np.uint8], ignore_id: int = 0
) -> npt.NDArray[np.uint8]:
    """Class colours blended over the picture; ignore pixels keep the picture, dimmed."""
    colors = table[labels.astype(np.intp)].astype(np.float64)
    base = rgb.astype(np.float64)
    blended = OVERLAY_ALPHA * colors + (1 - OVERLAY_ALPHA) * base
    ignored = (labels == ignore_id)[..., None]
    out: npt.NDArray[np.uint8] = np.where(ignored, base * 0.4, blended).round().astype(np.uint8)
    return out


def read_labels(path: Path) -> npt.NDArray[np.uint8]:
    """A label chip's class ids."""
    with rasterio.open(path) as src:
        labels: npt.NDArray[np.uint8] = src.read(1).astype(np.uint8)
    return labels
