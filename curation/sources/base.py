"""The small interface every label source implements, and the grid a chip is read on.

A source is pointed at a raw root laid out exactly as torchgeo downloads the product, discovers its files there,
and returns the product's native label codes on any chip grid (CRS, transform, width, height). The crosswalk, not
the reader, decides what the codes mean.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pyproj
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from curation.core.cache import file_digest, key_of
from curation.core.errors import Problem, SourceError, require_folder
from curation.core.registry import SourceInfo, source_info
from curation.sources.files import UNUSED, is_documentation, is_sidecar, walk

Bounds = tuple[float, float, float, float]


@dataclass(frozen=True)
class ChipGrid:
    """The pixel grid of one Sentinel-2 chip: labels are cut on exactly this grid."""

    crs: CRS
    transform: Affine
    width: int
    height: int
    chip_id: str = ""

    @property
    def bounds(self) -> Bounds:
        """(minx, miny, maxx, maxy) in the grid's CRS."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    def bounds_in(self, crs: CRS) -> Bounds:
        """The grid's bounds transformed to another CRS (densified edges, so curved edges are covered)."""
        if crs == self.crs:
            return self.bounds
        minx, miny, maxx, maxy = _transformer(self.crs.to_wkt(), crs.to_wkt()).transform_bounds(
            *self.bounds, densify_pts=21
        )
        return (float(minx), float(miny), float(maxx), float(maxy))

    @classmethod
    def of_raster(cls, path: Path, chip_id: str | None = None) -> ChipGrid:
        """The grid of an existing GeoTIFF (an image chip), with its file stem as chip id."""
        with rasterio.open(path) as src:
            if src.crs is None:
                raise SourceError(path, "CRS present", "the raster has no CRS", "write the chip with its CRS")
            return cls(src.crs, src.transform, src.width, src.height, chip_id or path.stem)


def _with_sidecars(path: Path) -> list[Path]:
    """Every file a read of `path` can depend on: it and its sidecars, or a FileGDB folder's files.

    GDAL reads `x.dbf` and `x.prj` with `x.shp`, and `x.tif.aux.xml` or `x.tfw` with `x.tif` (they can set nodata
    or the CRS), so a change in any of them must change the key.
    """
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    if not path.is_file():
        return []
    stem = path.name.rsplit(".", 1)[0].lower() + "."
    return sorted(p for p in path.parent.iterdir() if p.is_file() and p.name.lower().startswith(stem))


@lru_cache(maxsize=1)
def readers_code_digest() -> str:
    """sha256 of the readers' own files and the libraries they read with: cached windows never outlive a change."""
    files = sorted(p for p in Path(__file__).parent.glob("*.*") if p.is_file())
    libraries = [rasterio.__version__, rasterio.__gdal_version__, pyproj.__version__, pyproj.proj_version_str]
    libraries += [importlib.metadata.version(name) for name in ("shapely", "pyogrio")]
    return key_of(libraries, *[(p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in files])


@lru_cache(maxsize=256)
def _transformer(source_wkt: str, target_wkt: str) -> Transformer:
    """A PROJ transformer per CRS pair, built once: building one costs more than warping a chip."""
    return Transformer.from_crs(source_wkt, target_wkt, always_xy=True)


def intersects(a: Bounds, b: Bounds) -> bool:
    """Whether two boxes in one CRS overlap with positive area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def format_bounds(bounds: Bounds) -> str:
    """Bounds rounded for messages."""
    return "(" + ", ".join(f"{v:.6g}" for v in bounds) + ")"


class LabelSource(ABC):
    """A national crop-label product under a raw root in torchgeo's layout."""

    name: ClassVar[str]  # the source's row in curation/sources/registry.csv
    info: ClassVar[SourceInfo]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and "info" not in cls.__dict__:
            cls.info = source_info(cls.name)  # provenance is data: the registry row, not code

    def __init__(self, root: Path | str, year: int | None = None) -> None:
        self.root = Path(root)
        self.year = year
        self._content_key: str | None = None
        require_folder(
            self.root,
            "raw root exists",
            f"no such folder for source '{self.info.name}'",
            f"point the source at a folder laid out as {self.info.layout}",
        )

    def _no_files(self, pattern: str) -> SourceError:
        return SourceError(
            self.root,
            "file pattern",
            f"no file matches {pattern} for source '{self.info.name}'",
            f"lay the product out as {self.info.layout} (as torchgeo downloads it)",
        )

    cache_windows: ClassVar[bool] = True  # label windows worth caching (not when a chip's labels are one small file)

    def content_key(self) -> str | None:
        """A key of every byte a read depends on: the files read (sha256) and the readers' code; once per reader.

        Label windows are cached under it (`curation.inputs.label_windows`), so validate and chips read each chip's
        labels once. None when nothing is to be cached or the product's files are missing (the read reports that).
        """
        if not self.cache_windows:
            return None
        if self._content_key is None:
            try:
                files = sorted(self.used_paths())
            except SourceError:
                return None
            if not files:
                return None
            parts = sorted({part for f in files for part in _with_sidecars(f)})
            digests = [(str(p.relative_to(self.root)), file_digest(p)) for p in parts]
            self._content_key = key_of(type(self).__qualname__, self.year, digests, readers_code_digest())
        return self._content_key

    @abstractmethod
    def files(self) -> Sequence[Path]:
        """The product files found under the root (raises when none match the layout)."""

    @abstractmethod
    def read_labels(self, grid: ChipGrid) -> npt.NDArray[np.integer]:
        """Native label codes on `grid` (raises when the grid lies outside the product)."""

    # ------------------------------------------------------------ files found and not read

    def used_paths(self) -> set[Path]:
        """Every file (or FileGDB folder) a read of this reader opens; none when the layout matches nothing."""
        try:
            return set(self.files())
        except SourceError:
            return set()  # the read reports that error itself; here every file found is unused

    def scan_roots(self) -> list[Path]:
        """The folders whose files the reader accounts for (the whole root, unless a product says otherwise)."""
        return [self.root]

    def unit_patterns(self) -> tuple[str, ...]:
        """Globs of folders that are one input each (a FileGDB), listed as one entry and never descended into."""
        return ()

    def is_companion(self, path: Path) -> bool:
        """A file the product ships beside its inputs on purpose and no stage reads (none, unless a product says)."""
        return False

    def unused_reason(self, path: Path) -> tuple[str, str]:
        """(detail, fix) of a file found under the root and not read."""
        layout = self.info.layout
        return (
            f"not a {self.info.title} product file (the reader reads {layout})",
            f"remove it, or name it as the layout expects: {layout}",
        )

    def extra_unused(self) -> list[Problem]:
        """Inputs not read that are not files of their own (layers inside a release zip, in vector products)."""
        return []

    def unused_files(self) -> list[Problem]:
        """Every file found under the root that this reader does not read, with the reason, sorted by file.

        Documentation and sidecars (of read files and of reported ones alike) are not listed: see
        `curation/sources/files.py`. Nothing else is left out, so nothing under a root is dropped silently.
        """
        used = self.used_paths()
        found = [p for p in walk(self.scan_roots(), self.unit_patterns()) if not is_documentation(p)]
        by_folder: dict[Path, list[Path]] = {}
        for path in found:
            by_folder.setdefault(path.parent, []).append(path)
        rows = list(self.extra_unused())
        reported = {row.file for row in rows}
        for path in found:
            if path in used or str(path) in reported or self.is_companion(path):
                continue
            if any(is_sidecar(path, other) for other in by_folder[path.parent]):
                continue  # a shapefile's .dbf, a GeoTIFF's .ovr: it goes (or is reported) with its file
            rows.append(Problem(str(path), UNUSED, *self.unused_reason(path)))
        return sorted(rows, key=lambda p: (p.file, p.detail))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"
