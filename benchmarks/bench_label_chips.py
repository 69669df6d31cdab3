"""Label chips from a CDL-like raster: windowed read + lookup table (ours) vs whole-raster harmonization (the study).

Method A (ours): for each chip, `CDL.read_labels` reads only the window under the chip, warps it onto the chip grid,
and `remap_raster` maps codes to class ids with one gather through a lookup table.
Method B (baseline, the original study's scripts): read the whole raster, harmonize it with one boolean mask per
target class (`out[np.isin(arr, codes)] = class_id`), write the harmonized raster to a GeoTIFF, then cut each chip
by warping from that file (nearest). B's whole-raster work is amortized over the N chips, as in the study.
Both methods must give identical chips, else the run fails. Prints the median times and the ratio B/A.

CONUS mode (`--conus`): a CDL raster of the real CONUS size (151,552 x 98,304 px by default) that costs no disk, a
VRT mosaic referencing one tiled 4096 px tile again and again (the real CDL sample's codes when ../shared/samples
is there). Per chip it times our read (`CDL.read_labels`) against a plain windowed read of the same window through
the same open dataset, interleaved chip by chip, each timed read after an untimed read of another chip's window (so
that neither finds blocks the other has just decoded; `--no-evict` drops it), and reports the ratio (target <=
1.5x); it also times GDAL's warp of the same window (`warp_window_gdal`, the read before), checks our chips equal
it, and states what the study's whole-raster method would hold in memory at that size (computed, not run: about 16
bytes per pixel).

Run: `uv run python benchmarks/bench_label_chips.py --size 12000 --chips 200 --repeats 3`
     `OMP_NUM_THREADS=1 uv run python benchmarks/bench_label_chips.py --conus --chips 300 --repeats 5`
"""

from __future__ import annotations

import argparse
import math
import os
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
from curation.sources import raster
from curation.sources.base import ChipGrid
from curation.sources.cdl import CDL

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared" / "samples" / "cdl_2021_clip" / "2021_30m_cdls.tif"  # real CDL codes, when present
CONUS_ORIGIN = (-2356095.0, 3172605.0)  # the CONUS CDL's upper-left corner (EPSG:5070)
STUDY_BYTES_PER_PX = 16  # the study's harmonization: uint8 raster, np.isin's int64 copy, masks, the uint8 output
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
    conus = parser.add_argument_group("CONUS mode")
    conus.add_argument("--conus", action="store_true", help="per-chip cost on a CONUS-sized raster (a VRT mosaic)")
    conus.add_argument("--conus-size", default="151552x98304", help="raster width x height in 30 m pixels")
    conus.add_argument("--tile", type=int, default=4096, help="the mosaic's tile, width and height in pixels")
    conus.add_argument("--block", type=int, default=512, help="the tile's GeoTIFF block size")
    conus.add_argument("--synthetic-tile", action="store_true", help="synthetic codes even where the sample is")
    conus.add_argument("--gdal-cache-mb", type=int, default=0, help="GDAL's block cache (0: every read decodes)")
    conus.add_argument("--gdal-chips", type=int, default=30, help="chips also warped by GDAL (timed and compared)")
    conus.add_argument(
        "--no-evict", action="store_true", help="no read of another window before each timed read (ours reads warm)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, and return the numbers."""
    args = parse_args(argv)
    if args.conus:
        return conus(args)
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


# ---------------------------------------------------------------- CONUS mode


def write_tile(path: Path, tile: int, block: int, seed: int, synthetic: bool) -> str:
    """The mosaic's one tile, tiled and deflated like a CDL product: the real sample's codes repeated, or synthetic."""
    source = "synthetic" if synthetic or not SAMPLE.is_file() else f"real CDL sample ({SAMPLE.name})"
    tag = f"{source} {tile} {block} {seed}"
    if path.is_file():
        with rasterio.open(path) as src:
            if src.tags().get("made_as") == tag:
                return source
    if source == "synthetic":
        scratch = path.with_name("synthetic.tif")
        write_cdl(scratch, tile, seed)
        with rasterio.open(scratch) as src:
            data = src.read(1)
        scratch.unlink()
    else:
        with rasterio.open(SAMPLE) as src:
            clip = src.read(1)
        reps = math.ceil(tile / clip.shape[0])
        data = np.tile(clip, (reps, reps))[:tile, :tile]
    profile = raster_profile(tile) | {"blockxsize": block, "blockysize": block}
    profile["transform"] = Affine(PIXEL, 0, CONUS_ORIGIN[0], 0, -PIXEL, CONUS_ORIGIN[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.update_tags(made_as=tag)
        dst.write(data, 1)
    return source


def write_mosaic(path: Path, tile_path: Path, width: int, height: int, tile: int, block: int) -> None:
    """A VRT (named like the product, so the CDL reader finds it) placing the one tile over the whole raster."""
    if width % tile or height % tile:
        raise ValueError(f"--conus-size {width}x{height} is not a whole number of {tile} px tiles")
    props = f'<SourceProperties RasterXSize="{tile}" RasterYSize="{tile}" DataType="Byte" BlockXSize="{block}" '
    props += f'BlockYSize="{block}"/><SrcRect xOff="0" yOff="0" xSize="{tile}" ySize="{tile}"/>'
    sources = "".join(
        f'<SimpleSource><SourceFilename relativeToVRT="1">{tile_path.name}</SourceFilename><SourceBand>1</SourceBand>'
        f'{props}<DstRect xOff="{col * tile}" yOff="{row * tile}" xSize="{tile}" ySize="{tile}"/></SimpleSource>'
        for row in range(height // tile)
        for col in range(width // tile)
    )
    left, top = CONUS_ORIGIN
    path.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{CDL_CRS.to_wkt()}</SRS>'
        f"<GeoTransform>{left!r}, {PIXEL!r}, 0.0, {top!r}, 0.0, {-PIXEL!r}</GeoTransform>"
        f'<VRTRasterBand dataType="Byte" band="1">{sources}</VRTRasterBand></VRTDataset>\n',
        encoding="utf-8",
    )


def conus_grids(width: int, height: int, n: int, chip_px: int, seed: int) -> list[ChipGrid]:
    """`n` 10 m chip grids at seeded random places over the raster, away from its edges.

    Alternately in EPSG:3857 (the study's chips) and in the UTM zone of their centre.
    """
    rng = np.random.default_rng(seed + 2)
    left, top = CONUS_ORIGIN
    margin = 4 * chip_px * CHIP_RES
    half = chip_px * CHIP_RES / 2
    grids: list[ChipGrid] = []
    for i in range(n):
        cx = rng.uniform(left + margin, left + width * PIXEL - margin)
        cy = rng.uniform(top - height * PIXEL + margin, top - margin)
        (lon,), _ = transform(CDL_CRS, CRS.from_epsg(4326), [cx], [cy])
        crs = CHIP_CRSS[0] if i % 2 == 0 else CRS.from_epsg(32600 + int((lon + 180) // 6) + 1)
        (x,), (y,) = transform(CDL_CRS, crs, [cx], [cy])
        chip_left, chip_top = math.floor((x - half) / CHIP_RES) * CHIP_RES, math.floor((y + half) / CHIP_RES) * CHIP_RES
        grids.append(ChipGrid(crs, Affine(CHIP_RES, 0, chip_left, 0, -CHIP_RES, chip_top), chip_px, chip_px, f"c{i}"))
    return grids


def evict(file: raster.RasterFile, windows: list[Window | None], k: int, skip: bool) -> None:
    """Read another chip's window, untimed, so that the read timed next decodes its blocks as a chip's first read does.

    The plain read and ours read the same window one after the other: without this, the second costs much less
    than the first (about 0.27 against 0.42 ms, GDAL's cache off), as no chip of a real run does.
    """
    window = windows[k % len(windows)]
    if not skip and window is not None:
        raster.read_window(file, window)


def conus(args: argparse.Namespace) -> dict[str, Any]:
    """Per-chip cost of our read on a CONUS-sized raster against a plain windowed read of the same window."""
    width, height = (int(v) for v in args.conus_size.lower().split("x"))
    folder = args.workdir / "conus"
    tile_path = folder / "tile.tif"
    source_name = write_tile(tile_path, args.tile, args.block, args.seed, args.synthetic_tile)
    write_mosaic(folder / "2023_30m_cdls.tif", tile_path, width, height, args.tile, args.block)
    grids = conus_grids(width, height, args.chips, args.chip_px, args.seed)
    reader = CDL(folder, year=2023)
    (file,) = reader.index()
    wall: dict[str, list[float]] = {"ours": [], "plain": []}
    cpu: dict[str, list[float]] = {"ours": [], "plain": []}
    with rasterio.Env(GDAL_CACHEMAX=args.gdal_cache_mb * 2**20):
        for grid in {grid.crs.to_epsg(): grid for grid in grids}.values():  # warm up: a PROJ transformer per CRS
            reader.read_labels(grid)
        others = [raster.padded_window(file, raster.chip_box(grid, file.crs)) for grid in grids]
        for i in range(args.repeats):
            run = dict.fromkeys(("ours", "plain", "ours cpu", "plain cpu"), 0.0)
            for k, grid in enumerate(grids):  # interleaved chip by chip: the machine's other load falls on both alike
                evict(file, others, k + len(grids) // 3, args.no_evict)
                start, start_cpu = time.perf_counter(), time.thread_time()
                window = raster.padded_window(file, raster.chip_box(grid, file.crs))
                assert window is not None
                raster.read_window(file, window)
                end, end_cpu = time.perf_counter(), time.thread_time()
                evict(file, others, k + 2 * len(grids) // 3, args.no_evict)
                middle, middle_cpu = time.perf_counter(), time.thread_time()
                reader.read_labels(grid)
                run["ours"] += time.perf_counter() - middle
                run["ours cpu"] += time.thread_time() - middle_cpu
                run["plain"] += end - start
                run["plain cpu"] += end_cpu - start_cpu
            for key in ("ours", "plain"):
                wall[key].append(run[key] / len(grids))
                cpu[key].append(run[f"{key} cpu"] / len(grids))
            ms = f"ours {wall['ours'][-1] * 1e3:.3f} ms, plain {wall['plain'][-1] * 1e3:.3f} ms"
            print(f"  run {i + 1}/{args.repeats}: {ms} per chip (wall)", file=sys.stderr)
        checked = grids[: args.gdal_chips]
        gdal_times: list[float] = []
        for grid in checked:
            start = time.perf_counter()
            warped = raster.warp_window_gdal(file, grid)
            gdal_times.append(time.perf_counter() - start)
            assert warped is not None
            if not np.array_equal(reader.read_labels(grid), warped.astype(np.uint8)):
                raise AssertionError(f"chip {grid.chip_id}: our read differs from GDAL's warp; benchmark void")
    pixels = width * height
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "GDAL_NUM_THREADS")}
    result: dict[str, Any] = {
        "benchmark": "label_chips_conus",
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "raster_px": [width, height],
        "tile": source_name,
        "threads": threads,
        "evict": not args.no_evict,
        "ours_per_chip_s": statistics.median(wall["ours"]),
        "plain_read_per_chip_s": statistics.median(wall["plain"]),
        "ratio": statistics.median(o / p for o, p in zip(wall["ours"], wall["plain"], strict=True)),
        "ratio_runs": [o / p for o, p in zip(wall["ours"], wall["plain"], strict=True)],
        "ours_cpu_per_chip_s": statistics.median(cpu["ours"]),
        "plain_read_cpu_per_chip_s": statistics.median(cpu["plain"]),
        "cpu_ratio": statistics.median(o / p for o, p in zip(cpu["ours"], cpu["plain"], strict=True)),
        "gdal_warp_per_chip_s": statistics.median(gdal_times) if gdal_times else None,
        "identical_to_gdal": len(checked),
        "study_memory_gb": STUDY_BYTES_PER_PX * pixels / 1e9,
        "peak_rss_mb": peak_rss_mb(),
    }
    gdal = result["gdal_warp_per_chip_s"]
    print(
        f"label chips, CONUS: raster {width}x{height} uint8 ({pixels / 1e9:.1f} G px, a VRT of one {args.tile} px tile"
        f" of {source_name}, blocks {args.block}), {len(grids)} chips of {args.chip_px} px at 10 m (EPSG:3857 / UTM),"
        f" median of {args.repeats}, seed {args.seed}, GDAL cache {args.gdal_cache_mb} MB, "
        + ("another window read before each timed read, " if result["evict"] else "no read between (ours reads warm), ")
        + ", ".join(f"{k}={v}" for k, v in threads.items())
    )
    print(f"{'per chip':<36}{'wall ms':>10}{'cpu ms':>10}")
    for name, key in (("ours (CDL.read_labels)", "ours"), ("plain windowed read, same window", "plain_read")):
        print(f"{name:<36}{result[f'{key}_per_chip_s'] * 1e3:>10.3f}{result[f'{key}_cpu_per_chip_s'] * 1e3:>10.3f}")
    runs = ", ".join(f"{r:.2f}" for r in result["ratio_runs"])
    print(f"ratio ours / plain read: {result['ratio']:.2f}x wall (runs {runs}), {result['cpu_ratio']:.2f}x cpu"
          " (target <= 1.5x)")  # fmt: skip
    if gdal is not None:
        speedup = gdal / result["ours_per_chip_s"]
        print(f"GDAL warp of the window (the read before): {gdal * 1e3:.2f} ms / chip, {speedup:.0f}x ours;"
              f" chips identical: {len(checked)}/{len(checked)}")  # fmt: skip
    print(f"study's whole-raster method at this size: about {result['study_memory_gb']:.0f} GB of memory (computed,"
          f" {STUDY_BYTES_PER_PX} bytes per pixel); our peak RSS {result['peak_rss_mb']:.0f} MB")  # fmt: skip
    return write_result(args.json, result)


if __name__ == "__main__":
    main()
