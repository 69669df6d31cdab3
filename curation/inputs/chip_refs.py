"""What the validate and chips stages read: per source, its label product and its image chips, from params.

A source's imagery is either a folder of 13-band chips named `{year}_...tif` (the study's released chips, a user's
own, or the demo's) or, for chip products (South Africa, AgriFieldNet) without one, the per-field band files the
reader assembles. A chip product with an image folder (the study's `sentinel2_sact_2017_subsampled`) is read like a
folder source: its chips are the folder's files, linked by the chips stage, and their labels are cut from the
product's label rasters on each chip's grid (`ChipProductSource.cut_labels`). Chip id = file stem; the label year
comes from the `<year>_` prefix of the name, else from params.

Listing (`scan_chips`) reads `.tif` and `.tiff` in any case and names every other entry of an image folder with its
reason (warnings, rule "unused file"): nothing there is left out without a word. Chip ids must be safe file and list
names (`CHIP_ID`): a newline or a comma in a name would break the CRLF lists and CSVs the later stages write.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from curation.core.errors import Problem, SourceError, require_folder, shorten
from curation.core.registry import source_info
from curation.core.shared import SharedParams
from curation.inputs.label_windows import read_window
from curation.sources import SOURCES
from curation.sources.base import ChipGrid, LabelSource
from curation.sources.chip_product import ZERO_FILLED_TAG, ChipProductSource, LabelCut

YEAR_PREFIX = re.compile(r"^(\d{4})_")
CHIP_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
"""A chip id (file stem): letters, digits, `_`, `.`, `-`, not starting with `.` or `-`."""
CHIP_SUFFIXES = (".tif", ".tiff")  # compared in lower case: `.TIF` chips are read like `.tif` ones
BAND_FILE = re.compile(r"^(?P<chip>.+?)[_-](?P<band>B0?[1-9]|B1[0-2]|B8A)(?:_\d+m)?$", re.IGNORECASE)
"""A one-band file of a chip (BigEarthNet-like `<chip>_B01.tif`, `<chip>_B8A.tif`)."""


@dataclass(frozen=True)
class SourceInput:
    """One source as the pipeline sees it: where its labels and images lie, resolved against the raw root."""

    name: str
    labels: Path
    images: Path | None
    label_crs: str | None
    year: int | None
    month: int | None
    raw_root: Path | None = None  # what the paths are relative to (the DVC dependency folder)


@dataclass(frozen=True)
class ChipRef:
    """One image chip to process: enough to rebuild everything in a worker process."""

    source: SourceInput
    chip_id: str
    year: int
    image: Path | None  # the chip file; None when the product assembles it from per-band files


@dataclass
class ChipListing:
    """A source's chips, the listed files that cannot be chips (errors) and the entries not used (warnings)."""

    refs: list[ChipRef] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    unused: list[Problem] = field(default_factory=list)


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
            shared.raw_root,
        )
        for name, conf in shared.sources.items()
    ]


def by_source(problems: list[Problem], sources: list[SourceInput]) -> dict[str | None, list[Problem]]:
    """Problems grouped by the source whose label or image folder holds their file (None: no source's), each once."""
    folders = sorted(
        ((folder, s.name) for s in sources for folder in (s.labels, s.images) if folder is not None),
        key=lambda item: len(item[0].parts),
        reverse=True,
    )
    grouped: dict[str | None, list[Problem]] = {}
    seen: set[tuple[str, str]] = set()
    for problem in problems:
        if (problem.file, problem.rule) in seen:
            continue
        seen.add((problem.file, problem.rule))
        path = Path(problem.file)
        owner = next((name for folder, name in folders if path == folder or folder in path.parents), None)
        grouped.setdefault(owner, []).append(problem)
    return grouped


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
    """Every image chip of a source, sorted by id; raises the first problem when a listed file cannot be a chip.

    The stages call `scan_chips`, which reports every such file and every unused entry instead.
    """
    listing = scan_chips(source)
    if listing.errors:
        first = listing.errors[0]
        more = f" (+{len(listing.errors) - 1} more)" if len(listing.errors) > 1 else ""
        raise SourceError(first.file, first.rule, first.detail + more, first.fix)
    return listing.refs


def scan_chips(source: SourceInput) -> ChipListing:
    """A source's chips sorted by id, with a problem per bad file name and a warning per unused entry.

    Raises (with the fix) when the source has no imagery, its folder is missing or holds no chip, or the folder
    holds one file per band instead of one file per chip.
    """
    if source.images is None:
        return _product_chips(source)
    _refuse_month(source)
    require_folder(
        source.images,
        "image folder exists",
        f"no such folder for source '{source.name}'",
        f"run the demo stage or set shared.sources.{source.name}.images to the chip folder",
    )
    listing = ChipListing()
    files: list[Path] = []
    for entry in sorted(source.images.iterdir()):
        reason = _unused_reason(entry)
        if reason is None:
            files.append(entry)
        else:
            listing.unused.append(
                Problem(str(entry), "unused file", reason, "move it out of the image folder, or make it a chip")
            )
    if not files:
        others = f" (it holds {shorten([p.name for p in sorted(source.images.iterdir())])})" if listing.unused else ""
        raise SourceError(
            source.images,
            "image chips present",
            f"no *.tif (or *.tiff) chip in the folder of source '{source.name}'{others}",
            "put the 13-band chips ({year}_{col}_{row}.tif) there",
        )
    _refuse_band_files(source.images, files)
    seen: dict[str, Path] = {}
    for path in files:
        problem = _name_problem(path, source, seen)
        if problem is not None:
            listing.errors.append(problem)
            continue
        seen[path.stem] = path
        listing.refs.append(ChipRef(source, path.stem, chip_year(path, source), path))
    listing.refs.sort(key=lambda ref: ref.chip_id)
    return listing


def _product_chips(source: SourceInput) -> ChipListing:
    product = reader(source, source.year)
    if not isinstance(product, ChipProductSource):
        raise SourceError(
            f"source '{source.name}'",
            "images",
            "the product has no imagery of its own",
            f"set shared.sources.{source.name}.images to its folder of image chips",
        )
    year = product.year if product.year is not None else 0
    listing = ChipListing()
    for chip_id in product.chip_ids():
        if CHIP_ID.match(chip_id):
            listing.refs.append(ChipRef(source, chip_id, year, None))
        else:
            listing.errors.append(_bad_id(product.label_path(chip_id), chip_id))
    return listing


def _refuse_month(source: SourceInput) -> None:
    """A chip product read from an image folder has one image per chip: a month to choose would be ignored."""
    if source.month is None or source_info(source.name).kind != "chips":
        return
    raise SourceError(
        f"shared.sources.{source.name}.month",
        "month",
        f"is {source.month}, but the chips of source '{source.name}' come from the image folder {source.images}, "
        "one image per chip, so no month is chosen",
        f"set shared.sources.{source.name}.month to null, or images to null to read the product's own imagery of "
        "that month",
    )


def _unused_reason(entry: Path) -> str | None:
    """Why an entry of an image folder is not read as a chip (None: it is a chip file)."""
    if entry.name.startswith("."):
        return "a hidden file (macOS metadata, an editor's or a copy's temporary file): not read"
    if entry.is_dir():
        count = sum(1 for p in entry.rglob("*") if p.is_file())
        return f"a subfolder ({count} file(s)): chips are read from the image folder itself, not from below it"
    if entry.suffix.lower() not in CHIP_SUFFIXES:
        return f"not a GeoTIFF chip (*.tif or *.tiff): '{entry.suffix or 'no extension'}' files are not read"
    return None


def _name_problem(path: Path, source: SourceInput, seen: dict[str, Path]) -> Problem | None:
    """The problem with a chip file's name (id, uniqueness, year), or None."""
    if not CHIP_ID.match(path.stem):
        return _bad_id(path, path.stem)
    if path.stem in seen:
        return Problem(
            str(path),
            "unique chip id",
            f"chip id {path.stem} is also the id of {seen[path.stem].name}",
            "rename or remove one of the two files",
        )
    try:
        chip_year(path, source)
    except SourceError as exc:
        return exc.problem
    return None


def _bad_id(path: Path, chip_id: str) -> Problem:
    return Problem(
        str(path),
        "chip id",
        f"chip id {chip_id!r} has characters outside letters, digits, '_', '.', '-' (or starts with '.' or '-'); "
        "later stages write chip ids into comma-separated, line-based lists",
        "rename the file",
    )


def _refuse_band_files(folder: Path, files: list[Path]) -> None:
    """One error for a folder of one file per band (BigEarthNet-like) instead of dozens of per-file ones."""
    bands: dict[str, set[str]] = defaultdict(set)
    for path in files:
        match = BAND_FILE.match(path.stem)
        if match:
            bands[match.group("chip")].add(match.group("band").upper())
    split = sorted(chip for chip, found in bands.items() if len(found) > 1)
    if not split:
        return
    example = split[0]
    raise SourceError(
        folder,
        "one file per chip",
        f"the folder holds one file per band ({len(split)} chip(s) split over band files, e.g. {example}_"
        f"{'/'.join(sorted(bands[example]))}); a chip is one 13-band GeoTIFF",
        "stack each chip's band files into one GeoTIFF in shared.bands order (e.g. gdal_merge.py -separate "
        f"-o {example}.tif {example}_B01.tif ... {example}_B8A.tif, or rasterio) and keep only the stacks here",
    )


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


@dataclass(frozen=True)
class ProductBands:
    """A chip product's chip before its pixels are read: its label raster, native band files and grid."""

    label: Path
    files: dict[str, Path]  # band name -> file, in S2_FILE_ORDER
    grid: ChipGrid
    zero_filled: tuple[str, ...]  # bands the product lacks (carried as zeros)


def product_bands(ref: ChipRef) -> ProductBands:
    """The files a chip product assembles the chip's image from (month from params); raises on missing bands."""
    assert ref.image is None
    product = reader(ref.source, ref.year)
    assert isinstance(product, ChipProductSource)
    date = product.image_date(ref.chip_id, ref.source.month)
    files, grid = product.band_paths(ref.chip_id, date)
    return ProductBands(product.label_path(ref.chip_id), files, grid, product.ZERO_FILLED)


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
    """Native label codes of the chip on `grid` (the image's own grid), read once for validate and chips."""
    return label_cut(ref, grid).codes


def label_cut(ref: ChipRef, grid: ChipGrid) -> LabelCut:
    """`read_labels` with the count of pixels no label raster covers (chip products read from an image folder).

    Other sources fill such pixels with their edge code and count nothing: a chip outside their product is refused.
    """
    product = reader(ref.source, ref.year)
    if ref.image is not None and isinstance(product, ChipProductSource):
        return product.cut_labels(grid)
    return LabelCut(read_window(product, grid))
