"""Label chips from a CDL-like raster: windowed read + lookup table (ours) vs whole-raster harmonization (the study).

Method A (ours): for each chip, `CDL.read_labels` reads only the window under the chip, warps it onto the chip grid,
and `remap_raster` maps codes to class ids with one gather through a lookup table.
Method B (baseline, the original study's scripts): read the whole raster, harmonize it with one boolean mask per
target class (`out[np.isin(arr, codes)] = class_id`), write the harmonized raster to a GeoTIFF, then cut each chip
by warping from that file (nearest). B's whole-raster work is amortized over the N chips, as in the study.
Both methods must give identical chips, else the run fails. Prints the median times and the ratio B/A.

Run: `uv run python benchmarks/bench_label_chips.py --size 12000 --chips 200 --repeats 3`
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from common import bench_parser, write_result
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform
from rasterio.windows import Window

from curation.core.legends import load_set
from curation.core.remap import Crosswalk, remap_raster
from curation.sources.base import ChipGrid
from curation.sources.cdl import CDL

ROOT = Path(__file__).resolve().parents[1]
LEGENDS = ROOT / "curation" / "legends"
CDL_CRS = CRS.from_epsg(5070)
CHIP_CRSS = (CRS.from_epsg(3857), CRS.from_epsg(32615))  # the study's Web Mercator chips, and UTM 15N
ORIGIN = (105.0, 2299995.0)  # upper-left corner on CDL's 30 m grid, in Iowa (EPSG:5070)
PIXEL = 30.0
CHIP_RES = 10.0
BLOCK = 256
FIELD_PX = 27  # a quarter section (~805 m) per field
SPECKLE = 0.03  # share of single-pixel noise, like CDL's salt and pepper
CODES = np.array([1, 5, 3, 24, 26, 176, 141, 111, 121, 0], dtype=np.uint8)
WEIGHTS = np.array([0.30, 0.30, 0.03, 0.07, 0.05, 0.10, 0.05, 0.03, 0.05, 0.02])
Chips = list[npt.NDArray[np.uint8]]


def raster_profile(size: int) -> dict[str, Any]:
    """GeoTIFF profile of the synthetic CDL (and of the baseline's harmonized raster)."""
    return {
        "driver": "GTiff", "dtype": "uint8", "count": 1, "width": size, "height": size, "crs": CDL_CRS,
        "transform": Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1]),
        "tiled": True, "blockxsize": BLOCK, "blockysize": BLOCK, "compress": "deflate",
    }  # fmt: skip


def write_cdl(path: Path, size: int, seed: int) -> None:
    """Write a blocky CDL-like raster strip by strip (memory stays at one 256-row strip), unless already cached."""
    if path.is_file():
        with rasterio.open(path) as src:
            if src.width == size and src.tags().get("seed") == str(seed):
                return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_fields = math.ceil(size / FIELD_PX)
    fields = rng.choice(CODES, size=(n_fields, n_fields), p=WEIGHTS)
    cols = np.arange(size) // FIELD_PX
    with rasterio.open(path, "w", **raster_profile(size)) as dst:
        dst.update_tags(seed=str(seed))
        for row0 in range(0, size, BLOCK):
            rows = np.arange(row0, min(row0 + BLOCK, size)) // FIELD_PX
            strip = fields[rows][:, cols]
            noise = rng.random(strip.shape) < SPECKLE
            strip[noise] = rng.choice(CODES, size=int(noise.sum()), p=WEIGHTS)
            dst.write(strip, 1, window=Window(0, row0, size, len(rows)))


def chip_grids(size: int, n: int, chip_px: int, seed: int) -> list[ChipGrid]:
    """`n` chip grids (10 m, alternately EPSG:3857 and UTM 15N) at seeded random places inside the raster."""
    rng = np.random.default_rng(seed + 1)
    left, top = ORIGIN
    extent = (left, top - size * PIXEL, left + size * PIXEL, top)
    half = chip_px * CHIP_RES / 2
    if 4 * half >= size * PIXEL:
        raise ValueError(f"chips of {chip_px} px at 10 m need --size over {4 * half / PIXEL:.0f}, got {size}")
    grids: list[ChipGrid] = []
    while len(grids) < n:
        cx, cy = rng.uniform(extent[0] + 2 * half, extent[2] - 2 * half, size=2)  # square raster: x and y alike
        cy = cy - extent[0] + extent[1]
        crs = CHIP_CRSS[len(grids) % len(CHIP_CRSS)]
        (x,), (y,) = transform(CDL_CRS, crs, [cx], [cy])
        chip_left, chip_top = math.floor((x - half) / CHIP_RES) * CHIP_RES, math.floor((y + half) / CHIP_RES) * CHIP_RES
        grid = ChipGrid(crs, Affine(CHIP_RES, 0, chip_left, 0, -CHIP_RES, chip_top), chip_px, chip_px, f"c{len(grids)}")
        b = grid.bounds_in(CDL_CRS)
        if b[0] > extent[0] and b[1] > extent[1] and b[2] < extent[2] and b[3] < extent[3]:
            grids.append(grid)
    return grids


def method_a(root: Path, grids: list[ChipGrid], crosswalk: Crosswalk) -> Chips:
    """Ours: a windowed, warped read per chip, then one lookup-table gather."""
    source = CDL(root, year=2023)
    return [remap_raster(source.read_labels(grid), crosswalk, grid.chip_id) for grid in grids]


def harmonize_by_masks(arr: npt.NDArray[np.uint8], crosswalk: Crosswalk) -> npt.NDArray[np.uint8]:
    """The study's harmonization: one boolean mask over the whole raster per target class."""
    out = np.zeros_like(arr)
    for class_id in crosswalk.taxonomy.ids:
        codes_of_class = crosswalk.codes[crosswalk.targets == class_id]
        if len(codes_of_class):
            out[np.isin(arr, codes_of_class)] = class_id
    return out


def method_b(cdl_path: Path, out_path: Path, grids: list[ChipGrid], crosswalk: Crosswalk) -> Chips:
    """Baseline: harmonize and write the whole raster, then warp every chip out of the harmonized file."""
    with rasterio.open(cdl_path) as src:
        arr, profile = src.read(1), src.profile
    harmonized = harmonize_by_masks(arr, crosswalk)
    del arr
    with rasterio.open(out_path, "w", **profile) as dst:
        dst.write(harmonized, 1)
    del harmonized
    chips: Chips = []
    with rasterio.open(out_path) as src:
        for grid in grids:
            chip = np.zeros(grid.shape, dtype=np.uint8)
            reproject(
                rasterio.band(src, 1), chip, dst_transform=grid.transform, dst_crs=grid.crs,
                resampling=Resampling.nearest,
            )  # fmt: skip
            chips.append(chip)
    return chips


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def timed(fn: Callable[[], Chips], repeats: int, label: str) -> tuple[list[float], Chips]:
    """Run `fn` `repeats` times; return every wall time and the last run's chips."""
    times: list[float] = []
    chips: Chips = []
    for i in range(repeats):
        start = time.perf_counter()
        chips = fn()
        times.append(time.perf_counter() - start)
        print(f"  {label} run {i + 1}/{repeats}: {times[-1]:.2f} s", file=sys.stderr)
    return times, chips


def method_row(times: list[float], n_chips: int, rss_mb: float) -> dict[str, Any]:
    """One method's numbers: every run, the median, the median per chip, and the process's peak RSS so far."""
    median = statistics.median(times)
    return {"times_s": times, "median_s": median, "per_chip_s": median / n_chips, "peak_rss_mb": rss_mb}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = bench_parser(
        __doc__, "timed runs per method (the median is reported)", "seed of the raster and the chip positions"
    )
    parser.add_argument("--size", type=int, default=12000, help="raster width and height in 30 m pixels")
    parser.add_argument("--chips", type=int, default=200, help="number of chips to cut")
    parser.add_argument("--chip-px", type=int, default=256, help="chip width and height in 10 m pixels")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cropharmony-bench-label-chips")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, and return the numbers."""
    args = parse_args(argv)
    cdl_root = args.workdir / "cdl"
    cdl_path = cdl_root / "2023_30m_cdls.tif"
    start = time.perf_counter()
    write_cdl(cdl_path, args.size, args.seed)
    print(f"raster ready: {cdl_path} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    crosswalk = load_set(LEGENDS, "toolkit")["cdl"]
    grids = chip_grids(args.size, args.chips, args.chip_px, args.seed)
    harmonized_path = args.workdir / "baseline" / "harmonized.tif"
    harmonized_path.parent.mkdir(parents=True, exist_ok=True)

    times_a, chips_a = timed(lambda: method_a(cdl_root, grids, crosswalk), args.repeats, "A windowed+LUT")
    rss_a = peak_rss_mb()
    times_b, chips_b = timed(lambda: method_b(cdl_path, harmonized_path, grids, crosswalk), args.repeats, "B study")
    rss_b = peak_rss_mb()
    for grid, a, b in zip(grids, chips_a, chips_b, strict=True):
        if not np.array_equal(a, b):
            raise AssertionError(f"chip {grid.chip_id}: methods differ in {int((a != b).sum())} pixels; benchmark void")

    result: dict[str, Any] = {
        "benchmark": "label_chips",
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "raster_mb": args.size * args.size / 1e6,
        "identical_chips": len(grids),
        "a_windowed_lut": method_row(times_a, len(grids), rss_a),
        "b_study_whole_raster": method_row(times_b, len(grids), rss_b),
        "speedup": statistics.median(times_b) / statistics.median(times_a),
    }  # fmt: skip
    p = result["params"]
    print(
        f"label chips: raster {p['size']}x{p['size']} uint8 ({result['raster_mb']:.0f} MB), {p['chips']} chips of "
        f"{p['chip_px']} px at 10 m (EPSG:3857 / UTM 15N), median of {p['repeats']}, seed {p['seed']}"
    )
    print(f"{'method':<44}{'total s':>10}{'s / chip':>12}{'peak RSS MB':>14}")
    rows = (
        ("A ours: windowed read + LUT", "a_windowed_lut"),
        ("B study: whole raster + masks + warp", "b_study_whole_raster"),
    )
    for name, key in rows:
        row = result[key]
        print(f"{name:<44}{row['median_s']:>10.3f}{row['per_chip_s']:>12.5f}{row['peak_rss_mb']:>14.0f}")
    print(f"chips identical: {len(grids)}/{len(grids)}")
    print(f"speed-up: {result['speedup']:.1f}x")
    return write_result(args.json, result)


if __name__ == "__main__":
    main()
