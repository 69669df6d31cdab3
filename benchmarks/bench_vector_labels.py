"""EuroCrops-like parcel labels per chip: the reader's per-layer spatial index (ours) vs a bbox scan per chip (before).

Input: synthetic national parcel layers of 0.3 M, 1 M and 3 M parcels at a constant density (the region grows with
the count, as countries do), each a release zip `SI_2021.zip` holding `SI_2021_EC21.shp/.shx/.dbf/.prj/.cpg` in
Slovenia's national CRS (EPSG:3794), laid out as torchgeo's EuroCrops root with `HCAT2.csv`.
Method A (ours): `EuroCrops(root, year=2021).read_labels(grid)` per chip, after `index_layers()` (when the reader
has it) builds the layer's spatial index once; the build is reported apart.
Method B (baseline, the reader before the index, frozen here): per chip, a bbox-filtered `pyogrio.read_dataframe`
of the layer in the zip (a scan of the whole layer), code parsing, geometry repair, reprojection and rasterization
in fid order.
Both must give identical chips, else the run fails. Prints per-chip medians, the ratio B/A and A's growth with size.

Run: `uv run python benchmarks/bench_vector_labels.py --parcels 300000 1000000 3000000 --chips 200`
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyogrio
import shapely
from affine import Affine
from common import bench_parser, write_result
from rasterio.crs import CRS
from rasterio.features import rasterize

from curation.sources.base import Bounds, ChipGrid, format_bounds, intersects
from curation.sources.eurocrops import EuroCrops
from curation.sources.vector import repaired

ROOT = Path(__file__).resolve().parents[1]
LEGEND = ROOT / "curation" / "legends" / "eurocrops.csv"
GENERATOR = 1  # bump when the generated layers change, so cached ones are rewritten
COUNTRY, YEAR = "SI", 2021
LAYER = f"{COUNTRY}_{YEAR}_EC21"  # the release's layer name: <CC>_<year>_EC21
ZIP_NAME = f"{COUNTRY}_{YEAR}.zip"  # the release zip torchgeo downloads
SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
COLUMN = "EC_hcat_c"
LAYER_CRS = CRS.from_epsg(3794)  # Slovenia 1996 / Slovene National Grid
CHIP_CRSS = (LAYER_CRS, CRS.from_epsg(3857))  # half the chips in the layer's CRS, half in Web Mercator
CENTRE = (500_000.0, 110_000.0)  # the region grows around Slovenia's middle, in EPSG:3794
CHIP_RES = 10.0
COL_M = (100.0, 200.0)  # parcel cell widths and heights (uniform): 1 to 3 ha, mean about 1.9 ha
ROW_M = (100.0, 150.0)
JITTER_M = 12.0  # shared lattice corners move this much: irregular quadrilaterals
SHRINK = (0.86, 1.02)  # each parcel scaled about its centre: gaps (roads, hedges) and a few slight overlaps
FILL = 0.85  # share of cells holding a parcel (the rest: forest, towns)
MULTI = 0.03  # share of parcels in two parts (a track crossing them)
BOWTIE = 0.002  # share of self-intersecting rings (repaired by both methods)
NO_CODE_SHARE = 0.01  # parcels without an HCAT code (empty text: code 0)
CHUNK_CELLS = 100_000  # cells generated and appended per shapefile write
# A Slovenian-like crop mix of real HCAT codes (all in curation/legends/eurocrops.csv), written as text like the
# releases' EC_hcat_c.
CROP_MIX = {
    3302000000: 0.52,  # pasture_meadow_grassland_grass
    3301090400: 0.08,  # green_silo_maize
    3301010600: 0.08,  # grain_maize_corn_popcorn
    3301010101: 0.07,  # winter_common_soft_wheat
    3301010401: 0.05,  # winter_barley
    3301090100: 0.05,  # temporary_grass
    3303060000: 0.04,  # vineyards_wine_vine_rebland_grapes
    3303010000: 0.04,  # orchards_fruits
    3301030000: 0.02,  # potatoes
    3301160000: 0.02,  # soy_soybeans
    3301110000: 0.02,  # fallow_land_not_crop
    3301010301: 0.01,  # winter_rye
}
Chip = npt.NDArray[np.int64]


# ------------------------------------------------------------------ the synthetic national layer


def legend_names() -> dict[int, str]:
    """HCAT code -> name, from the toolkit's EuroCrops legend (the codes written must be valid ones)."""
    with LEGEND.open(newline="") as handle:
        return {int(row["code"]): row["name"] for row in csv.DictReader(handle)}


def layer_root(workdir: Path, parcels: int, seed: int) -> Path:
    """The torchgeo-style EuroCrops root of one layer size and seed."""
    return workdir / "layers" / f"{LAYER}-{parcels}-s{seed}"


def marker_path(root: Path) -> Path:
    """Beside the root (not in it, so the root stays torchgeo's layout): written last, it marks a finished layer."""
    return root.with_name(root.name + ".json")


def cached(root: Path, parcels: int, seed: int) -> dict[str, Any] | None:
    """The generation record of a finished layer of this size and seed, None when it must be (re)written."""
    marker = marker_path(root)
    if not marker.is_file() or not (root / ZIP_NAME).is_file():
        return None
    record: dict[str, Any] = json.loads(marker.read_text())
    same = record.get("parcels") == parcels and record.get("seed") == seed and record.get("generator") == GENERATOR
    return record if same else None


def parcel_chunks(parcels: int, seed: int) -> Iterator[gpd.GeoDataFrame]:
    """The layer's parcels, row band by row band of a jittered lattice (memory: one band), in write order.

    Neighbouring parcels share jittered corners, then each is scaled about its centre, so most are separated by a
    gap and a few overlap their neighbour slightly (the later one wins in both methods). Parcels are shuffled
    within a band: national layers are not sorted by place.
    """
    rng = np.random.default_rng(seed)
    names = legend_names()
    codes_table = np.array(list(CROP_MIX), dtype=np.int64)
    weights = np.array(list(CROP_MIX.values()))
    cell_area = np.mean(COL_M) * np.mean(ROW_M)
    side = math.sqrt(parcels / FILL * cell_area)
    cols = max(2, math.ceil(side / np.mean(COL_M)))
    x_edges = CENTRE[0] - side / 2 + np.concatenate([[0.0], np.cumsum(rng.uniform(*COL_M, cols))])
    y0 = CENTRE[1] - side / 2
    lower = np.stack([x_edges + rng.uniform(-JITTER_M, JITTER_M, cols + 1), y0 + np.zeros(cols + 1)], axis=-1)
    rows_per_chunk = max(1, CHUNK_CELLS // cols)
    written = 0
    while written < parcels:
        heights = rng.uniform(*ROW_M, rows_per_chunk)
        tops = y0 + np.cumsum(heights)
        y0 = float(tops[-1])
        jitter = rng.uniform(-JITTER_M, JITTER_M, (rows_per_chunk, cols + 1, 2))
        upper = np.stack(np.broadcast_arrays(x_edges, tops[:, None]), axis=-1) + jitter  # (rows, cols + 1, 2)
        vertices = np.concatenate([lower[None], upper])  # (rows + 1, cols + 1, 2)
        lower = upper[-1]
        occupied = rng.random((rows_per_chunk, cols)) < FILL
        ll, lr = vertices[:-1, :-1][occupied], vertices[:-1, 1:][occupied]
        ur, ul = vertices[1:, 1:][occupied], vertices[1:, :-1][occupied]
        n = len(ll)
        scale = rng.uniform(*SHRINK, n)[:, None]
        kind = rng.random(n)
        codes = rng.choice(codes_table, size=n, p=weights / weights.sum())
        no_code = rng.random(n) < NO_CODE_SHARE
        order = rng.permutation(n)
        keep = order[order < parcels - written] if n > parcels - written else order  # the last band: first cells
        centre = (ll + lr + ur + ul) / 4
        ll, lr, ur, ul = (centre + (p - centre) * scale for p in (ll, lr, ur, ul))
        geometries = _parcels(ll[keep], lr[keep], ur[keep], ul[keep], kind[keep])
        code_text = np.where(no_code[keep], None, codes[keep].astype(str).astype(object))
        frame = gpd.GeoDataFrame(
            {
                "ID": np.arange(written + 1, written + len(keep) + 1, dtype=np.int64),
                "EC_hcat_n": np.where(no_code[keep], None, [names[int(c)] for c in codes[keep]]),
                COLUMN: code_text,
            },
            geometry=geometries,
            crs=LAYER_CRS.to_wkt(),
        )
        written += len(keep)
        yield frame


def _parcels(
    ll: npt.NDArray[np.float64],
    lr: npt.NDArray[np.float64],
    ur: npt.NDArray[np.float64],
    ul: npt.NDArray[np.float64],
    kind: npt.NDArray[np.float64],
) -> npt.NDArray[np.object_]:
    """Quadrilaterals from their corners; a share split in two parts (multipolygons), a few bowties."""
    rings = np.stack([ll, lr, ur, ul, ll], axis=1)
    bowtie = (kind >= MULTI) & (kind < MULTI + BOWTIE)
    rings[bowtie] = np.stack([ll, ur, lr, ul, ll], axis=1)[bowtie]  # the ring crosses itself
    out = shapely.polygons(rings)
    multi = kind < MULTI
    if multi.any():
        a, b, c, d = ll[multi], lr[multi], ur[multi], ul[multi]
        west = np.stack([a, a + (b - a) * 0.45, d + (c - d) * 0.45, d, a], axis=1)
        east = np.stack([a + (b - a) * 0.55, b, c, d + (c - d) * 0.55, a + (b - a) * 0.55], axis=1)
        out[multi] = shapely.multipolygons(np.stack([shapely.polygons(west), shapely.polygons(east)], axis=1))
    return out


def _pin_dbf_date(path: Path) -> None:
    """Shapefile .dbf headers hold the write date; pin it so one seed gives the same bytes (and index key)."""
    with path.open("r+b") as handle:
        handle.seek(1)
        handle.write(bytes([YEAR - 1900, 1, 1]))


def write_layer(root: Path, parcels: int, seed: int) -> dict[str, Any]:
    """Write the release zip and HCAT2.csv under `root` (shapefile chunk by chunk, then zipped); returns the record."""
    start = time.perf_counter()
    if root.exists():
        shutil.rmtree(root)
    staging = root.with_name(root.name + ".staging")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    shapefile = staging / f"{LAYER}.shp"
    for i, frame in enumerate(parcel_chunks(parcels, seed)):
        pyogrio.write_dataframe(
            frame, shapefile, layer=LAYER, driver="ESRI Shapefile", geometry_type="Polygon", encoding="UTF-8",
            append=i > 0,
        )  # fmt: skip
    _pin_dbf_date(shapefile.with_suffix(".dbf"))
    written_s = time.perf_counter() - start
    files_bytes = {suffix: shapefile.with_suffix(suffix).stat().st_size for suffix in SIDECARS}
    root.mkdir(parents=True)
    partial = root / (ZIP_NAME + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for suffix in SIDECARS:
            info = zipfile.ZipInfo(f"{LAYER}{suffix}", date_time=(YEAR, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with shapefile.with_suffix(suffix).open("rb") as src, archive.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    partial.rename(root / ZIP_NAME)
    shutil.rmtree(staging)
    names = legend_names()
    rows = [f"{name},{code}" for code, name in sorted(names.items()) if code]
    (root / "HCAT2.csv").write_text("HCAT2_name,HCAT2_code\n" + "\n".join(rows) + "\n")
    record = {
        "parcels": parcels, "seed": seed, "generator": GENERATOR, "write_s": written_s,
        "seconds": time.perf_counter() - start, "zip_bytes": (root / ZIP_NAME).stat().st_size,
        "files_bytes": files_bytes,
    }  # fmt: skip
    marker_path(root).write_text(json.dumps(record, indent=2) + "\n")
    return record


def _write_in_child(root: Path, parcels: int, seed: int) -> None:
    write_layer(root, parcels, seed)


def ensure_layer(workdir: Path, parcels: int, seed: int) -> tuple[Path, dict[str, Any], bool]:
    """The layer's root, its generation record, and whether it was written now (else reused from the cache).

    It is written in a forked child where the platform allows, so the generator's memory is not in the peak RSS
    of the timed methods (getrusage's peak only grows); the child's peak is recorded apart.
    """
    root = layer_root(workdir, parcels, seed)
    record = cached(root, parcels, seed)
    if record is not None:
        return root, record, False
    if "fork" in multiprocessing.get_all_start_methods():
        child = multiprocessing.get_context("fork").Process(target=_write_in_child, args=(root, parcels, seed))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"writing the {parcels}-parcel layer failed in its child process ({child.exitcode})")
        record = json.loads(marker_path(root).read_text())
        record["writer_peak_rss_mb"] = rss_mb(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        marker_path(root).write_text(json.dumps(record, indent=2) + "\n")
    else:
        record = write_layer(root, parcels, seed)
    return root, record, True


# ------------------------------------------------------------------ chips


class FrozenLayer(NamedTuple):
    """One layer as the pre-index reader kept it: its GDAL path in the zip, CRS and extent (read once)."""

    uri: str
    crs: CRS
    bounds: Bounds


def open_layer(root: Path) -> FrozenLayer:
    """The release zip's layer, read in place (/vsizip/) as the pre-index reader did."""
    uri = f"/vsizip/{root / ZIP_NAME}/{LAYER}.shp"
    info = pyogrio.read_info(uri)
    minx, miny, maxx, maxy = info["total_bounds"]
    return FrozenLayer(uri, CRS.from_user_input(info["crs"]), (float(minx), float(miny), float(maxx), float(maxy)))


def chip_places(n: int, seed: int) -> npt.NDArray[np.float64]:
    """`n` relative places (0..1 in x and y) shared by every layer size, so the chips sample the same spots."""
    return np.random.default_rng(seed + 1).uniform(0.0, 1.0, size=(n, 2))


def chip_grids(bounds: Bounds, places: npt.NDArray[np.float64], chip_px: int) -> list[ChipGrid]:
    """Chip grids of `chip_px`² px at 10 m at `places` inside the layer's extent, alternately in its CRS and 3857."""
    half = chip_px * CHIP_RES / 2
    margin = 2 * half  # room for a Web Mercator chip's footprint, which is rotated and scaled in the layer's CRS
    minx, miny, maxx, maxy = bounds
    if maxx - minx <= 2 * margin or maxy - miny <= 2 * margin:
        raise ValueError(
            f"chips of {chip_px} px need a layer wider than {2 * margin:.0f} m, got {format_bounds(bounds)}"
        )
    grids: list[ChipGrid] = []
    for i, (u, v) in enumerate(places):
        cx, cy = minx + margin + u * (maxx - minx - 2 * margin), miny + margin + v * (maxy - miny - 2 * margin)
        crs = CHIP_CRSS[i % len(CHIP_CRSS)]
        centre = ChipGrid(LAYER_CRS, Affine(1, 0, cx, 0, -1, cy), 0, 0).bounds_in(crs)[:2]
        left = math.floor((centre[0] - half) / CHIP_RES) * CHIP_RES
        top = math.floor((centre[1] + half) / CHIP_RES) * CHIP_RES
        grid = ChipGrid(crs, Affine(CHIP_RES, 0, left, 0, -CHIP_RES, top), chip_px, chip_px, f"c{i}")
        b = grid.bounds_in(LAYER_CRS)
        if not (b[0] > minx and b[1] > miny and b[2] < maxx and b[3] < maxy):
            raise AssertionError(f"chip {grid.chip_id} leaves the layer: {b} not inside {bounds}")
        grids.append(grid)
    return grids


# ------------------------------------------------------------------ method B: the reader before the index, frozen


def frozen_parse_codes(values: list[object]) -> npt.NDArray[np.int64]:
    """`VectorLabelSource.parse_codes` as it was: integers, 0 for no code, text that is not a code an error."""
    codes = np.zeros(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
            continue
        text = str(value).strip()
        codes[i] = int(float(text)) if "." in text else int(text)
    return codes


def baseline_read_labels(layers: Sequence[FrozenLayer], grid: ChipGrid) -> Chip:
    """`VectorLabelSource.read_labels` as it was before the index: a bbox-filtered scan of each layer per chip."""
    out = np.full(grid.shape, 0, dtype=np.int64)
    touched = False
    for layer in layers:
        box = grid.bounds_in(layer.crs)
        if not intersects(box, layer.bounds):
            continue
        touched = True
        frame = pyogrio.read_dataframe(layer.uri, bbox=box, columns=[COLUMN], fid_as_index=True)
        if frame.empty:
            continue
        codes = frozen_parse_codes(frame[COLUMN].to_list())
        repair = gpd.GeoSeries(repaired(frame.geometry.to_numpy()), index=frame.index, crs=layer.crs.to_wkt())
        geometries = repair.to_crs(grid.crs.to_wkt())
        shapes = [(geom, i + 1) for i, geom in enumerate(geometries) if geom is not None and not geom.is_empty]
        if not shapes:
            continue
        index = rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="int32")
        hit = index > 0
        out[hit] = codes[index[hit] - 1]
    if not touched:
        raise AssertionError(f"chip {grid.chip_id} lies outside every layer")
    return out


# ------------------------------------------------------------------ timing


def rss_mb(maxrss: int) -> float:
    """ru_maxrss in MB (KiB on Linux, bytes on macOS)."""
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return rss_mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def one_pass(read: Callable[[ChipGrid], Chip], grids: Sequence[ChipGrid], times: npt.NDArray[np.float64]) -> list[Chip]:
    """Read every chip once, writing each chip's wall time (s) into `times`; the chips."""
    chips: list[Chip] = []
    for j, grid in enumerate(grids):
        start = time.perf_counter()
        chips.append(read(grid))
        times[j] = time.perf_counter() - start
    return chips


@contextlib.contextmanager
def cache_env(folder: Path) -> Iterator[None]:
    """CROPHARMONY_CACHE pointed at `folder` for the block (the reader's index cache), restored after."""
    before = os.environ.get("CROPHARMONY_CACHE")
    os.environ["CROPHARMONY_CACHE"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CROPHARMONY_CACHE", None)
        else:
            os.environ["CROPHARMONY_CACHE"] = before


def index_layers(reader: EuroCrops) -> tuple[float, bool]:
    """Seconds `index_layers()` takes on this reader, and whether the reader has it (0 s when it does not)."""
    build = getattr(reader, "index_layers", None)
    if build is None:
        return 0.0, False
    start = time.perf_counter()
    build()
    return time.perf_counter() - start, True


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def ms(seconds: Sequence[float]) -> float:
    """Median of `seconds`, in ms."""
    return 1000 * statistics.median(seconds)


class Prepared(NamedTuple):
    """One layer size, ready to time: its layer, chips, and A's reader with its index built (or found)."""

    parcels: int
    root: Path
    record: dict[str, Any]
    written: bool
    layer: FrozenLayer
    grids: list[ChipGrid]
    reader: EuroCrops
    has_index: bool
    build_s: float
    find_s: float
    first_read_s: float
    index_bytes: int
    rss_mb: float


def prepare(args: argparse.Namespace, parcels: int, places: npt.NDArray[np.float64], cache: Path) -> Prepared:
    """Generate (or reuse) the layer, time the one-off index build, and open a fresh reader on the built index."""
    start = time.perf_counter()
    root, record, written = ensure_layer(args.workdir, parcels, args.seed)
    print(
        f"layer {parcels:,} parcels: {'written' if written else 'cached'} in {time.perf_counter() - start:.1f} s "
        f"({record['zip_bytes'] / 1e6:.0f} MB zip)", file=sys.stderr,
    )  # fmt: skip
    layer = open_layer(root)
    grids = chip_grids(layer.bounds, places, args.chip_px)
    cache_before = folder_bytes(cache)
    build_s, has_index = index_layers(EuroCrops(root, year=YEAR))
    reader = EuroCrops(root, year=YEAR)  # a fresh reader, as a stage or worker has: it finds the built index
    find_s, _ = index_layers(reader)
    first = time.perf_counter()
    reader.read_labels(grids[0])  # opens the layer (and its index): timed apart from the per-chip passes
    first_read_s = time.perf_counter() - first
    print(f"  index {parcels:,}: built in {build_s:.2f} s, found in {find_s:.2f} s", file=sys.stderr)
    return Prepared(
        parcels, root, record, written, layer, grids, reader, has_index, build_s, find_s, first_read_s,
        folder_bytes(cache) - cache_before, peak_rss_mb(),
    )  # fmt: skip


def interleaved(
    prepared: Sequence[Prepared], n: int, repeats: int, label: str, read: Callable[[Prepared, ChipGrid], Chip]
) -> tuple[dict[int, list[float]], dict[int, list[Chip]]]:
    """Each size's first `n` chips read `repeats` times, sizes interleaved pass by pass; medians (s) and chips.

    Interleaving lets the load of a shared machine weigh on every size alike; each chip keeps its median over the
    passes, and the chips returned are the last pass's.
    """
    times = {p.parcels: np.zeros((repeats, n)) for p in prepared}
    chips: dict[int, list[Chip]] = {}
    for r in range(repeats):
        for p in prepared:
            start = time.perf_counter()
            chips[p.parcels] = one_pass(lambda grid, p=p: read(p, grid), p.grids[:n], times[p.parcels][r])
            print(
                f"  {label} {p.parcels:,} pass {r + 1}/{repeats}: {time.perf_counter() - start:.2f} s", file=sys.stderr
            )
    return {k: np.median(v, axis=0).tolist() for k, v in times.items()}, chips


def size_row(p: Prepared, times_a: list[float], times_b: list[float], codes_seen: list[int]) -> dict[str, Any]:
    """One layer size's numbers."""
    n_base = len(times_b)
    bounds = p.layer.bounds
    return {
        "parcels": p.parcels,
        "layer": {
            "root": str(p.root), "written_now": p.written, "generation_s": p.record["seconds"],
            "zip_bytes": p.record["zip_bytes"], "files_bytes": p.record["files_bytes"],
            "writer_peak_rss_mb": p.record.get("writer_peak_rss_mb"), "bounds": list(bounds),
            "area_km2": (bounds[2] - bounds[0]) * (bounds[3] - bounds[1]) / 1e6,
        },
        "index": {
            "has_index_layers": p.has_index, "build_s": p.build_s, "find_s": p.find_s, "cache_bytes": p.index_bytes,
        },
        "a_first_read_s": p.first_read_s,
        "a_per_chip_s": times_a,
        "a_ms": ms(times_a),
        "a_ms_mean": 1000 * statistics.fmean(times_a),
        "a_ms_p90": 1000 * float(np.percentile(times_a, 90)),
        "a_ms_on_baseline_chips": ms(times_a[:n_base]),
        "b_per_chip_s": times_b,
        "b_ms": ms(times_b),
        "chips": len(p.grids),
        "baseline_chips": n_base,
        "identical_chips": n_base,
        "ratio_b_over_a": ms(times_b) / ms(times_a[:n_base]),
        "peak_rss_mb_after_index": p.rss_mb,
        "distinct_codes_per_baseline_chip": codes_seen,
    }  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = bench_parser(
        __doc__,
        "timed passes over the chips per method (each chip's median is kept)",
        "seed of the layers and the chip places",
    )
    parser.add_argument("--parcels", type=int, nargs="+", default=[300_000, 1_000_000, 3_000_000], help="layer sizes")
    parser.add_argument("--chips", type=int, default=200, help="chips read per layer (half in EPSG:3794, half 3857)")
    parser.add_argument("--chip-px", type=int, default=256, help="chip width and height in 10 m pixels")
    parser.add_argument(
        "--baseline-chips", type=int, default=10,
        help="time the baseline (seconds per chip on big layers) on the first N chips only and compare on those "
        "(0: all)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-index",
        action="store_true",
        help="reuse an index cached by an earlier run (the build is then not timed)",
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "cropharmony-bench-vector-labels")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark over every layer size, print the table, and return the numbers."""
    args = parse_args(argv)
    places = chip_places(args.chips, args.seed)
    cache = args.workdir / "index-cache"  # the reader's cache (CROPHARMONY_CACHE): emptied so builds are timed
    if cache.exists() and not args.keep_index:
        shutil.rmtree(cache)
    cache.mkdir(parents=True, exist_ok=True)
    with cache_env(cache):
        prepared = [prepare(args, n, places, cache) for n in sorted(set(args.parcels))]
        n_base = min(args.baseline_chips, args.chips) if args.baseline_chips > 0 else args.chips
        times_a, chips_a = interleaved(prepared, args.chips, args.repeats, "A", lambda p, g: p.reader.read_labels(g))
        rss_a = peak_rss_mb()
        times_b, chips_b = interleaved(
            prepared, n_base, args.repeats, "B", lambda p, g: baseline_read_labels([p.layer], g)
        )
        rss_b = peak_rss_mb()
    for p in prepared:
        for grid, a, b in zip(p.grids[:n_base], chips_a[p.parcels][:n_base], chips_b[p.parcels], strict=True):
            if a.shape != b.shape or not np.array_equal(a, b):
                differ = f"{int((a != b).sum())} pixels" if a.shape == b.shape else f"shape {a.shape} vs {b.shape}"
                raise AssertionError(f"{p.parcels} parcels, chip {grid.chip_id}: A and B differ ({differ}); void")
    sizes = [
        size_row(p, times_a[p.parcels], times_b[p.parcels], [int(np.unique(c[c > 0]).size) for c in chips_b[p.parcels]])
        for p in prepared
    ]
    smallest, largest = sizes[0], sizes[-1]
    has_index = all(p.has_index for p in prepared)
    result: dict[str, Any] = {
        "benchmark": "vector_labels",
        "params": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "reader_has_index_layers": has_index,
        "sizes": sizes,
        "peak_rss_mb_after_a": rss_a,
        "peak_rss_mb_after_b": rss_b,
        "a_growth": largest["a_ms"] / smallest["a_ms"],
        "targets": {"a_ms_at_largest": 30.0, "a_growth": 1.5},
    }
    result["targets_met"] = largest["a_ms"] <= 30.0 and result["a_growth"] <= 1.5
    p_ = result["params"]
    print(
        f"vector labels: EuroCrops-like {LAYER} in {ZIP_NAME} (EPSG:3794), {p_['chips']} chips of {p_['chip_px']} px "
        f"at 10 m (EPSG:3794 / 3857), median of {p_['repeats']} interleaved passes per chip, seed {p_['seed']}"
    )
    if not has_index:
        print("note: the reader has no index_layers(): A is the reader without an index (index build 0 s)")
    header = ("parcels", 10), ("area km2", 10), ("zip MB", 8), ("index s", 9), ("A ms/chip", 11), ("A p90", 8)
    print("".join(f"{name:>{width}}" for name, width in header) + f"{'B ms/chip':>11}{'B/A':>9}")
    for s in sizes:
        print(
            f"{s['parcels']:>10,}{s['layer']['area_km2']:>10,.0f}{s['layer']['zip_bytes'] / 1e6:>8.0f}"
            f"{s['index']['build_s']:>9.2f}{s['a_ms']:>11.1f}{s['a_ms_p90']:>8.1f}{s['b_ms']:>11.1f}"
            f"{s['ratio_b_over_a']:>8.1f}x"
        )
    finds = " / ".join(f"{s['index']['find_s']:.2f}" for s in sizes)
    firsts = " / ".join(f"{1000 * s['a_first_read_s']:.0f}" for s in sizes)
    rss_index = " / ".join(f"{s['peak_rss_mb_after_index']:.0f}" for s in sizes)
    print(
        f"index: one-off build ('index s'), then a fresh reader finds it in {finds} s; its first read (opens the "
        f"layer) {firsts} ms (not in A ms/chip)"
    )
    print(
        f"A ms/chip: median over all {args.chips} chips; B ms/chip and B/A: on the first {n_base} chips only "
        f"(B is seconds per chip on big layers), B/A against A's median on the same {n_base} chips"
    )
    print(
        f"peak RSS MB (getrusage, only grows): after each size's index build {rss_index}, after every A pass "
        f"{rss_a:.0f}, after every B pass {rss_b:.0f}"
    )
    identical = n_base * len(sizes)
    print(f"chips identical: {identical}/{identical} (A = B on the first {n_base} chips of each size)")
    print(
        f"A growth {smallest['parcels']:,} -> {largest['parcels']:,} parcels: {result['a_growth']:.2f}x "
        f"(target <= 1.5x); A at {largest['parcels']:,}: {largest['a_ms']:.1f} ms (target <= 30 ms): "
        f"{'met' if result['targets_met'] else 'NOT met'}"
    )
    print(f"speed-up B/A at {largest['parcels']:,} parcels: {largest['ratio_b_over_a']:.1f}x")
    return write_result(args.json, result)


if __name__ == "__main__":
    main()
