"""Vector label products: parcel (or field) layers with a code attribute, indexed by bbox and rasterized per chip.

A product declares where its layers lie (`patterns`, release zips read in place) and which attribute holds its
codes: one column (`EC_hcat_c`) or a column per year (`CDL{year}`, as USDA Crop Sequence Boundaries). Everything
else (discovery, CRS and extent per layer, the bbox read, the rasterization, the code parsing) is shared here, so
validate and chips handle a new vector source without a line of core code.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pyogrio
from pyogrio.errors import DataSourceError
from rasterio.crs import CRS
from rasterio.features import rasterize

from curation.core.errors import SourceError
from curation.sources.base import Bounds, ChipGrid, LabelSource, format_bounds, intersects

NO_CODE = 0  # crosswalk code for pixels outside every parcel and for parcels without a code


@dataclass(frozen=True)
class Layer:
    """One parcel layer: a file on disk or inside a release zip."""

    uri: str
    file: Path
    crs: CRS
    bounds: Bounds


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

    def code_columns(self, fields: Sequence[str]) -> list[str]:
        """The code columns to read among a layer's `fields`: the year's one, or every year's when no year is set."""
        if "{year}" not in self.code_column:
            return [self.code_column]
        if self.year is not None:
            return [self.code_column.format(year=self.year)]
        pattern = re.compile("^" + re.escape(self.code_column).replace(r"\{year\}", r"\d{4}") + "$")
        return sorted(f for f in fields if pattern.match(f))

    def files(self) -> Sequence[Path]:
        """Layer files and release zips holding them, sorted."""
        layers = {p for pattern in self.patterns for p in self.root.rglob(pattern) if self.wanted(p.name)}
        zips = {p for p in self.root.rglob("*.zip") if self._zip_members(p)}
        found = sorted(layers | zips)
        if not found:
            globs = " or ".join(f"**/{p}" for p in self.patterns)
            raise self._no_files(f"{globs} (or a zip holding one)" + (f" for {self.year}" if self.year else ""))
        return found

    def _zip_members(self, path: Path) -> list[str]:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as exc:
            raise SourceError(path, "readable zip", str(exc), "re-download the release zip") from exc
        return sorted(n for n in names if any(Path(n).match(p) for p in self.patterns) and self.wanted(Path(n).name))

    def layer_uris(self) -> list[tuple[str, Path]]:
        """(GDAL path, file on disk) of every layer: files, and files inside release zips."""
        uris = []
        for file in self.files():
            if file.suffix == ".zip":
                uris += [(f"/vsizip/{file}/{member}", file) for member in self._zip_members(file)]
            else:
                uris.append((str(file), file))
        return uris

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
        return Layer(uri, file, CRS.from_user_input(info["crs"]), (minx, miny, maxx, maxy))

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
            frame = pyogrio.read_dataframe(layer.uri, bbox=box, columns=[column], fid_as_index=True)
            if frame.empty:
                continue
            codes = self.parse_codes(frame[column].to_list(), layer.uri, frame.index.to_list(), column)
            geometries = frame.set_crs(layer.crs.to_wkt(), allow_override=True).to_crs(grid.crs.to_wkt()).geometry
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
