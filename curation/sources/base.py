"""The small interface every label source implements, and the grid a chip is read on.

A source is pointed at a raw root laid out exactly as torchgeo downloads the product, discovers its files there,
and returns the product's native label codes on any chip grid (CRS, transform, width, height). The crosswalk, not
the reader, decides what the codes mean.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS

from curation.core.errors import SourceError, require_folder
from curation.core.registry import SourceInfo, source_info

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

    @abstractmethod
    def files(self) -> Sequence[Path]:
        """The product files found under the root (raises when none match the layout)."""

    @abstractmethod
    def read_labels(self, grid: ChipGrid) -> npt.NDArray[np.integer]:
        """Native label codes on `grid` (raises when the grid lies outside the product)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r})"
