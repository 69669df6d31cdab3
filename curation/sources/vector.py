"""Vector label products: parcel (or field) layers with a code attribute, indexed by bbox and rasterized per chip.

A product declares where its layers lie (`patterns`, release zips read in place) and which attribute holds its
codes: one column (`EC_hcat_c`) or a column per year (`CDL{year}`, as USDA Crop Sequence Boundaries). Everything
else (discovery, CRS and extent per layer, the bbox read, the rasterization, the code parsing) is shared here, so
validate and chips handle a new vector source without a line of core code.

Each layer is read once. A layer is known by its file name: the same name extracted under the root and inside a
release zip (torchgeo keeps both), or in two places, is read from the extracted file (then the first path, then
the first zip, in sorted order) and the other copies are reported as unused files. Invalid geometries (self-
intersecting parcels, common in national releases) are repaired before rasterizing (`repaired`), so the chips
stage and validate see the same parcels.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyogrio
import shapely
from pyogrio.errors import DataSourceError
from rasterio.crs import CRS
from rasterio.features import rasterize

from curation.core.errors import Problem, SourceError
from curation.sources.base import Bounds, ChipGrid, LabelSource, format_bounds, intersects
from curation.sources.files import UNUSED, find, name_matches
from curation.sources.layer_index import LayerIndex, layer_index

NO_CODE = 0  # crosswalk code for pixels outside every parcel and for parcels without a code
SHAPEFILE_PARTS = (".shx", ".dbf")  # without them GDAL refuses the file (.shx) or reads no attributes (.dbf)


def repaired(geometries: npt.NDArray[np.object_]) -> npt.NDArray[np.object_]:
    """Geometries with the invalid ones made valid, polygonal parts only (None where nothing polygonal is left).

    GEOS's `structure` method: a ring crossing itself (a bowtie) becomes its lobes, overlapping parts of a
    multipolygon become their union (the linework method would cut their overlap out of the parcel), and parts that
    collapse to lines or points are dropped. Valid geometries are returned as they are.
    """
    out = np.asarray(geometries, dtype=object).copy()
    bad = ~shapely.is_valid(out) & ~shapely.is_missing(out)
    if bad.any():
        fixed = shapely.make_valid(out[bad], method="structure", keep_collapsed=False)
        out[bad] = [_polygonal(g) for g in fixed]
    return out


def _polygonal(geometry: shapely.Geometry | None) -> shapely.Geometry | None:
    """The polygons of a repaired geometry as one (multi)polygon, None when it holds none."""
    if geometry is None or geometry.is_empty:
        return None
    if isinstance(geometry, shapely.Polygon | shapely.MultiPolygon):
        return geometry
    polygons = [q for part in shapely.get_parts(geometry) for q in shapely.get_parts(part)]
    kept = [q for q in polygons if isinstance(q, shapely.Polygon) and not q.is_empty]
    return shapely.MultiPolygon(kept) if kept else None


def _require_parts(where: str | Path, name: str, beside: set[str]) -> None:
    """Raise naming the shapefile `name` (at `where`) when its .shx or .dbf is not `beside` it.

    `beside` holds the lower-case names of the files next to it: GDAL accepts either case.
    """
    if not name.lower().endswith(".shp"):
        return
    missing = [name[:-4] + ext for ext in SHAPEFILE_PARTS if (name[:-4] + ext).lower() not in beside]
    if missing:
        raise SourceError(
            where,
            "shapefile sidecars",
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing",
            f"copy the {' and '.join(Path(m).suffix for m in missing)} (and .prj) that came with it: a shapefile is "
            "its .shp, .shx, .dbf and .prj together",
        )


@dataclass
class Plan:
    """Which layers a reader reads and where, and every layer it found and leaves, with the reason."""

    disk: list[Path] = field(default_factory=list)  # layer files (or FileGDB folders) read from disk
    zips: dict[Path, list[str]] = field(default_factory=dict)  # release zip -> the members read from it
    skipped: dict[str, tuple[str, str]] = field(default_factory=dict)  # path or /vsizip/ uri -> (detail, fix)
    in_zip: dict[str, Path] = field(default_factory=dict)  # skipped /vsizip/ uri -> its zip
    broken: dict[Path, SourceError] = field(default_factory=dict)  # zips that do not open (the read raises)


@dataclass(frozen=True)
class Layer:
    """One parcel layer: a file on disk or inside a release zip."""

    uri: str
    file: Path
    crs: CRS
    bounds: Bounds
    fields: tuple[str, ...] = ()


class VectorLabelSource(LabelSource):
    """Layers matching `patterns` anywhere under the root (zips holding them are read in place)."""

    patterns: ClassVar[tuple[str, ...]]  # file globs of the layers (a FileGDB is a folder: `*.gdb` matches it)
    code_column: ClassVar[str]  # the code attribute; `{year}` in it names a column per year (e.g. CDL{year})
    code_name: ClassVar[str] = "code"  # what the codes are called in messages (e.g. "HCAT code")
    a_code: ClassVar[str] = "a code"  # the same with its article ("an HCAT code")
    layer_hint: ClassVar[str] = "the layer that covers it"  # what to add when a chip lies outside every layer

    def __init__(self, root: Path | str, year: int | None = None) -> None:
        super().__init__(root, year)
        self._layers: list[Layer] | None = None
        self._plan: Plan | None = None
        self._names: dict[Path, list[str]] = {}
        self._indexes: dict[str, LayerIndex] = {}

    @classmethod
    def words(cls) -> dict[str, str]:
        """How messages name the product's codes (`code_column`, `code_name`, `a_code`, `product`)."""
        return {
            "code_column": cls.code_column.replace("{year}", "<year>"),
            "code_name": cls.code_name,
            "a_code": cls.a_code,
            "product": cls.info.title,
        }

    def wanted(self, name: str) -> bool:
        """Whether a layer file of this name holds the reader's year (every file, unless a product names years)."""
        return True

    def skip_reason(self, name: str) -> tuple[str, str]:
        """(detail, fix) for a layer of this name that `wanted` leaves out."""
        return (f"not a layer of {self.year}", "keep it for chips of its year, or remove it")

    def code_columns(self, fields: Sequence[str]) -> list[str]:
        """The code columns to read among a layer's `fields`: the year's one, or every year's when no year is set."""
        if "{year}" not in self.code_column:
            return [self.code_column]
        if self.year is not None:
            return [self.code_column.format(year=self.year)]
        pattern = re.compile("^" + re.escape(self.code_column).replace(r"\{year\}", r"\d{4}") + "$")
        return sorted(f for f in fields if pattern.match(f))

    def _is_layer(self, name: str) -> bool:
        return any(name_matches(name, p) for p in self.patterns)

    def plan(self) -> Plan:
        """Where each layer is read from (each name once, extracted files first) and what is left, with why; cached."""
        if self._plan is not None:
            return self._plan
        plan = Plan()
        seen: dict[str, str] = {}  # layer name (lower case) -> where it is read
        for path in sorted({p for pattern in self.patterns for p in find(self.root, pattern)}):
            key = path.name.lower()
            if not self.wanted(path.name):
                plan.skipped[str(path)] = self.skip_reason(path.name)
            elif key in seen:
                plan.skipped[str(path)] = (f"the same layer as {seen[key]}: read once, from there", "remove the copy")
            else:
                seen[key] = str(path)
                plan.disk.append(path)
        for archive in sorted(p for p in find(self.root, "*.zip") if p.is_file()):
            try:
                members = self._zip_layers(archive)
            except SourceError as exc:
                plan.broken[archive] = exc
                continue
            for member in members:
                uri, key = f"/vsizip/{archive}/{member}", Path(member).name.lower()
                plan.in_zip[uri] = archive
                if not self.wanted(Path(member).name):
                    plan.skipped[uri] = self.skip_reason(Path(member).name)
                elif key in seen:
                    extracted = not seen[key].startswith("/vsizip/")
                    plan.skipped[uri] = (
                        f"the same layer as {seen[key]}: read once, from "
                        + ("the extracted file" if extracted else "the first zip holding it"),
                        "remove the zip, or the extracted copy to read the layer from the zip"
                        if extracted
                        else "remove the copy",
                    )
                else:
                    seen[key] = uri
                    plan.zips.setdefault(archive, []).append(member)
        self._plan = plan
        return plan

    def files(self) -> Sequence[Path]:
        """Layer files and release zips holding them, sorted (each layer once: see the module docstring)."""
        plan = self.plan()
        if plan.broken:
            raise next(iter(plan.broken.values()))
        found = sorted([*plan.disk, *plan.zips])
        if not found:
            globs = " or ".join(f"**/{p}" for p in self.patterns)
            skipped = "; ".join(f"{where}: {detail}" for where, (detail, _) in sorted(plan.skipped.items()))
            raise SourceError(
                self.root,
                "file pattern",
                f"no file matches {globs} (or a zip holding one)" + (f" for {self.year}" if self.year else "")
                + f" for source '{self.info.name}'" + (f" (found and not read: {skipped})" if skipped else ""),
                f"lay the product out as {self.info.layout} (as torchgeo downloads it)",
            )  # fmt: skip
        return found

    def _zip_names(self, path: Path) -> list[str]:
        if path not in self._names:
            try:
                with zipfile.ZipFile(path) as archive:
                    self._names[path] = archive.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise SourceError(path, "readable zip", str(exc), "re-download the release zip") from exc
        return self._names[path]

    def _zip_layers(self, path: Path) -> list[str]:
        """Members of a zip that are layers by name (any year)."""
        return sorted(n for n in self._zip_names(path) if self._is_layer(Path(n).name))

    def _zip_members(self, path: Path) -> list[str]:
        """The members read from a zip."""
        return self.plan().zips.get(path, [])

    def layer_uris(self) -> list[tuple[str, Path]]:
        """(GDAL path, file on disk) of every layer: files, and files inside release zips.

        A shapefile without its .shx or .dbf raises here, naming the .shp, before GDAL refuses it (.shx) or reads
        it as parcels without attributes (.dbf).
        """
        uris = []
        for file in self.files():
            if file.suffix.lower() == ".zip":
                names = {n.lower() for n in self._zip_names(file)}
                for member in self._zip_members(file):
                    uri, folder = f"/vsizip/{file}/{member}", member[: len(member) - len(Path(member).name)]
                    _require_parts(
                        uri, Path(member).name, {n[len(folder) :] for n in names if n.startswith(folder.lower())}
                    )
                    uris.append((uri, file))
            else:
                if file.is_file():
                    _require_parts(file, file.name, {p.name.lower() for p in file.parent.iterdir()})
                uris.append((str(file), file))
        return uris

    def used_paths(self) -> set[Path]:
        """Layer files and zips read, and zips that do not open (the read reports those)."""
        plan = self.plan()
        return {*plan.disk, *plan.zips, *plan.broken}

    def unit_patterns(self) -> tuple[str, ...]:
        """FileGDB layers are folders: one entry each."""
        return tuple(p for p in self.patterns if p.lower().endswith(".gdb"))

    def unused_reason(self, path: Path) -> tuple[str, str]:
        """A zip without a layer is named as such; another file as not a product file."""
        if path.suffix.lower() == ".zip":
            globs = " or ".join(self.patterns)
            return (f"a zip holding no {self.info.title} layer ({globs})", "remove it, or put the release zip here")
        return super().unused_reason(path)

    def extra_unused(self) -> list[Problem]:
        """Layers found and left (another year, a copy of a layer read elsewhere), with the reason.

        One row per layer file or zip member, and one for a zip none of whose layers is read (reasons joined).
        """
        plan = self.plan()
        rows = []
        whole: dict[Path, list[tuple[str, str, str]]] = {}
        for where, (detail, fix) in sorted(plan.skipped.items()):
            archive = plan.in_zip.get(where)
            if archive is not None and archive not in plan.zips:
                whole.setdefault(archive, []).append((where.removeprefix(f"/vsizip/{archive}/"), detail, fix))
            else:
                rows.append(Problem(where, UNUSED, detail, fix))
        for archive, members in whole.items():
            detail = "; ".join(f"{member}: {detail}" for member, detail, _ in members)
            rows.append(Problem(str(archive), UNUSED, f"every layer inside is left ({detail})", members[0][2]))
        return sorted(rows, key=lambda p: p.file)

    def layers(self) -> list[Layer]:
        """Every layer with its CRS and extent, read once."""
        if self._layers is None:
            self._layers = [self._layer(uri, file) for uri, file in self.layer_uris()]
        return self._layers

    def _layer(self, uri: str, file: Path) -> Layer:
        try:
            info = pyogrio.read_info(uri)
        except DataSourceError as exc:
            raise SourceError(file, "readable shapefile", str(exc), "re-download or replace it") from exc
        if not info.get("crs"):
            raise SourceError(uri, "CRS known", "the layer has no .prj", "add the national CRS's .prj file")
        fields = list(info["fields"])
        columns = self.code_columns(fields)
        missing = [c for c in columns if c not in fields] or ([] if columns else [self.code_column])
        if missing:
            raise SourceError(
                uri,
                f"{self.code_name} column",
                f"no '{missing[0]}' field (fields: {', '.join(fields)})",
                f"use the {self.info.title} release files, which carry {missing[0]}",
            )
        minx, miny, maxx, maxy = info["total_bounds"]
        return Layer(uri, file, CRS.from_user_input(info["crs"]), (minx, miny, maxx, maxy), tuple(fields))

    def index_columns(self, fields: Sequence[str]) -> list[str]:
        """The code columns an index keeps: every year's, so readers of each year share one index per layer."""
        if "{year}" not in self.code_column:
            return [self.code_column]
        pattern = re.compile("^" + re.escape(self.code_column).replace(r"\{year\}", r"\d{4}") + "$")
        return sorted(f for f in fields if pattern.match(f))

    def layer_index(self, layer: Layer) -> LayerIndex:
        """The layer's spatial index (built on first use, then cached on disk by content); once per reader."""
        if layer.uri not in self._indexes:
            self._indexes[layer.uri] = layer_index(layer.uri, layer.file, self.index_columns(layer.fields))
        return self._indexes[layer.uri]

    def index_layers(self) -> None:
        """Build (or find) every layer's index now, e.g. before chips fan out to workers."""
        for layer in self.layers():
            self.layer_index(layer)

    def _label_column(self) -> str:
        if "{year}" in self.code_column and self.year is None:
            raise SourceError(
                self.root,
                "label year",
                f"{self.info.name} keeps one {self.code_column} column per year and no year was given",
                f"pass the chip's year (name chips <year>_..., or set shared.sources.{self.info.name}.year)",
            )
        return self.code_columns(())[0]

    def read_labels(self, grid: ChipGrid) -> npt.NDArray[np.integer]:
        """Codes of the parcels rasterized onto `grid` (pixel centres); 0 outside parcels."""
        column = self._label_column()
        layers = self.layers()
        out = np.full(grid.shape, NO_CODE, dtype=np.int64)
        touched = False
        for layer in layers:
            box = grid.bounds_in(layer.crs)
            if not intersects(box, layer.bounds):
                continue
            touched = True
            frame = self.layer_index(layer).read(box, column)
            if frame.empty:
                continue
            codes = self.parse_codes(frame[column].to_list(), layer.uri, frame.index.to_list(), column)
            repair = gpd.GeoSeries(repaired(frame.geometry.to_numpy()), index=frame.index, crs=layer.crs.to_wkt())
            geometries = repair.to_crs(grid.crs.to_wkt())
            shapes = [(geom, i + 1) for i, geom in enumerate(geometries) if geom is not None and not geom.is_empty]
            if not shapes:
                continue
            index = rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="int32")
            hit = index > 0
            out[hit] = codes[index[hit] - 1]
        if not touched:
            extents = "; ".join(
                f"{layer.uri} {format_bounds(layer.bounds)} in {layer.crs.to_string()}" for layer in layers
            )
            raise SourceError(
                f"chip {grid.chip_id or '?'}",
                "inside product",
                f"its bounds {format_bounds(grid.bounds)} in {grid.crs.to_string()} lie outside every "
                f"{self.info.title} layer ({extents})",
                f"drop the chip or add {self.layer_hint} under {self.root}",
            )
        return out

    def parse_codes(
        self, values: list[object], uri: str, features: Sequence[int] = (), column: str | None = None
    ) -> npt.NDArray[np.int64]:
        """Codes as integers; a parcel with no code gets 0 (ignore), text that is not a code is an error."""
        codes = np.zeros(len(values), dtype=np.int64)
        for i, value in enumerate(values):
            if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
                continue
            text = str(value).strip()
            try:
                codes[i] = int(float(text)) if "." in text else int(text)
            except ValueError as exc:
                feature = features[i] if features else i
                raise SourceError(
                    uri,
                    f"{self.code_name} is an integer",
                    f"feature {feature} has {text!r}",
                    f"correct the {column or self.code_column} attribute",
                ) from exc
        return codes
