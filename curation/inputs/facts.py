"""Facts the validate and chips stages gather about inputs, as table rows their Pandera schemas check.

Gathering never raises on bad input: a reader error becomes a `Problem` beside the facts, so one run reports
every broken file. Functions that run on Dask workers take one picklable task and load what they need once per
process (crosswalk sets are cached).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyogrio
import rasterio
import shapely
from pyogrio.errors import DataSourceError
from rasterio.errors import RasterioIOError

from curation.core.errors import CropharmonyError, Problem, SourceError, UnmappedCodesError
from curation.core.legends import CrosswalkSet, load_set
from curation.core.remap import Crosswalk
from curation.core.schemas import UNMAPPED_ID
from curation.inputs.chip_refs import ChipImage, ChipRef, SourceInput, crs_name, read_image, read_labels, reader
from curation.sources.vector import VectorLabelSource

Row = dict[str, Any]


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
    """What one chip showed: its image facts, its label histogram and the problems met reading it."""

    source: str
    chip_id: str
    image: Row | None = None
    histogram: list[Row] = field(default_factory=list)
    ignore_share: float | None = None
    problems: list[Problem] = field(default_factory=list)


def image_row(task: ChipTask, image: ChipImage) -> Row:
    """The image facts the image-chip schema checks."""
    data = image.data
    names = task.bands if data.shape[0] == len(task.bands) else tuple(f"band {i + 1}" for i in range(data.shape[0]))
    maxima = data.reshape(data.shape[0], -1).max(axis=1) if data.size else np.zeros(data.shape[0])
    zero = [name for name, peak in zip(names, maxima, strict=True) if peak == 0 and name not in image.zero_filled]
    return {
        "source": task.ref.source.name,
        "chip_id": task.chip_id,
        "file": task.file,
        "bands": int(data.shape[0]),
        "dtype": image.dtype,
        "height": int(image.grid.height),
        "width": int(image.grid.width),
        "crs": crs_name(image.grid.crs),
        "has_transform": not image.grid.transform.is_identity,
        "res_x": float(image.res[0]),
        "res_y": float(image.res[1]),
        "zero_bands": ",".join(zero),
    }


def histogram_rows(task: ChipTask, codes: npt.NDArray[np.integer]) -> tuple[list[Row], float]:
    """Pixels per native code with its target class (None when the crosswalk lacks the code), and ignore share."""
    crosswalk = task.crosswalk
    values, counts = np.unique(codes, return_counts=True)
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
    """Read a chip's image and its labels on the image's grid; every failure becomes a problem (runs on workers)."""
    facts = ChipFacts(task.ref.source.name, task.chip_id)
    try:
        image = read_image(task.ref)
    except CropharmonyError as exc:
        facts.problems.append(problem_from(exc, task.file))
        return facts
    facts.image = image_row(task, image)
    if image.grid.crs is None or image.grid.transform.is_identity:
        return facts  # the schema reports it; labels cannot be placed without a grid
    try:
        codes = read_labels(task.ref, image.grid)
    except CropharmonyError as exc:
        facts.problems.append(problem_from(exc, task.file))
        return facts
    facts.histogram, facts.ignore_share = histogram_rows(task, codes)
    return facts


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


def raster_rows(source: SourceInput, crosswalk: Crosswalk, names: tuple[str, ...]) -> tuple[list[Row], list[Problem]]:
    """Header facts of every file of a raster label product."""
    rows: list[Row] = []
    problems: list[Problem] = []
    try:
        files = reader(source, None).files() if source.year is None else reader(source, source.year).files()
    except CropharmonyError as exc:
        return rows, [problem_from(exc, str(source.labels))]
    for path in files:
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
    """Layer facts and per-parcel facts (code, target, geometry validity) of a vector label product."""
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
        layers.append(
            {
                "source": source.name,
                "layer": uri,
                "crs": crs,
                "code_column": bool(columns),
                "features": int(info["features"]),
            }
        )
        if not columns:
            continue
        frame = pyogrio.read_dataframe(uri, columns=columns)
        geometry = frame.geometry.to_numpy()
        valid = shapely.is_valid(geometry)
        empty = shapely.is_empty(geometry) | shapely.is_missing(geometry)
        for column in columns:  # one column, or one per year (each a layer of its own in the facts)
            name = uri if len(columns) == 1 else f"{uri}#{column}"
            features += _feature_rows(source.name, name, frame[column], crosswalk, names, valid, empty)
    return layers, features, problems


def _feature_rows(
    source: str,
    layer: str,
    values: Iterable[object],
    crosswalk: Crosswalk,
    names: tuple[str, ...],
    valid: npt.NDArray[np.bool_],
    empty: npt.NDArray[np.bool_],
) -> list[Row]:
    codes = [None if v is None or str(v).strip() in ("", "nan") else str(v) for v in values]
    numeric = np.array([_as_code(c) for c in codes], dtype=np.int64)
    targets = crosswalk.resolve(np.where(numeric < 0, 0, numeric))
    return [
        {
            "source": source,
            "layer": layer,
            "feature": i,
            "code": code,
            "target": None if numeric[i] < 0 or targets[i] == UNMAPPED_ID else names[int(targets[i])],
            "valid": bool(valid[i]),
            "empty": bool(empty[i]),
        }
        for i, code in enumerate(codes)
    ]


def _as_code(text: str | None) -> int:
    """An HCAT code text as an integer; -1 when it is not one (the schema reports it)."""
    if text is None:
        return 0
    try:
        return int(float(text)) if "." in text else int(text.strip())
    except ValueError:
        return -1
