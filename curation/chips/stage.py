"""Stage `chips`: for every image chip, the harmonized label chip cut on its own grid, and one manifest row.

Chips go to Dask workers in small batches (`curation.core.parallel`). For each: read the image's header (a chip
whose header breaks the image schema is not read further), its pixel facts (the ones validate left in the cache,
else read in strips; or assemble the image from a chip product), read the native labels on the image's grid, remap
them through the active crosswalk's lookup table (pixels where every image band holds the image's nodata value
become ignore: no stage trains on labels over no data), write `<source>/labels/<chip_id>.tif` beside a copy (or hard
link) of the image, and return the manifest row. A chip product's chip (per-band files, `images: null`) becomes
`<source>/images/<chip_id>.vrt` over links of its band files in `<source>/bands/<chip_id>/` (`chips.product_images:
vrt`, the default: no pixel stored twice) or a 13-band GeoTIFF stack (`stack`); with `vrt`, its pixel facts come
from validate's cache, so the band files are not read again. What the stage writes (label chips, chip products'
stacks) is ZSTD-compressed with fixed options (`curation.core.geotiff.CHIP_OPTIONS`). Links under the source folders
and file names that cannot be chip ids stop the stage; files nobody reads are listed in the report's `warnings`
(rule "unused file"). Everything is written into a temporary folder renamed over `chips.out` at the end, so a failed
run leaves the previous output (or none), never half of one. Tasks write to that folder directly, so a remote
cluster needs it on a shared filesystem.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import rasterio
from rasterio.crs import CRS
from rasterio.warp import transform as warp_points

from curation.chips.config import ChipsParams
from curation.core.artifacts import MANIFEST, Artifacts
from curation.core.bands import S2_FILE_ORDER
from curation.core.errors import CropharmonyError, Problem, ProblemsError
from curation.core.fact_schemas import image_chips_schema
from curation.core.failures import Words, failures, problems_of, row_problem
from curation.core.geotiff import CHIP_OPTIONS, write_geotiff
from curation.core.io import atomic_write_json, atomic_write_parquet, place_file, stage_output
from curation.core.parallel import run_tasks
from curation.core.params import load_section
from curation.core.registry import source_info, source_names
from curation.core.remap import remap_raster
from curation.core.runner import run_stage
from curation.core.schemas import class_column, manifest_schema, rows_frame
from curation.core.shared import SharedParams
from curation.core.vrt import VRT_SUFFIX, write_stack_vrt
from curation.inputs.chip_refs import by_source, crs_name, read_labels, scan_chips, source_inputs
from curation.inputs.facts import GDAL_OPEN, ChipTask, crosswalk_set, image_row, inspect, placeable, problem_from
from curation.inputs.images import Inspected
from curation.inputs.links import link_problems
from curation.inputs.unused import unused_inputs
from curation.sources.base import ChipGrid
from curation.sources.chip_product import ZERO_FILLED_TAG

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True)
class CutTask:
    """One chip to cut, and where its files go."""

    chip: ChipTask
    out: Path  # the temporary output folder
    link: str
    product_images: str = "vrt"  # chip products without an image folder: vrt or stack (ChipsParams)


@dataclass
class CutResult:
    """A manifest row and the image facts of one chip, or the problems that stopped it."""

    source: str
    chip_id: str
    row: dict[str, Any] | None = None
    image: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)


def grid_text(grid: ChipGrid) -> str:
    """A grid as comparable text: CRS, transform (rounded to micro-units) and size."""
    t = grid.transform
    numbers = ",".join(f"{v:.6f}" for v in (t.a, t.b, t.c, t.d, t.e, t.f))
    return f"{crs_name(grid.crs)}|{numbers}|{grid.height}x{grid.width}"


def image_name(task: CutTask) -> Path:
    """Where a chip's image goes under the output: `<source>/images/<chip_id>.tif`, or `.vrt` over band files."""
    ref = task.chip.ref
    suffix = VRT_SUFFIX if ref.image is None and task.product_images == "vrt" else ".tif"
    return Path(ref.source.name) / "images" / f"{ref.chip_id}{suffix}"


def bands_folder(source: str, chip_id: str) -> Path:
    """Where a chip product's band files are linked for its VRT, under the output."""
    return Path(source) / "bands" / chip_id


def _place_image(task: CutTask, seen: Inspected, path: Path) -> None:
    ref = task.chip.ref
    name = ref.source.name
    if ref.image is not None:
        place_file(ref.image, path, task.link)
        return
    tags = {ZERO_FILLED_TAG: ",".join(seen.header.zero_filled), "CROPHARMONY_SOURCE": name}
    grid = seen.header.grid
    if task.product_images == "stack":
        image = seen.assembled
        assert image is not None  # inspect(assemble=True) assembles a product's chip in memory
        write_geotiff(path, image.data, grid.crs, grid.transform, S2_FILE_ORDER, tags, CHIP_OPTIONS)
        return
    assert seen.bands is not None
    folder = task.out / bands_folder(name, ref.chip_id)
    linked = {band: folder / f"{band}{file.suffix.lower()}" for band, file in seen.bands.files.items()}
    for band, file in seen.bands.files.items():
        place_file(file, linked[band], task.link)
    write_stack_vrt(path, grid.crs, grid.transform, grid.shape, S2_FILE_ORDER, linked, tags)


def cut_chip(task: CutTask) -> CutResult:
    """Cut one chip's label, write both files and return its manifest row (runs on workers).

    Files open under `GDAL_OPEN` (no folder listing per open), in one GDAL environment for the chip, as validate's.
    """
    with rasterio.Env.from_defaults(**GDAL_OPEN):
        return _cut_chip(task)


def _cut_chip(task: CutTask) -> CutResult:
    ref = task.chip.ref
    name = ref.source.name
    result = CutResult(name, ref.chip_id)
    try:
        seen = inspect(task.chip, assemble=task.product_images == "stack")
        result.image = image_row(task.chip, seen.header, seen.pixels)
        if seen.pixels is None or not placeable(seen):
            return result  # the image schema reports the header, the missing CRS or transform
        image = seen.header
        classes = remap_raster(read_labels(ref, image.grid), task.chip.crosswalk, where=task.chip.file)
    except CropharmonyError as exc:
        result.problems.append(problem_from(exc, task.chip.file))
        return result
    taxonomy = crosswalk_set(task.chip.legends_dir, task.chip.crosswalk_set).taxonomy
    if seen.pixels.nodata_mask is not None:
        classes[seen.pixels.nodata_mask] = taxonomy.ids[taxonomy.names.index("ignore")]
    relative_image = image_name(task)
    relative_label = Path(name) / "labels" / f"{ref.chip_id}.tif"
    _place_image(task, seen, task.out / relative_image)
    tags = {
        "CROPHARMONY_CROSSWALK_SET": task.chip.crosswalk_set,
        "CROPHARMONY_CLASSES": ",".join(f"{i}={n}" for i, n in zip(taxonomy.ids, taxonomy.names, strict=True)),
    }
    write_geotiff(
        task.out / relative_label, classes, image.grid.crs, image.grid.transform, ("class",), tags, CHIP_OPTIONS
    )
    with rasterio.open(task.out / relative_label) as label:
        label_grid = ChipGrid(label.crs, label.transform, label.width, label.height)
    counts = np.bincount(classes.ravel(), minlength=taxonomy.size).astype(np.int64)
    minx, miny, maxx, maxy = image.grid.bounds
    lon, lat = warp_points(image.grid.crs, WGS84, [(minx + maxx) / 2], [(miny + maxy) / 2])
    info = source_info(name)
    present = counts[1:]
    result.row = {
        "chip_id": ref.chip_id,
        "source": name,
        "region": info.region,
        "continent": info.continent,
        "year": ref.year,
        "crs": crs_name(image.grid.crs),
        "minx": float(minx),
        "miny": float(miny),
        "maxx": float(maxx),
        "maxy": float(maxy),
        "lon": round(float(lon[0]), 7),
        "lat": round(float(lat[0]), 7),
        "height": image.grid.height,
        "width": image.grid.width,
        **{class_column(n): int(c) for n, c in zip(taxonomy.names, counts, strict=True)},
        "dominant": taxonomy.names[int(np.argmax(present)) + 1] if present.any() else taxonomy.names[0],
        "image_path": relative_image.as_posix(),
        "label_path": relative_label.as_posix(),
        "grid": grid_text(image.grid),
        "label_grid": grid_text(label_grid),
        "crosswalk_set": task.chip.crosswalk_set,
    }
    return result


def build(shared: SharedParams, params: ChipsParams, report_path: Path) -> dict[str, Any]:
    """Cut every chip of every source into `params.out` (atomically), write the report; returns the report."""
    crosswalks = crosswalk_set(shared.legends_dir, shared.crosswalk_set)
    with stage_output(params.out) as tmp:
        tasks, warnings = _tasks(shared, params, tmp)
        results = run_tasks(cut_chip, tasks, shared.dask, "chips")
        failed = _failed_chips(results, shared)
        for name, chip_id in failed:  # cut before the image schema ran: leave none of their files behind
            for kind, suffix in (("images", ".tif"), ("images", VRT_SUFFIX), ("labels", ".tif")):
                (tmp / name / kind / f"{chip_id}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(tmp / bands_folder(name, chip_id), ignore_errors=True)
        rows = [r.row for r in results if r.row is not None and (r.source, r.chip_id) not in failed]
        if failed and not params.skip_failed:
            listed = [p for chip_problems in failed.values() for p in chip_problems]
            raise ProblemsError(
                f"chips: {len(failed)} chip(s) break a rule (set chips.skip_failed: true to leave them out)", listed
            )
        manifest = _manifest(rows, crosswalks.taxonomy.names)
        atomic_write_parquet(tmp / MANIFEST, manifest)
    report = _report(manifest, failed, shared.crosswalk_set) | {"warnings": warnings}
    atomic_write_json(report_path, report)
    return report


def _tasks(shared: SharedParams, params: ChipsParams, tmp: Path) -> tuple[list[CutTask], list[dict[str, str]]]:
    """A task per chip of every source, and the report's warnings (files nobody reads).

    Raises on links under the source folders and on listed files that cannot be chips.
    """
    sources = source_inputs(shared)
    problems: list[Problem] = []
    unused: list[Problem] = []
    tasks: list[CutTask] = []
    for source in sources:
        problems += link_problems(source)
        try:
            listing = scan_chips(source)
        except CropharmonyError as exc:
            problems.append(problem_from(exc, str(source.images or source.labels)))
            continue
        problems += listing.errors
        unused += listing.unused
        tasks += [
            CutTask(
                ChipTask(ref, shared.legends_dir, shared.crosswalk_set, shared.bands, shared.chip_px),
                tmp,
                params.link,
                params.product_images,
            )
            for ref in listing.refs
        ]
    if problems:
        raise ProblemsError("chips: cannot list the image chips", problems)
    grouped = by_source(unused + unused_inputs(shared), sources)
    warnings = [
        {"source": name or "inputs", "file": p.file, "rule": p.rule, "detail": p.detail, "fix": p.fix}
        for name, found in grouped.items()
        for p in found
    ]
    return tasks, sorted(warnings, key=lambda w: (w["source"], w["file"], w["rule"]))


def _failed_chips(results: list[CutResult], shared: SharedParams) -> dict[tuple[str, str], list[Problem]]:
    """Problems per chip: reader errors, and image facts that break the image-chip schema."""
    failed: dict[tuple[str, str], list[Problem]] = {}
    for result in results:
        if result.problems:
            failed[(result.source, result.chip_id)] = list(result.problems)
    images = [r.image for r in results if r.image is not None]
    schema = image_chips_schema(shared.bands, shared.chip_px, shared.resolution_m)
    if images:
        table = rows_frame(images, schema)
        words = Words(file="?", fix="run the validate stage for the details and fixes", file_column="file")
        for failure in failures(table, schema):
            row = table.row(failure.row, named=True) if failure.row is not None else None
            if row is None:
                continue
            key = (row["source"], row["chip_id"])
            failed.setdefault(key, []).append(row_problem(failure, table, words))
    for result in results:
        if result.row is None and result.image is not None and (result.source, result.chip_id) not in failed:
            failed[(result.source, result.chip_id)] = [
                Problem(str(result.image["file"]), "georeferenced", "no CRS or transform", "write the chip with both")
            ]
    return failed


def _manifest(rows: list[dict[str, Any]], class_names: tuple[str, ...]) -> pl.DataFrame:
    schema = manifest_schema(class_names, list(source_names()))
    table = rows_frame(rows, schema).sort("source", "chip_id")
    broken = problems_of(table, schema, Words(MANIFEST, "report it with this message", grouped=True))
    if broken:
        raise ProblemsError("chips: the manifest breaks its schema (a bug: please report it)", broken)
    return table


def _report(manifest: pl.DataFrame, failed: dict[tuple[str, str], list[Problem]], set_name: str) -> dict[str, Any]:
    counts = [c for c in manifest.columns if c.startswith("px_")]
    per_source = manifest.group_by("source").agg(pl.len().alias("chips"), *[pl.col(c).sum() for c in counts])
    sources: dict[str, Any] = {
        row["source"]: {"chips": row["chips"], "pixels": {c.removeprefix("px_"): row[c] for c in counts}}
        for row in per_source.sort("source").iter_rows(named=True)
    }
    skipped = [
        {"source": source, "chip_id": chip_id, "problems": [str(p) for p in problems]}
        for (source, chip_id), problems in sorted(failed.items())
    ]
    return {"crosswalk_set": set_name, "chips": manifest.height, "sources": sources, "skipped": skipped}


def _run(args: argparse.Namespace) -> str:
    artifacts = Artifacts.load(args.params)
    shared = load_section(SharedParams, args.params)
    params = load_section(ChipsParams, args.params)
    report_path = artifacts.chips_report.path
    report = build(shared, params, report_path)
    skipped = f", {len(report['skipped'])} skipped (see {report_path})" if report["skipped"] else ""
    warned = f", {len(report['warnings'])} warning(s) (see {report_path})" if report["warnings"] else ""
    return f"chips: {report['chips']} chips of {len(report['sources'])} sources in {params.out}{skipped}{warned}"


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point."""
    run_stage("chips", _run, argv)
