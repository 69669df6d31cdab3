"""Facts the validate and chips stages gather about inputs, as table rows their Pandera schemas check.

Gathering never raises on bad input: a reader error becomes a `Problem` beside the facts, so one run reports
every broken file. Functions that run on Dask workers take one picklable task and load what they need once per
process (crosswalk sets are cached).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyogrio
import rasterio
from pyogrio.errors import DataSourceError
from rasterio.errors import RasterioIOError

from curation.core.errors import CropharmonyError, Problem, SourceError, UnmappedCodesError
from curation.core.legends import CrosswalkSet, load_set
from curation.core.remap import Crosswalk, distinct_codes
from curation.core.schemas import UNMAPPED_ID
from curation.inputs.chip_refs import ChipRef, SourceInput, crs_name, label_cut, reader
from curation.inputs.images import ChipHeader, ChipPixels, Inspected, inspect_image
from curation.sources.chip_product import OUTSIDE_RULE, ChipProductSource
from curation.sources.layer_index import CodeCount, layer_index
from curation.sources.vector import VectorLabelSource

Row = dict[str, Any]

GDAL_OPEN = {"GDAL_DISABLE_READDIR_ON_OPEN": "TRUE"}
"""How chip files are opened. By default GDAL lists a file's whole folder on every open to look for sidecars
(`.aux.xml`, `.ovr`, `.msk`): in an image folder of N chips that is O(N) per chip and O(N^2) per run (0.3-0.5 ms a
file at 1,100-2,200 files a folder, growing with the folder). TRUE skips the listing and GDAL probes the sidecar
names directly, so the same sidecars are found and read."""


@lru_cache(maxsize=8)
def crosswalk_set(legends_dir: Path, set_name: str) -> CrosswalkSet:
    """A crosswalk set, loaded once per process."""
    return load_set(legends_dir, set_name)


@dataclass(frozen=True)
class ChipTask:
    """One chip plus the settings a worker needs to examine it."""

    ref: ChipRef
    legends_dir: Path
    crosswalk_set: str
    bands: tuple[str, ...]
    chip_px: int  # the side the header must have before any pixel is read

    @property
    def crosswalk(self) -> Crosswalk:
        """The chip's source crosswalk in the active set."""
        return crosswalk_set(self.legends_dir, self.crosswalk_set)[self.ref.source.name]

    @property
    def file(self) -> str:
        """The file a problem with this chip should name."""
        return str(self.ref.image) if self.ref.image is not None else f"{self.ref.source.labels} (chip {self.chip_id})"

    @property
    def chip_id(self) -> str:
        """The chip id."""
        return self.ref.chip_id


@dataclass
class ChipFacts:
    """What one chip showed: its image facts, its label histogram, the problems met reading it and its warnings."""

    source: str
    chip_id: str
    image: Row | None = None
    histogram: list[Row] = field(default_factory=list)
    ignore_share: float | None = None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # e.g. pixels outside every label raster of the product


def image_row(task: ChipTask, header: ChipHeader, pixels: ChipPixels | None) -> Row:
    """The image facts the image-chip schema checks (pixel facts empty when the header failed and none were read).

    Bands are named by their descriptions where the file sets them, else by their place in `shared.bands`: a zero
    band is named as what it is, and a described order unlike `shared.bands` is a fact of its own (`band_order`).
    """
    described = any(header.descriptions)
    by_position = task.bands if header.count == len(task.bands) else tuple(f"band {i + 1}" for i in range(header.count))
    names = tuple(d or p for d, p in zip(header.descriptions, by_position, strict=True)) if described else by_position
    share = None if pixels is None else pixels.nodata_share
    zero: list[str] = []
    if pixels is not None and share != 1.0:  # an all-nodata chip is one error, not one per band
        zero = [n for n, peak in zip(names, pixels.maxima, strict=True) if peak == 0 and n not in header.zero_filled]
    return {
        "source": task.ref.source.name,
        "chip_id": task.chip_id,
        "file": task.file,
        "bands": header.count,
        "dtype": header.dtype,
        "height": int(header.grid.height),
        "width": int(header.grid.width),
        "crs": crs_name(header.grid.crs),
        "has_transform": not header.grid.transform.is_identity,
        "res_x": float(header.res[0]),
        "res_y": float(header.res[1]),
        "band_order": ",".join(names) if described and header.count == len(task.bands) else None,
        "zero_bands": ",".join(zero),
        "nodata_share": share,
    }


def histogram_rows(task: ChipTask, codes: npt.NDArray[np.integer]) -> tuple[list[Row], float]:
    """Pixels per native code with its target class (None when the crosswalk lacks the code), and ignore share."""
    crosswalk = task.crosswalk
    values, _, counts = distinct_codes(codes)
    targets = crosswalk.resolve(values)
    names = crosswalk_set(task.legends_dir, task.crosswalk_set).taxonomy.names
    rows: list[Row] = [
        {
            "source": task.ref.source.name,
            "chip_id": task.chip_id,
            "code": int(value),
            "pixels": int(count),
            "target": None if target == UNMAPPED_ID else names[int(target)],
        }
        for value, count, target in zip(values, counts, targets, strict=True)
    ]
    ignored = sum(r["pixels"] for r in rows if r["target"] == "ignore")
    return rows, ignored / max(int(codes.size), 1)


def chip_facts(task: ChipTask) -> ChipFacts:
    """Read a chip's header, then its pixels and labels when the header fits (runs on workers).

    Every failure becomes a problem; a header that breaks the image schema skips the reads. Files open under
    `GDAL_OPEN`, in one GDAL environment for the chip's reads instead of one per file.
    """
    with rasterio.Env.from_defaults(**GDAL_OPEN):
        return _chip_facts(task)


def _chip_facts(task: ChipTask) -> ChipFacts:
    facts = ChipFacts(task.ref.source.name, task.chip_id)
    try:
        seen = inspect(task)
    except CropharmonyError as exc:
        facts.problems.append(problem_from(exc, task.file))
        return facts
    facts.image = image_row(task, seen.header, seen.pixels)
    if seen.pixels is None or not placeable(seen):
        return facts  # the schema reports the header; labels are not read for a chip that cannot be used
    try:
        cut = label_cut(task.ref, seen.header.grid)
    except CropharmonyError as exc:
        facts.problems.append(problem_from(exc, task.file))
        return facts
    facts.histogram, facts.ignore_share = histogram_rows(task, cut.codes)
    if cut.outside:
        facts.warnings.append(outside_warning(task, cut.outside, int(cut.codes.size)))
    return facts


def outside_warning(task: ChipTask, outside: int, pixels: int) -> Problem:
    """A chip of a chip product's image folder partly outside every label raster: its pixels there read no data."""
    product = reader(task.ref.source, task.ref.year)
    code = product.no_data_code if isinstance(product, ChipProductSource) else 0
    return Problem(
        task.file,
        OUTSIDE_RULE,
        f"chip {task.chip_id}: {outside} of its {pixels} pixels ({outside / max(pixels, 1):.1%}) lie outside every "
        f"label raster of {task.ref.source.name} and read as its no-data code {code}",
        "nothing to do at the product's edge (the crosswalk decides what code "
        f"{code} means; ignore is skipped by training and metrics); otherwise check the chip's georeference",
    )


def inspect(task: ChipTask, assemble: bool = False) -> Inspected:
    """The chip's header and, when it fits the params, its pixel facts (`assemble`: a product's stack too)."""
    return inspect_image(task.ref, len(task.bands), task.chip_px, assemble)


def placeable(seen: Inspected) -> bool:
    """Whether labels can be placed on the chip: it has a CRS and a geotransform."""
    grid = seen.header.grid
    return grid.crs is not None and not grid.transform.is_identity


def problem_from(error: CropharmonyError, file: str) -> Problem:
    """A reader error as a problem row, named after `file` unless the error names a path of its own.

    Reader errors (`SourceError`) and remapping errors (`UnmappedCodesError`) carry their problem; any other error
    becomes a "readable input" problem with its message as the detail.
    """
    if isinstance(error, SourceError | UnmappedCodesError):
        found = error.problem
        return Problem(_where(found.file, file), found.rule, found.detail, found.fix.rstrip(".") or "see the message")
    return Problem(file, "readable input", str(error), "see the message")


def _where(subject: str, file: str) -> str:
    """The error's subject when it is a path, else `file` (a subject like "chip 12" names no file)."""
    return subject if subject.startswith(("/", ".")) or "/" in subject else file


def raster_rows(
    source: SourceInput, crosswalk: Crosswalk, names: tuple[str, ...], years: Iterable[int] = ()
) -> tuple[list[Row], list[Problem]]:
    """Header facts of every product file the chips read: the files of each chip year, else of `year` in params.

    torchgeo keeps several years under one root, and a read without a year refuses to mix them.
    """
    rows: list[Row] = []
    problems: list[Problem] = []
    files: set[Path] = set()
    wanted: list[int | None] = [*sorted(set(years))] or [source.year]
    for year in wanted:
        try:
            files.update(reader(source, year).files())
        except CropharmonyError as exc:
            problems.append(problem_from(exc, str(source.labels)))
    for path in sorted(files):
        try:
            with rasterio.open(path) as src:
                nodata = src.nodata
                target = None
                if nodata is not None:
                    resolved = int(crosswalk.resolve(np.array([int(nodata)]))[0])
                    target = None if resolved == UNMAPPED_ID else names[resolved]
                rows.append(
                    {
                        "source": source.name,
                        "file": str(path),
                        "crs": crs_name(src.crs),
                        "declared_crs": crs_name(rasterio.crs.CRS.from_user_input(source.label_crs))
                        if source.label_crs
                        else None,
                        "res_x": float(abs(src.res[0])),
                        "res_y": float(abs(src.res[1])),
                        "dtype": src.dtypes[0],
                        "nodata": None if nodata is None else float(nodata),
                        "nodata_target": target,
                    }
                )
        except RasterioIOError as exc:
            detail = str(exc).rstrip(".")
            problems.append(Problem(str(path), "readable GeoTIFF", detail, "re-download or replace the file"))
    return rows, problems


def vector_rows(
    source: SourceInput, crosswalk: Crosswalk, names: tuple[str, ...]
) -> tuple[list[Row], list[Row], list[Problem]]:
    """Layer facts, and parcel counts per layer, code and emptiness, of a vector label product.

    The counts come from the pass that builds each layer's spatial index (`curation.sources.layer_index`), so a
    national layer is streamed once, batch by batch, and shared with the chips stage: validate never holds a whole
    layer in memory. Invalid geometries are counted per layer: the reader repairs them, so validate warns once.
    """
    layers: list[Row] = []
    features: list[Row] = []
    try:
        product = reader(source, source.year)
        assert isinstance(product, VectorLabelSource)  # get_source holds a `vector` row to a VectorLabelSource
        uris = product.layer_uris()
    except CropharmonyError as exc:
        return layers, features, [problem_from(exc, str(source.labels))]
    problems: list[Problem] = []
    for uri, file in uris:
        try:
            info = pyogrio.read_info(uri)
        except DataSourceError as exc:
            problems.append(Problem(str(file), "readable shapefile", str(exc), "re-download or replace it"))
            continue
        fields = list(info["fields"])
        columns = [c for c in product.code_columns(fields) if c in fields]
        crs = info.get("crs") or None
        layer: Row = {
            "source": source.name,
            "layer": uri,
            "crs": crs,
            "code_column": bool(columns),
            "features": int(info["features"]),
            "invalid_geometries": 0,
        }
        layers.append(layer)
        if not columns:
            continue
        try:
            index = layer_index(uri, file, product.index_columns(fields))
        except CropharmonyError as exc:
            problems.append(problem_from(exc, str(file)))
            continue
        layer["invalid_geometries"] = index.invalid_geometries
        for column in columns:  # one column, or one per year (each a layer of its own in the facts)
            name = uri if len(columns) == 1 else f"{uri}#{column}"
            counts = [count for count in index.codes if count.column == column]
            features += _feature_rows(source.name, name, counts, crosswalk, names)
    return layers, features, problems


def _feature_rows(
    source: str, layer: str, counts: Sequence[CodeCount], crosswalk: Crosswalk, names: tuple[str, ...]
) -> list[Row]:
    numeric = np.array([_as_code(c.code) for c in counts], dtype=np.int64)
    targets = crosswalk.resolve(np.where(numeric < 0, 0, numeric))
    return [
        {
            "source": source,
            "layer": layer,
            "feature": count.examples[0],
            "parcels": count.parcels,
            "examples": ", ".join(str(fid) for fid in count.examples),
            "code": count.code,
            "target": None if numeric[i] < 0 or targets[i] == UNMAPPED_ID else names[int(targets[i])],
            "empty": count.empty,
        }
        for i, count in enumerate(counts)
    ]


def _as_code(text: str | None) -> int:
    """An HCAT code text as an integer; -1 when it is not one (the schema reports it)."""
    if text is None:
        return 0
    try:
        return int(float(text)) if "." in text else int(text.strip())
    except ValueError:
        return -1
