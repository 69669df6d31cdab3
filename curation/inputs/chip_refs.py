"""What the validate and chips stages read: per source, its label product and its image chips, from params.

A source's imagery is either a folder of 13-band chips named `{year}_...tif` (the study's released chips, a user's
own, or the demo's) or, for chip products (South Africa, AgriFieldNet), the per-field band files the reader
assembles. Chip id = file stem; the label year comes from the `<year>_` prefix of the name, else from params.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from curation.core.errors import SourceError, require_folder
from curation.core.shared import SharedParams
from curation.sources import SOURCES
from curation.sources.base import ChipGrid, LabelSource
from curation.sources.chip_product import ZERO_FILLED_TAG, ChipProductSource

YEAR_PREFIX = re.compile(r"^(\d{4})_")


@dataclass(frozen=True)
class SourceInput:
    """One source as the pipeline sees it: where its labels and images lie, resolved against the raw root."""

    name: str
    labels: Path
    images: Path | None
    label_crs: str | None
    year: int | None
    month: int | None


@dataclass(frozen=True)
class ChipRef:
    """One image chip to process: enough to rebuild everything in a worker process."""

    source: SourceInput
    chip_id: str
    year: int
    image: Path | None  # the chip file; None when the product assembles it from per-band files


@dataclass(frozen=True)
class ChipImage:
    """An image chip's pixels and header facts."""

    data: npt.NDArray[np.generic]
    grid: ChipGrid
    dtype: str
    res: tuple[float, float]
    zero_filled: tuple[str, ...]  # bands the file declares as filled with zeros (absent from the product)


def source_inputs(shared: SharedParams) -> list[SourceInput]:
    """Every configured source, in params order, with paths under `shared.raw_root`."""
    return [
        SourceInput(
            name,
            shared.raw_root / conf.labels,
            None if conf.images is None else shared.raw_root / conf.images,
            conf.label_crs,
            conf.year,
            conf.month,
        )
        for name, conf in shared.sources.items()
    ]


def crs_name(crs: CRS | None) -> str | None:
    """`EPSG:<code>` when the CRS has one, else its WKT: comparable text for tables."""
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


@lru_cache(maxsize=64)
def reader(source: SourceInput, year: int | None) -> LabelSource:
    """The label reader of a source for one year, built once per process (it caches its file index)."""
    return SOURCES[source.name](source.labels, year=year)


def list_chips(source: SourceInput) -> list[ChipRef]:
    """Every image chip of a source, sorted by id (raises with the fix when there is none or a year is unknown)."""
    if source.images is None:
        product = reader(source, source.year)
        if not isinstance(product, ChipProductSource):
            raise SourceError(
                f"source '{source.name}'",
                "images",
                "the product has no imagery of its own",
                f"set shared.sources.{source.name}.images to its folder of image chips",
            )
        year = product.year if product.year is not None else 0
        return [ChipRef(source, chip_id, year, None) for chip_id in product.chip_ids()]
    require_folder(
        source.images,
        "image folder exists",
        f"no such folder for source '{source.name}'",
        f"run the demo stage or set shared.sources.{source.name}.images to the chip folder",
    )
    files = sorted(source.images.glob("*.tif"))
    if not files:
        raise SourceError(
            source.images,
            "image chips present",
            f"no *.tif in the folder of source '{source.name}'",
            "put the 13-band chips ({year}_{col}_{row}.tif) there",
        )
    return [ChipRef(source, path.stem, chip_year(path, source), path) for path in files]


def chip_year(path: Path, source: SourceInput) -> int:
    """The label year of a chip: its `<year>_` name prefix, else the source's `year` param."""
    match = YEAR_PREFIX.match(path.name)
    if match:
        return int(match.group(1))
    if source.year is None:
        raise SourceError(
            path,
            "chip year",
            f"the name has no `<year>_` prefix and shared.sources.{source.name}.year is null",
            "name chips like the study ({year}_{col}_{row}.tif) or set the year in params",
        )
    return source.year


def read_image(ref: ChipRef) -> ChipImage:
    """The chip's pixels and header, from its file or assembled from the product (month from params)."""
    if ref.image is None:
        product = reader(ref.source, ref.year)
        assert isinstance(product, ChipProductSource)
        date = product.image_date(ref.chip_id, ref.source.month)
        stack, grid = product.read_image(ref.chip_id, date)
        res = (abs(grid.transform.a), abs(grid.transform.e))
        return ChipImage(stack, grid, stack.dtype.name, res, product.ZERO_FILLED)
    try:
        with rasterio.open(ref.image) as src:
            data = src.read()
            zero_filled = tuple(b for b in src.tags().get(ZERO_FILLED_TAG, "").split(",") if b)
            grid = ChipGrid(src.crs, src.transform, src.width, src.height, ref.chip_id)
            return ChipImage(data, grid, src.dtypes[0], (abs(src.res[0]), abs(src.res[1])), zero_filled)
    except RasterioIOError as exc:
        raise SourceError(
            ref.image, "readable GeoTIFF", str(exc).rstrip("."), "re-download or regenerate the chip, or remove it"
        ) from exc


def read_labels(ref: ChipRef, grid: ChipGrid) -> npt.NDArray[np.integer]:
    """Native label codes of the chip on `grid` (the image's own grid)."""
    return reader(ref.source, ref.year).read_labels(grid)
