"""Stage `demo`: a synthetic world with all six sources in their native layouts, plus Sentinel-2 chips.

CDL-style GeoTIFF in EPSG:5070 (real CDL codes), EuroCrops shapefiles in a national CRS (real HCAT codes), NCCM
and South America Soybean rasters in EPSG:4326, South Africa and AgriFieldNet chip folders in UTM, and 13-band
uint16 chips in EPSG:3857 named `{year}_{col}_{row}.tif` like the study's released chips, so every label read
crosses a CRS. `demo.chip_folders` also writes a chip product's 13-band chips as a folder (`{year}_{field}.tif` in
EPSG:3857 over each field, as the study's own chip folders of those products), from a generator of its own, so the
rest of the world stays byte-identical. One seed makes it byte-identical; every file says it is synthetic.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from affine import Affine
from pydantic import ValidationError
from rasterio.crs import CRS
from rasterio.warp import transform, transform_bounds
from shapely.geometry import box

from curation.core.artifacts import Artifacts
from curation.core.errors import CropharmonyError
from curation.core.geotiff import write_geotiff
from curation.core.io import DEMO_MARKER, stage_output
from curation.core.legends import CrosswalkSet, load_set
from curation.core.params import load_section
from curation.core.remap import Crosswalk, remap_raster
from curation.core.runner import run_stage
from curation.core.shared import SharedParams
from curation.demo.config import CHIP_PRODUCTS, DemoParams
from curation.demo.synth import S2_BANDS, Look, draw_codes, region_signatures, smooth_noise, strip_fields, synthesize
from curation.demo.writers import write_agrifieldnet_field, write_chip_folder, write_sact_field
from curation.sources import SOURCES
from curation.sources.base import ChipGrid
from curation.sources.chip_product import ChipProductSource

# Where each raster product lies under its root (torchgeo's layouts; CDL in its nested download folder).
RASTER_PRODUCTS = {
    "cdl": "{year}_30m_cdls/{year}_30m_cdls.tif",
    "nccm": "CDL{year}_clip.tif",
    "south_america_soybean": "SouthAmerica_Soybean_{year}.tif",
}
MARKER = "SYNTHETIC: cropharmony demo world, not real data"
WEB_MERCATOR = CRS.from_epsg(3857)
S2_RES = 10.0
METRES_PER_DEGREE = 111_320.0
FILLER_SIDE_M = 120.0  # `demo.parcels` filler: 1.44 ha squares on a 130 m lattice, east of every chip
FILLER_PITCH_M = 130.0
FILLER_GAP_M = 1000.0  # from the chips' extent (which already has a one-chip margin)


@dataclass(frozen=True)
class Region:
    """Where and how one source is simulated."""

    source: str
    year: int
    lon: float
    lat: float
    crs: str
    res: float  # native pixel size in CRS units (rasters and chip products)
    field_m: tuple[float, float]
    codes: dict[int, float]
    look: Look
    blobs: tuple[tuple[int, float], ...] = ()  # (code, area share) painted as smooth blobs: water, no data


REGIONS = (
    Region(
        "cdl",
        2023,
        -93.6,
        42.0,
        "EPSG:5070",
        30.0,
        (180.0, 600.0),
        {1: 0.34, 5: 0.30, 24: 0.06, 3: 0.04, 26: 0.03, 176: 0.12, 121: 0.05, 4: 0.03, 36: 0.03},
        Look(gain=1.00, phenology=0.10, soil=1.0, haze=0.000, drift=0.04),
        ((111, 0.03), (141, 0.04)),
    ),
    Region(
        "eurocrops",
        2021,
        25.3,
        56.7,
        "EPSG:3059",
        0.0,
        (120.0, 400.0),
        {
            3301010101: 0.22,
            3301010102: 0.08,
            3301010401: 0.10,
            3301010600: 0.08,
            3301090400: 0.06,
            3301160000: 0.05,
            3301010300: 0.08,
            3302000000: 0.20,
            3301060400: 0.08,
            0: 0.05,
        },
        Look(gain=0.86, phenology=0.22, soil=0.9, haze=0.010, drift=0.08),
    ),
    Region(
        "nccm",
        2019,
        126.6,
        46.6,
        "EPSG:4326",
        10.0 / METRES_PER_DEGREE,
        (150.0, 500.0),
        {0: 0.22, 1: 0.40, 2: 0.28, 3: 0.10},
        Look(gain=0.95, phenology=0.15, soil=0.8, haze=0.015, drift=0.07),
        ((15, 0.02),),
    ),
    Region(
        "south_america_soybean",
        2021,
        -52.5,
        -24.4,
        "EPSG:4326",
        30.0 / METRES_PER_DEGREE,
        (250.0, 900.0),
        {1: 0.55, 0: 0.45},
        Look(gain=1.08, phenology=0.30, soil=1.25, haze=0.005, drift=0.08),
        ((255, 0.03),),
    ),
    Region(
        "south_africa_crop_type",
        2017,
        19.4,
        -33.6,
        "EPSG:32734",
        10.0,
        (80.0, 300.0),
        {7: 0.40, 1: 0.10, 2: 0.10, 3: 0.10, 4: 0.08, 6: 0.10, 8: 0.12},
        Look(gain=1.12, phenology=0.40, soil=1.30, haze=0.000, drift=0.10),
    ),
    Region(
        "agrifieldnet",
        2021,
        81.8,
        25.9,
        "EPSG:32644",
        10.0,
        (40.0, 150.0),
        {1: 0.30, 9: 0.14, 36: 0.24, 2: 0.10, 4: 0.08, 13: 0.05, 15: 0.05, 6: 0.04},
        Look(gain=1.10, phenology=0.28, soil=1.10, haze=0.030, drift=0.10),
    ),
)


def _write_tif(
    path: Path, data: npt.NDArray[np.generic], crs: CRS, affine: Affine, seed: int, bands: tuple[str, ...] = ()
) -> None:
    tags = {"CROPHARMONY_SYNTHETIC": MARKER, "CROPHARMONY_SEED": str(seed)}
    write_geotiff(path, data, crs, affine, bands, tags)


def _tiles(rng: np.random.Generator, region: Region, chip_px: int, count: int) -> list[tuple[int, int]]:
    """Distinct (col, row) tiles of the chip grid around the region centre, spread over a square."""
    side = max(2, math.ceil(math.sqrt(count * 2.5)))
    size = chip_px * S2_RES
    if region.source in ("south_africa_crop_type", "agrifieldnet"):
        x, y = transform("EPSG:4326", region.crs, [region.lon], [region.lat])
    else:
        x, y = transform("EPSG:4326", WEB_MERCATOR, [region.lon], [region.lat])
    col0, row0 = int(x[0] // size) - side // 2, int(-y[0] // size) - side // 2
    cells = [(col0 + i % side, row0 + i // side) for i in rng.permutation(side * side)[:count]]
    return sorted(cells)


def _tile_grid(crs: CRS, col: int, row: int, chip_px: int, chip_id: str) -> ChipGrid:
    size = chip_px * S2_RES
    return ChipGrid(crs, Affine(S2_RES, 0, col * size, 0, -S2_RES, -row * size), chip_px, chip_px, chip_id)


def _extent(tiles: list[tuple[int, int]], chip_px: int, crs: CRS) -> tuple[float, float, float, float]:
    """Native-CRS bounds covering every tile with a one-tile margin."""
    size = chip_px * S2_RES
    cols, rows = [c for c, _ in tiles], [r for _, r in tiles]
    web = ((min(cols) - 1) * size, -(max(rows) + 2) * size, (max(cols) + 2) * size, -(min(rows) - 1) * size)
    minx, miny, maxx, maxy = transform_bounds(WEB_MERCATOR, crs, *web, densify_pts=21)
    return (float(minx), float(miny), float(maxx), float(maxy))


def _size_in_units(region: Region) -> tuple[float, float]:
    scale = METRES_PER_DEGREE if region.crs == "EPSG:4326" else 1.0
    return (region.field_m[0] / scale, region.field_m[1] / scale)


def _paint_raster(
    rng: np.random.Generator, region: Region, bounds: tuple[float, float, float, float]
) -> tuple[npt.NDArray[np.uint8], Affine]:
    res = region.res
    minx, maxy = math.floor(bounds[0] / res) * res, math.ceil(bounds[3] / res) * res
    width, height = math.ceil((bounds[2] - minx) / res), math.ceil((maxy - bounds[1]) / res)
    affine = Affine(res, 0, minx, 0, -res, maxy)
    fields = strip_fields(rng, (minx, maxy - height * res, minx + width * res, maxy), _size_in_units(region))
    codes = draw_codes(rng, region.codes, fields.count)
    xs = minx + (np.arange(width) + 0.5) * res
    ys = maxy - (np.arange(height) + 0.5) * res
    grid_x, grid_y = np.meshgrid(xs, ys)
    data = codes[fields.index(grid_x, grid_y)].astype(np.uint8)
    for code, share in region.blobs:
        noise = smooth_noise(rng, data.shape, max(min(data.shape) // 6, 4))
        data[noise > np.quantile(noise, 1 - share)] = code
    return data, affine


def _parcel_frame(
    ids: npt.NDArray[np.int64], codes: npt.NDArray[np.int64], names: dict[int, str], geometry: object, crs: str
) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "ID": ids,
            "EC_trans_n": [names[int(c)] if c else "unknown" for c in codes],
            "EC_hcat_n": [names[int(c)] if c else None for c in codes],
            "EC_hcat_c": [str(int(c)) if c else None for c in codes],
        },
        geometry=geometry,
        crs=crs,
    )


def _filler(
    rng: np.random.Generator,
    region: Region,
    bounds: tuple[float, float, float, float],
    first_id: int,
    count: int,
    names: dict[int, str],
) -> gpd.GeoDataFrame:
    """`count` square parcels on a lattice east of `bounds`: no chip reads them, they give the layer its size."""
    side = math.ceil(math.sqrt(count))
    i = np.arange(count, dtype=np.int64)
    x0 = bounds[2] + FILLER_GAP_M + (i % side) * FILLER_PITCH_M
    y0 = bounds[1] + (i // side) * FILLER_PITCH_M
    squares = shapely.box(x0, y0, x0 + FILLER_SIDE_M, y0 + FILLER_SIDE_M)
    codes = draw_codes(rng, region.codes, count)
    return _parcel_frame(first_id + i, codes, names, squares, region.crs)


def _write_eurocrops(
    root: Path,
    rng: np.random.Generator,
    region: Region,
    bounds: tuple[float, float, float, float],
    toolkit: CrosswalkSet,
    parcels: tuple[int, np.random.Generator] | None = None,
) -> None:
    """The layer: fields covering the chips, then (`parcels`: total and its own generator) filler squares."""
    fields = strip_fields(rng, bounds, region.field_m)
    codes = draw_codes(rng, region.codes, fields.count)
    crosswalk = toolkit["eurocrops"]
    names = dict(zip(crosswalk.codes.tolist(), crosswalk.names, strict=True))
    margin = 4.0  # metres of road or hedge between parcels: outside every parcel, so ignore
    frame = _parcel_frame(
        np.arange(1, fields.count + 1, dtype=np.int64),
        codes,
        names,
        [box(x0 + margin, y0 + margin, x1 - margin, y1 - margin) for x0, y0, x1, y1 in fields.rectangles()],
        region.crs,
    )
    if parcels is not None:
        total, filler_rng = parcels
        if total < fields.count:
            raise CropharmonyError(
                f"demo.parcels: {total:,} is fewer than the {fields.count:,} parcels that cover the EuroCrops chips; "
                f"set at least {fields.count} (or null for just those)"
            )
        if total > fields.count:
            extra = _filler(filler_rng, region, bounds, fields.count + 1, total - fields.count, names)
            frame = gpd.GeoDataFrame(pd.concat([frame, extra], ignore_index=True), crs=region.crs)
    folder = root / f"LV_{region.year}"
    folder.mkdir(parents=True, exist_ok=True)
    shapefile = folder / f"LV_{region.year}_EC21.shp"
    frame.to_file(shapefile, engine="pyogrio")
    _fix_dbf_date(shapefile.with_suffix(".dbf"), region.year)
    rows = [f"{name},{code}" for code, name in sorted(names.items()) if code]
    (root / "HCAT2.csv").write_text("HCAT2_name,HCAT2_code\n" + "\n".join(rows) + "\n")


def _fix_dbf_date(path: Path, year: int) -> None:
    """Shapefile .dbf headers hold the write date; pin it so equal seeds give equal bytes."""
    with path.open("r+b") as handle:
        handle.seek(1)
        handle.write(bytes([year - 1900, 1, 1]))


def _chip_product_labels(rng: np.random.Generator, region: Region, chip_px: int) -> npt.NDArray[np.uint8]:
    """Parcels drawn directly on a chip, separated by one-pixel no-data (0) boundaries."""
    size = (region.field_m[0] / region.res, region.field_m[1] / region.res)
    fields = strip_fields(rng, (0.0, 0.0, float(chip_px), float(chip_px)), size)
    codes = draw_codes(rng, region.codes, fields.count)
    centres = np.arange(chip_px) + 0.5
    grid_x, grid_y = np.meshgrid(centres, centres)
    index = fields.index(grid_x, grid_y)
    labels = codes[index].astype(np.uint8)
    edge = np.zeros_like(index, dtype=bool)
    edge[:, :-1] |= index[:, :-1] != index[:, 1:]
    edge[:-1, :] |= index[:-1, :] != index[1:, :]
    labels[edge] = 0
    return labels


def build(params: DemoParams, legends_dir: Path, out: Path) -> dict[str, object]:
    """Write the whole demo world under `out` (atomically: a temporary folder renamed at the end)."""
    toolkit = load_set(legends_dir, "toolkit")
    with stage_output(out) as tmp:
        summary: dict[str, object] = {}
        for index, region in enumerate(REGIONS):
            rng = np.random.default_rng([params.seed, index])
            root = tmp / region.source
            root.mkdir()
            (root / "SYNTHETIC.txt").write_text(MARKER + "\n")
            tiles = _tiles(rng, region, params.chip_px, params.chips_per_source)
            signatures = region_signatures(rng, region.look, toolkit.taxonomy.names)
            crosswalk = toolkit[region.source]
            if region.source in CHIP_PRODUCTS:
                chips = _write_chip_product(root, rng, region, tiles, params, crosswalk, signatures)
                if region.source in params.chip_folders:  # its own generator: the product's files stay the same
                    folder_rng = np.random.default_rng([params.seed, index, 2])
                    _chip_folder(tmp, region, chips, params, folder_rng, crosswalk, signatures)
            else:
                native_crs = CRS.from_user_input(region.crs)
                bounds = _extent(tiles, params.chip_px, native_crs)
                if region.source == "eurocrops":
                    # the filler has its own generator, so the chips are those of the world without it
                    filler = (
                        None
                        if params.parcels is None
                        else (params.parcels, np.random.default_rng([params.seed, index, 1]))
                    )
                    _write_eurocrops(root, rng, region, bounds, toolkit, filler)
                else:
                    data, affine = _paint_raster(rng, region, bounds)
                    path = root / RASTER_PRODUCTS[region.source].format(year=region.year)
                    _write_tif(path, data, native_crs, affine, params.seed)
                reader = SOURCES[region.source](root, year=region.year)
                chips = []
                for col, row in tiles:
                    chip_id = f"{region.year}_{col}_{row}"
                    grid = _tile_grid(WEB_MERCATOR, col, row, params.chip_px, chip_id)
                    classes = remap_raster(reader.read_labels(grid), crosswalk, where=chip_id)
                    image = synthesize(rng, classes, signatures, params.cloud_probability)
                    _write_tif(
                        tmp / "sentinel2" / region.source / f"{chip_id}.tif",
                        image,
                        WEB_MERCATOR,
                        grid.transform,
                        params.seed,
                        S2_BANDS,
                    )
                    chips.append(chip_id)
            summary[region.source] = {"year": region.year, "chips": len(chips), "label_crs": region.crs}
        manifest = {
            "synthetic": True,
            "marker": MARKER,
            "seed": params.seed,
            "chip_px": params.chip_px,
            "chips_per_source": params.chips_per_source,
            "cloud_probability": params.cloud_probability,
            "sources": summary,
        }
        if params.parcels is not None:  # absent by default: the default world's bytes stay what they were
            manifest["parcels"] = params.parcels
        if params.chip_folders:  # likewise
            manifest["chip_folders"] = list(params.chip_folders)
        (tmp / DEMO_MARKER).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _write_chip_product(
    root: Path,
    rng: np.random.Generator,
    region: Region,
    tiles: list[tuple[int, int]],
    params: DemoParams,
    crosswalk: Crosswalk,
    signatures: npt.NDArray[np.float64],
) -> list[str]:
    crs = CRS.from_user_input(region.crs)
    ids = []
    for number, (col, row) in enumerate(tiles):
        grid = _tile_grid(crs, col, row, params.chip_px, "")
        labels = _chip_product_labels(rng, region, params.chip_px)
        image = synthesize(rng, remap_raster(labels, crosswalk), signatures, params.cloud_probability)
        if region.source == "south_africa_crop_type":
            field_id = str(1000 + number)
            write_sact_field(root, field_id, f"{region.year}_07_01", labels, image, crs, grid.transform)
        else:
            field_id = f"{int(rng.integers(0, 16**5)):05x}"
            while field_id in ids:
                field_id = f"{int(rng.integers(0, 16**5)):05x}"
            write_agrifieldnet_field(root, field_id, labels, image, crs, grid.transform)
        ids.append(field_id)
    return ids


def _chip_folder(
    tmp: Path,
    region: Region,
    fields: list[str],
    params: DemoParams,
    rng: np.random.Generator,
    crosswalk: Crosswalk,
    signatures: npt.NDArray[np.float64],
) -> None:
    """`demo.chip_folders`: the product's 13-band chips as `sentinel2/<source>/`, their spectra from the labels cut."""
    product = SOURCES[region.source](tmp / region.source, year=region.year)
    assert isinstance(product, ChipProductSource)

    def image_of(codes: npt.NDArray[np.integer], chip_id: str) -> npt.NDArray[np.uint16]:
        classes = remap_raster(codes, crosswalk, where=chip_id)
        return synthesize(rng, classes, signatures, params.cloud_probability)

    tags = {"CROPHARMONY_SYNTHETIC": MARKER, "CROPHARMONY_SEED": str(params.seed)}
    write_chip_folder(tmp / "sentinel2" / region.source, product, fields, params.chip_px, image_of, tags)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="folder to write the world to [params demo.out]")
    parser.add_argument("--seed", type=int, default=None, help="random seed [params demo.seed]")
    parser.add_argument("--chip-px", type=int, default=None, help="chip side in pixels [params demo.chip_px]")
    parser.add_argument("--chips-per-source", type=int, default=None, help="[params demo.chips_per_source]")
    parser.add_argument("--parcels", type=int, default=None, help="EuroCrops layer size [params demo.parcels]")
    parser.add_argument(
        "--chip-folders",
        nargs="+",
        default=None,
        metavar="SOURCE",
        help=f"chip products ({', '.join(CHIP_PRODUCTS)}) whose 13-band chips are also written as a folder "
        "sentinel2/<source>/ (for shared.sources.<source>.images) [params demo.chip_folders, default none]",
    )


def _run(args: argparse.Namespace) -> str:
    params = load_section(DemoParams, args.params)
    overrides = {
        "seed": args.seed,
        "chip_px": args.chip_px,
        "chips_per_source": args.chips_per_source,
        "parcels": args.parcels,
        "chip_folders": args.chip_folders,
    }
    try:
        params = DemoParams.model_validate(params.model_dump() | {k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise CropharmonyError(str(exc)) from exc
    shared = load_section(SharedParams, args.params)
    out = args.out or Artifacts.load(args.params).demo_world.path
    manifest = build(params, shared.legends_dir, out)
    sources = manifest["sources"]
    assert isinstance(sources, dict)
    written = ", ".join(f"{name} {info['chips']}" for name, info in sources.items())
    return f"ok: demo world (seed {params.seed}, synthetic) written to {out}: {written}"


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point: write the demo world to params `demo.out` (or --out)."""
    run_stage("demo", _run, argv, _options)
