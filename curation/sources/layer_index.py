"""A parcel layer's spatial index, built once from the release file and read by every chip, stage and worker.

A bbox-filtered read of a shapefile scans the whole layer, and one inside a release zip decompresses it, for every
chip: the cost grows with the country (France has 9.5 million parcels). So each layer is converted once, in one
streaming pass, to a FlatGeobuf with its packed Hilbert R-tree (GDAL reads a bbox from it through the index), keyed
by the sha256 of the files it came from (`curation.core.cache`). Only the code columns and the source feature id
(`FID`) are kept, and parcels without a geometry are left out (they cover no pixel; they are counted). Chips
rasterize parcels in source order, so a read sorts by `FID` and gives the same labels as the source file.

The same pass counts what validate reports per layer (features, invalid and empty geometries, parcels per code), so
validate reads none of the layer again and never holds it in memory: a pass holds one batch of parcels at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError

from curation.core.cache import build_lock, cache_dir, file_digest, key_of, temporary_folder_beside, write_atomic
from curation.core.errors import SourceError

FORMAT = 1  # bump when the index's content changes: every index is rebuilt
FID = "cropharmony_fid"  # the parcel's feature id in the source layer (messages name parcels by it)
BATCH = 65_536  # parcels per streamed batch: memory of a pass is a few batches, whatever the layer's size
EXAMPLES = 5  # feature ids kept per code, for messages
READ_ERRORS = (DataSourceError, DataLayerError, FieldError, GeometryError, OSError, pa.ArrowException)


@dataclass(frozen=True)
class CodeCount:
    """Parcels of one code text (None: no code) and geometry state in one code column of a layer."""

    column: str
    code: str | None
    empty: bool
    parcels: int
    examples: tuple[int, ...]  # the first feature ids, ascending


@dataclass(frozen=True)
class LayerIndex:
    """One layer's index file and what the pass that built it counted."""

    path: Path
    features: int
    invalid_geometries: int
    codes: tuple[CodeCount, ...]

    def read(self, bbox: tuple[float, float, float, float], column: str) -> gpd.GeoDataFrame:
        """The parcels whose extent meets `bbox` (the layer's CRS), in source order, indexed by source feature id."""
        frame = pyogrio.read_dataframe(self.path, bbox=bbox, columns=[column, FID])
        frame = frame.sort_values(FID, kind="stable").set_index(FID)
        frame.index.name = None
        return frame


def source_files(uri: str, file: Path) -> list[Path]:
    """The files whose bytes make a layer: its zip, the shapefile and its sidecars, or a FileGDB's files."""
    if file.suffix.lower() == ".zip" or (file.is_file() and file.suffix.lower() != ".shp"):
        return [file]
    if file.is_dir():
        return sorted(p for p in file.rglob("*") if p.is_file())
    stem = file.name[:-4].lower()
    return sorted(p for p in file.parent.iterdir() if p.is_file() and p.name.lower().rsplit(".", 1)[0] == stem)


def layer_index(uri: str, file: Path, columns: Sequence[str]) -> LayerIndex:
    """The layer's index, built now (under a lock, so concurrent workers build it once) unless already cached."""
    member = uri.removeprefix(f"/vsizip/{file}")
    digests = [(p.name, file_digest(p)) for p in source_files(uri, file)]
    key = key_of(FORMAT, member, sorted(columns), digests)
    folder = cache_dir("layers") / key[:2]
    path, summary = folder / f"{key}.fgb", folder / f"{key}.json"
    found = _load(path, summary)
    if found is not None:
        return found
    with build_lock(path):
        found = _load(path, summary)  # another worker built it while this one waited
        if found is not None:
            return found
        counted = _build(uri, list(columns), path)
        write_atomic(summary, json.dumps(counted, sort_keys=True).encode())  # last: its presence means complete
    loaded = _load(path, summary)
    assert loaded is not None
    return loaded


def _load(path: Path, summary: Path) -> LayerIndex | None:
    try:
        counted = json.loads(summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not path.is_file():
        return None
    codes = tuple(
        CodeCount(row["column"], row["code"], row["empty"], row["parcels"], tuple(row["examples"]))
        for row in counted["codes"]
    )
    return LayerIndex(path, counted["features"], counted["invalid_geometries"], codes)


def _build(uri: str, columns: list[str], path: Path) -> dict[str, Any]:
    """Stream the layer into a FlatGeobuf with a spatial index at `path`, counting as it goes; the counts."""
    tally = _Tally(columns)
    with temporary_folder_beside(path) as folder:
        tmp = folder / path.name  # GDAL writes a folder of layers to a name without the .fgb suffix
        try:
            _convert(uri, columns, tmp, tally)
        except READ_ERRORS as exc:
            detail = str(exc).strip()
            raise SourceError(uri, "readable layer", detail, "re-download or replace the layer's files") from exc
        tmp.replace(path)
    return tally.counted()


def _convert(uri: str, columns: list[str], target: Path, tally: _Tally) -> None:
    with pyogrio.open_arrow(uri, columns=columns, return_fids=True, batch_size=BATCH, use_pyarrow=True) as (
        meta,
        reader,
    ):
        geometry = meta["geometry_name"] or "wkb_geometry"
        names = [FID if name == meta["fid_column"] else name for name in reader.schema.names]
        schema = pa.schema(
            [reader.schema.field(i).with_name(n) for i, n in enumerate(names)], metadata=reader.schema.metadata
        )

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                renamed = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                drawn = tally.add(renamed, geometry)
                yield renamed.filter(pa.array(drawn))  # a parcel without geometry covers no pixel: counted only

        pyogrio.write_arrow(
            pa.RecordBatchReader.from_batches(schema, batches()),
            target,
            driver="FlatGeobuf",
            geometry_name=geometry,
            geometry_type="Unknown",
            crs=meta["crs"],
            layer_options={"SPATIAL_INDEX": "YES"},
        )


class _Tally:
    """Per-layer counts gathered batch by batch: features, invalid geometries, parcels per code and emptiness."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.features = 0
        self.invalid = 0
        self.groups: dict[tuple[str, str | None, bool], tuple[int, list[int]]] = {}

    def add(self, batch: pa.RecordBatch, geometry_column: str) -> npt.NDArray[np.bool_]:
        """Count a batch; which of its parcels have a geometry (the index holds only those)."""
        geometry = shapely.from_wkb(np.asarray(batch.column(geometry_column).to_pylist(), dtype=object))
        empty = shapely.is_missing(geometry) | shapely.is_empty(geometry)
        self.features += batch.num_rows
        self.invalid += int((~empty & ~shapely.is_valid(geometry)).sum())
        fids = batch.column(FID).to_numpy()
        for column in self.columns:
            texts = pl.Series("code", [_code_text(v) for v in batch.column(column).to_pylist()], dtype=pl.String)
            frame = pl.DataFrame({"code": texts, "empty": empty, "fid": fids})
            grouped = frame.group_by("code", "empty").agg(pl.len(), pl.col("fid").sort().head(EXAMPLES))
            for code, is_empty, count, examples in grouped.iter_rows():
                key = (column, code, bool(is_empty))
                before, kept = self.groups.get(key, (0, []))
                self.groups[key] = (before + count, sorted([*kept, *examples])[:EXAMPLES])
        drawn: npt.NDArray[np.bool_] = ~empty
        return drawn

    def counted(self) -> dict[str, Any]:
        rows = [
            {"column": column, "code": code, "empty": empty, "parcels": count, "examples": examples}
            for (column, code, empty), (count, examples) in sorted(
                self.groups.items(), key=lambda item: (item[0][0], item[0][1] or "", item[0][2])
            )
        ]
        return {"features": self.features, "invalid_geometries": self.invalid, "codes": rows}


def _code_text(value: object) -> str | None:
    """A code value as validate reports it: None when missing or blank, else its text (as pandas prints it)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    return None if text.strip() in ("", "nan") else text
