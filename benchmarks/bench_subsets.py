"""Select subsets from a 1,000,000-chip manifest: spatial hashing (ours) vs all-pairs buffer exclusion (baseline).

Ours: `curation.subsets.stage.plan` does everything the `subsets` stage does per source except reading and writing
files (the manifest is validated once beforehand, timed apart): footprints into the source's metric frame, blocks,
the stratified test set, the buffer exclusion by spatial hash, the nested training ordering, the leakage audit, the
report and the subsets-manifest schema. Target: under 2 s.
Baseline: the same buffer exclusion done the straightforward way: box distances from every pool chip to every
test chip, broadcast in chunks, then the exact footprint test on pairs whose boxes lie within the buffer.
Both exclusions run inside the same selection (`curation.subsets.splits.select`) on the same footprints, and must give
the same training pools and orderings, else the run fails. Prints the median times and the ratio baseline/ours.

Run: `uv run python benchmarks/bench_subsets.py --rows 1000000 --repeats 3`
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from common import bench_parser, write_result
from pyproj import Transformer

from curation.core.failures import failures
from curation.core.legends import load_set
from curation.core.schemas import class_column, manifest_schema
from curation.sources import SOURCES
from curation.subsets import splits
from curation.subsets import stage as subsets
from curation.subsets.config import SubsetsParams

ROOT = Path(__file__).resolve().parents[1]
CLASSES = list(load_set(ROOT / "curation" / "legends", "toolkit").taxonomy.names)
ORIGINS = {  # lon, lat of a source's grid corner, and the UTM zone a quarter of its chips use
    "agrifieldnet": (78.0, 25.0, "EPSG:32644"), "cdl": (-98.0, 36.0, "EPSG:32614"),
    "eurocrops": (10.0, 48.0, "EPSG:32632"), "nccm": (122.0, 42.0, "EPSG:32651"),
    "south_africa_crop_type": (18.5, -34.0, "EPSG:32734"), "south_america_soybean": (-55.0, -15.0, "EPSG:32721"),
}  # fmt: skip
CHIP_PX, CHIP_M = 256, 2560.0
NAIVE_CHUNK = 1 << 22  # pool-test pairs per broadcast step of the baseline
Near = Callable[[splits.Quads, splits.Quads, float], splits.Mask]


def source_rows(source: str, n: int, density: float, rng: np.random.Generator) -> pl.DataFrame:
    """`n` chips of 2560 m (Web Mercator units) on distinct cells of a square grid; every 4th in a UTM zone."""
    lon0, lat0, utm = ORIGINS[source]
    side = int(np.ceil(np.sqrt(n / density)))
    cells = rng.choice(side * side, size=n, replace=False)
    col, row = cells % side, cells // side
    (ox,), (oy,) = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform([lon0], [lat0])
    minx, miny = ox + col * CHIP_M, oy + row * CHIP_M
    in_utm = np.arange(n) % 4 == 3
    cx, cy = Transformer.from_crs("EPSG:3857", utm, always_xy=True).transform(minx + CHIP_M / 2, miny + CHIP_M / 2)
    minx = np.where(in_utm, np.asarray(cx) - CHIP_M / 2, minx)
    miny = np.where(in_utm, np.asarray(cy) - CHIP_M / 2, miny)
    lon, lat = np.empty(n), np.empty(n)
    for crs, at in (("EPSG:3857", ~in_utm), (utm, in_utm)):
        x, y = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
            minx[at] + CHIP_M / 2, miny[at] + CHIP_M / 2
        )
        lon[at], lat[at] = x, y
    area = CHIP_PX * CHIP_PX
    counts = np.zeros((n, len(CLASSES)), dtype=np.int64)
    for _ in range(2):  # two crop classes per chip, one of them rice in 0.1 % of chips
        kind = rng.choice([1, 2, 4, 5], size=n)
        kind[rng.random(n) < 0.001] = 3
        counts[np.arange(n), kind] += rng.integers(area // 8, area // 3, size=n)
    counts[:, 0] = area - counts[:, 1:].sum(axis=1)
    chip_id = pl.concat_str(pl.lit("2023_"), pl.col("col").cast(pl.String), pl.lit("_"), pl.col("row").cast(pl.String))
    path = pl.lit(f"{source}/images/") + pl.col("chip_id") + pl.lit(".tif")
    grid = pl.lit("grid-") + pl.col("chip_id")
    return (
        pl.DataFrame({"col": col, "row": row})
        .with_columns(chip_id.alias("chip_id"))
        .select(
            "chip_id", pl.lit(source).alias("source"), pl.lit("r").alias("region"), pl.lit("c").alias("continent"),
            pl.lit(2023, pl.Int64).alias("year"), pl.Series("crs", np.where(in_utm, utm, "EPSG:3857")),
            pl.Series("minx", minx), pl.Series("miny", miny), pl.Series("maxx", minx + CHIP_M),
            pl.Series("maxy", miny + CHIP_M), pl.Series("lon", lon), pl.Series("lat", lat),
            pl.lit(CHIP_PX, pl.Int64).alias("height"), pl.lit(CHIP_PX, pl.Int64).alias("width"),
            *(pl.Series(class_column(c), counts[:, i]) for i, c in enumerate(CLASSES)),
            pl.Series("dominant", np.array(CLASSES)[counts.argmax(axis=1)]), path.alias("image_path"),
            path.str.replace("/images/", "/labels/").alias("label_path"), grid.alias("grid"),
            grid.alias("label_grid"), pl.lit("toolkit").alias("crosswalk_set"),
        )
    )  # fmt: skip


def manifest(rows: int, density: float, seed: int) -> pl.DataFrame:
    """A valid manifest of `rows` chips split over the six sources."""
    rng = np.random.default_rng(seed)
    names = sorted(SOURCES)
    sizes = [rows // len(names) + (i < rows % len(names)) for i in range(len(names))]
    return pl.concat([source_rows(name, n, density, rng) for name, n in zip(names, sizes, strict=True)])


def naive_near(pool: splits.Quads, test: splits.Quads, buffer_m: float) -> splits.Mask:
    """Baseline: every pool chip against every test chip (box distances broadcast in chunks, then exact)."""
    out = np.zeros(len(pool), dtype=np.bool_)
    if len(pool) == 0 or len(test) == 0:
        return out
    pool_box, test_box = splits.bounds(pool), splits.bounds(test)
    rows = max(1, NAIVE_CHUNK // len(test))
    for start in range(0, len(pool), rows):
        i, j = np.nonzero(
            splits.box_distance(pool_box[start : start + rows, None], test_box[None]) < max(buffer_m, splits.TOUCH_M)
        )
        out[start + i[splits.too_close(pool[start + i], test[j], buffer_m)]] = True
    return out


class Stopwatch:
    """Wraps a buffer exclusion and adds up the time spent in it."""

    def __init__(self, near: Near) -> None:
        self.near, self.seconds = near, 0.0

    def __call__(self, pool: splits.Quads, test: splits.Quads, buffer_m: float) -> splits.Mask:
        """Exclude, and count the seconds."""
        start = time.perf_counter()
        found = self.near(pool, test, buffer_m)
        self.seconds += time.perf_counter() - start
        return found


def select_all(chips: list[subsets.SourceChips], params: SubsetsParams, near: Near) -> tuple[float, float, list[Any]]:
    """Every source's selection with `near` as the buffer exclusion: (total s, exclusion s, selections)."""
    watch = Stopwatch(near)
    start = time.perf_counter()
    found = [
        splits.select(c.quads, c.presence, params.test_size, params.block_m, params.buffer_m,
                      splits.rng_for(params.seed, c.source), watch)
        for c in chips
    ]  # fmt: skip
    return time.perf_counter() - start, watch.seconds, found


def same(a: splits.Selection, b: splits.Selection) -> bool:
    """Both selections chose the same test set and the same training ordering."""
    return np.array_equal(a.test, b.test) and np.array_equal(a.train_order, b.train_order)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = bench_parser(__doc__, "timed runs per method (the median is reported)", "random seed")
    parser.add_argument("--rows", type=int, default=1_000_000, help="manifest rows, split over 6 sources")
    parser.add_argument("--density", type=float, default=0.5, help="share of grid cells holding a chip")
    parser.add_argument("--train-sizes", type=int, nargs="+", default=[10, 100, 900])
    parser.add_argument("--test-size", type=int, default=100)
    parser.add_argument("--block-m", type=float, default=25600.0)
    parser.add_argument("--buffer-m", type=float, default=2560.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, and return the numbers."""
    args = parse_args(argv)
    params = SubsetsParams(
        seed=args.seed, train_sizes=tuple(args.train_sizes), test_size=args.test_size, block_m=args.block_m,
        buffer_m=args.buffer_m, min_class_share=0.01, allow_smaller=False, published=None, out=Path("unused"),
        report=Path("unused.json"), random_test_size=0,  # the blocked selection is what this times
    )  # fmt: skip
    start = time.perf_counter()
    frame = manifest(args.rows, args.density, args.seed)
    print(f"manifest ready: {frame.height:,} rows ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    start = time.perf_counter()
    problems = failures(frame, manifest_schema(CLASSES, sorted(SOURCES)))
    validation_s = time.perf_counter() - start
    if problems:
        raise AssertionError(f"synthetic manifest invalid: {problems[:3]}")
    stage: list[float] = []
    for i in range(args.repeats):
        start = time.perf_counter()
        result = subsets.plan(frame, params, CLASSES)
        stage.append(time.perf_counter() - start)
        print(f"  stage plan run {i + 1}/{args.repeats}: {stage[-1]:.2f} s", file=sys.stderr)
    chips = [
        subsets.source_chips(frame.filter(pl.col("source") == s).sort("chip_id"), CLASSES, params.min_class_share)
        for s in sorted(SOURCES)
    ]
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "baseline": []}
    picked: dict[str, list[Any]] = {}
    for i in range(args.repeats):
        for name, near in (("ours", splits.near), ("baseline", naive_near)):
            total, exclusion, picked[name] = select_all(chips, params, near)
            runs[name].append((total, exclusion))
            print(f"  {name} run {i + 1}/{args.repeats}: {total:.2f} s, exclusion {exclusion:.3f} s", file=sys.stderr)
    if not all(same(a, b) for a, b in zip(picked["ours"], picked["baseline"], strict=True)):
        raise AssertionError("the two buffer exclusions chose different training pools; benchmark void")

    def median(name: str, k: int) -> float:
        return statistics.median(run[k] for run in runs[name])

    pools = [len(s.train_order) for s in picked["ours"]]
    excluded = sum(s.excluded for s in picked["ours"])
    result_json: dict[str, Any] = {
        "benchmark": "subsets",
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rows": frame.height,
        "manifest_validation_s": validation_s,
        "stage_plan_s": stage, "stage_plan_median_s": statistics.median(stage),
        "select_ours_s": median("ours", 0), "select_baseline_s": median("baseline", 0),
        "exclusion_ours_s": median("ours", 1), "exclusion_baseline_s": median("baseline", 1),
        "identical_pools": len(pools), "pool_chips": sum(pools), "excluded_by_buffer": excluded,
        "subsets_rows": result.frame.height,
    }  # fmt: skip
    result_json["speedup_exclusion"] = result_json["exclusion_baseline_s"] / result_json["exclusion_ours_s"]
    result_json["speedup_select"] = result_json["select_baseline_s"] / result_json["select_ours_s"]
    r = result_json
    print(
        f"subsets: {r['rows']:,} manifest rows, 6 sources, test {args.test_size}, train {args.train_sizes}, "
        f"block {args.block_m:g} m, buffer {args.buffer_m:g} m, median of {args.repeats}, seed {args.seed}"
    )
    plan_s = r["stage_plan_median_s"]
    print(f"stage plan (footprints, selection, audit, report; no file I/O): {plan_s:.3f} s (target < 2 s)")
    print(f"manifest validation (pandera, once, not in the plan): {validation_s:.3f} s")
    print(f"{'selection (splits.select, 6 sources)':<44}{'total s':>10}{'exclusion s':>14}")
    print(f"{'A ours: spatial hash':<44}{r['select_ours_s']:>10.3f}{r['exclusion_ours_s']:>14.3f}")
    print(f"{'B baseline: all pool-test pairs':<44}{r['select_baseline_s']:>10.3f}{r['exclusion_baseline_s']:>14.3f}")
    n = len(pools)
    print(f"training pools identical: {n}/{n} ({sum(pools):,} chips, {excluded:,} excluded by the buffer)")
    print(f"speed-up: exclusion {r['speedup_exclusion']:.1f}x, whole selection {r['speedup_select']:.1f}x")
    return write_result(args.json, result_json)


if __name__ == "__main__":
    main()
