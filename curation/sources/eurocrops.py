"""EuroCrops (Europe): parcel shapefiles per country and year with HCAT codes, in national CRSs."""

from __future__ import annotations

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

from curation.sources.base import Bounds, ChipGrid, LabelSource, SourceError, SourceInfo, format_bounds, intersects

NO_CODE = 0  # crosswalk code for pixels outside parcels and parcels without an HCAT code


@dataclass(frozen=True)
class Layer:
    """One parcel layer: a shapefile on disk or inside a release zip."""

    uri: str
    file: Path
    crs: CRS
    bounds: Bounds


class EuroCrops(LabelSource):
    """torchgeo layout: `*_EC*.shp` anywhere under the root (release zips are read in place) plus `HCAT*.csv`."""

    info: ClassVar[SourceInfo] = SourceInfo(
        name="eurocrops",
        title="EuroCrops",
        region="European Union",
        continent="Europe",
        years=(2018, 2019, 2020, 2021),
        licence="CC BY 4.0",
        citation="Schneider, M., Schelte, T., Schmitz, F., Körner, M. EuroCrops: The Largest Harmonized Open Crop "
        "Dataset Across the European Union. Scientific Data 10, 612 (2023).",
        doi="10.5281/zenodo.6866846",
        kind="vector",
        layout="<root>/**/<CC>_<year>_EC*.shp (or the release zips) with <root>/HCAT*.csv",
        study_name="eurocrops",
    )
    code_column = "EC_hcat_c"
    pattern = "*_EC*.shp"

    def __init__(self, root: Path | str, year: int | None = None) -> None:
        super().__init__(root, year)
        self._layers: list[Layer] | None = None

    def _wanted(self, name: str) -> bool:
        return self.year is None or f"_{self.year}" in name

    def files(self) -> Sequence[Path]:
        """Shapefiles and release zips holding them, sorted."""
        shapefiles = [p for p in self.root.rglob(self.pattern) if self._wanted(p.name)]
        zips = [p for p in self.root.rglob("*.zip") if self._zip_members(p)]
        found = sorted({*shapefiles, *zips})
        if not found:
            raise self._no_files(
                f"**/{self.pattern} (or a zip holding one)" + (f" for {self.year}" if self.year else "")
            )
        return found

    def _zip_members(self, path: Path) -> list[str]:
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as exc:
            raise SourceError(f"{path}: readable zip: {exc}. Fix: re-download the release zip") from exc
        return sorted(n for n in names if Path(n).match(self.pattern) and self._wanted(Path(n).name))

    def hcat_table(self) -> Path | None:
        """The HCAT csv torchgeo keeps beside the shapefiles, when present."""
        tables = sorted(self.root.rglob("HCAT*.csv"))
        return tables[0] if tables else None

    def layer_uris(self) -> list[tuple[str, Path]]:
        """(GDAL path, file on disk) of every parcel layer: shapefiles, and shapefiles inside release zips."""
        uris = []
        for file in self.files():
            if file.suffix == ".zip":
                uris += [(f"/vsizip/{file}/{member}", file) for member in self._zip_members(file)]
            else:
                uris.append((str(file), file))
        return uris

    def layers(self) -> list[Layer]:
        """Every parcel layer with its CRS and extent, read once."""
        if self._layers is None:
            self._layers = [self._layer(uri, file) for uri, file in self.layer_uris()]
        return self._layers

    def _layer(self, uri: str, file: Path) -> Layer:
        try:
            info = pyogrio.read_info(uri)
        except DataSourceError as exc:
            raise SourceError(f"{file}: readable shapefile: {exc}. Fix: re-download or replace it") from exc
        if not info.get("crs"):
            raise SourceError(f"{uri}: CRS known: the layer has no .prj. Fix: add the national CRS's .prj file")
        if self.code_column not in list(info["fields"]):
            raise SourceError(
                f"{uri}: HCAT code column: no '{self.code_column}' field (fields: {', '.join(info['fields'])}). "
                f"Fix: use the EuroCrops release files, which carry {self.code_column}"
            )
        minx, miny, maxx, maxy = info["total_bounds"]
        return Layer(uri, file, CRS.from_user_input(info["crs"]), (minx, miny, maxx, maxy))

    def read_labels(self, grid: ChipGrid) -> npt.NDArray[np.integer]:
        """HCAT codes of the parcels rasterized onto `grid` (pixel centres); 0 outside parcels."""
        layers = self.layers()
        out = np.full(grid.shape, NO_CODE, dtype=np.int64)
        touched = False
        for layer in layers:
            box = grid.bounds_in(layer.crs)
            if not intersects(box, layer.bounds):
                continue
            touched = True
            frame = pyogrio.read_dataframe(layer.uri, bbox=box, columns=[self.code_column], fid_as_index=True)
            if frame.empty:
                continue
            codes = _parse_codes(frame[self.code_column].to_list(), layer.uri, frame.index.to_list())
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
                f"chip {grid.chip_id or '?'}: inside product: its bounds {format_bounds(grid.bounds)} in "
                f"{grid.crs.to_string()} lie outside every EuroCrops layer ({extents}). "
                f"Fix: drop the chip or add the country's shapefile under {self.root}"
            )
        return out


def _parse_codes(values: list[object], uri: str, features: Sequence[int] = ()) -> npt.NDArray[np.int64]:
    """HCAT codes as integers; a parcel with no code gets 0 (ignore), text that is not a code is an error."""
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
                f"{uri}: HCAT code is an integer: feature {feature} has {text!r}. Fix: correct the EC_hcat_c attribute"
            ) from exc
    return codes
