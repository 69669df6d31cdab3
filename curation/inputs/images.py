"""An image chip's header first, then its pixels in bounded strips: what validate and chips check of every image.

A chip whose header already breaks a rule (band count, dtype, size) is not read at all: a 6000 x 6000 x 13 file
compresses to a megabyte and would take gigabytes in memory. Pixels of a chip that passes are read a strip of rows
at a time for the per-band maxima and the no-data mask, so memory stays bounded by `STRIP_VALUES` plus the mask.

A chip product's chip (no file of its own) has the same pixel facts cached, keyed by its label raster and every
band file, so that chips, which links the band files under a VRT instead of stacking them, need not assemble it
again (`inspect_image(..., assemble=False)`).

Header and pixels come from one open of the file. The pixel facts of a chip file are cached (`pixel_facts` kind of
`curation.core.cache`), keyed by the file's real path, size, mtime, inode and device, as DVC's state and the cache's
file digests are: validate reads every chip's pixels once and chips, which needs the same facts (the no-data mask
and the maxima the image schema checks), finds them there instead of decompressing the chip a second time. A
rewrite or a replacement changes the key. Not the ctime: a hard link to the file (chips' `link: auto`, DVC's
hardlink cache) changes it and not the bytes, and keyed by it every run would read every chip again.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from curation.core.bands import S2_FILE_ORDER
from curation.core.cache import cache_dir, key_of, write_atomic
from curation.core.errors import SourceError
from curation.inputs.chip_refs import ChipImage, ChipRef, ProductBands, product_bands, read_image
from curation.sources.base import ChipGrid
from curation.sources.chip_product import ZERO_FILLED_TAG

STRIP_VALUES = 1 << 22  # pixel values (all bands) read at once: 8 MiB of uint16
PIXELS_FORMAT = 1  # of the cached pixel facts; bump when ChipPixels or how they are computed changes
BAND_NAME = re.compile(r"^B0*(\d{1,2})(A?)$")


@dataclass(frozen=True)
class ChipHeader:
    """What the file's header says: grid, bands, dtype, resolution, band descriptions and no-data value."""

    grid: ChipGrid
    count: int
    dtype: str
    res: tuple[float, float]
    descriptions: tuple[str, ...]  # per band, as a Sentinel-2 band name where it is one ("" when unset)
    nodata: tuple[float | None, ...]  # per band
    zero_filled: tuple[str, ...]  # bands the file declares as zeros (absent from the product)


@dataclass(frozen=True)
class ChipPixels:
    """Per-band maxima and where every band holds its no-data value (None: the chip declares none)."""

    maxima: tuple[float, ...]
    nodata_mask: npt.NDArray[np.bool_] | None

    @property
    def nodata_share(self) -> float | None:
        """Share of the chip's pixels without data in any band."""
        return None if self.nodata_mask is None else float(self.nodata_mask.mean()) if self.nodata_mask.size else 0.0


@dataclass(frozen=True)
class Inspected:
    """An image chip examined: its header, pixel facts (None: the header fails) and a product's assembled image.

    `bands`: a chip product's label and band files (None for a chip file); `assembled` is None when the product's
    pixel facts came from the cache instead.
    """

    header: ChipHeader
    pixels: ChipPixels | None
    assembled: ChipImage | None
    bands: ProductBands | None = None


def band_name(text: str | None) -> str:
    """A band description as a Sentinel-2 band name (`B1`, `b01` -> `B01`; `B8a` -> `B8A`); other text kept."""
    value = (text or "").strip()
    match = BAND_NAME.match(value.upper())
    if not match:
        return value
    number, a = int(match.group(1)), match.group(2)
    return f"B{number}A" if a else f"B{number:02d}"


def read_header(ref: ChipRef) -> ChipHeader:
    """The header of a chip file, without reading a pixel."""
    assert ref.image is not None
    try:
        with rasterio.open(ref.image) as src:
            return _header(src, ref.chip_id)
    except RasterioIOError as exc:
        raise _unreadable(ref.image, exc) from exc


def _header(src: DatasetReader, chip_id: str) -> ChipHeader:
    zero_filled = tuple(b for b in src.tags().get(ZERO_FILLED_TAG, "").split(",") if b)
    return ChipHeader(
        ChipGrid(src.crs, src.transform, src.width, src.height, chip_id),
        src.count,
        src.dtypes[0],
        (abs(src.res[0]), abs(src.res[1])),
        tuple(band_name(d) for d in src.descriptions),
        tuple(src.nodatavals),
        zero_filled,
    )


def _unreadable(path: Path, exc: RasterioIOError) -> SourceError:
    return SourceError(
        path, "readable GeoTIFF", str(exc).rstrip("."), "re-download or regenerate the chip, or remove it"
    )


def header_fits(header: ChipHeader, bands: int, chip_px: int) -> bool:
    """Whether the header allows a pixel read: the band count, dtype and size the image schema asks for."""
    return header.count == bands and header.dtype == "uint16" and header.grid.height == header.grid.width == chip_px


def inspect_image(ref: ChipRef, bands: int, chip_px: int, assemble: bool = True) -> Inspected:
    """Header, then pixels in strips when the header fits (chip products: assembled in memory, so read whole).

    A chip file is opened once for both; its pixel facts come from the cache when an earlier read left them. A chip
    product's chip is assembled unless `assemble` is False and its pixel facts are cached.
    """
    if ref.image is None:
        return _inspect_product(ref, assemble)
    try:
        with rasterio.open(ref.image) as src:
            header = _header(src, ref.chip_id)
            if not header_fits(header, bands, chip_px):
                return Inspected(header, None, None)
            key = _pixels_key(ref.image)
            cached = _load_pixels(key, header)
            if cached is not None:
                return Inspected(header, cached, None)
            pixels = _strips(src, header)
    except RasterioIOError as exc:
        raise _unreadable(ref.image, exc) from exc
    if key is not None:
        _store_pixels(key, pixels)
    return Inspected(header, pixels, None)


def _inspect_product(ref: ChipRef, assemble: bool) -> Inspected:
    files = product_bands(ref)
    key = _product_key(files)
    grid = files.grid
    res = (abs(grid.transform.a), abs(grid.transform.e))
    count = len(S2_FILE_ORDER)
    header = ChipHeader(grid, count, "uint16", res, S2_FILE_ORDER, (None,) * count, files.zero_filled)
    if not assemble:
        cached = _load_pixels(key, header)
        if cached is not None:
            return Inspected(header, cached, None, files)
    image = read_image(ref)
    count = image.data.shape[0]
    names = S2_FILE_ORDER if count == len(S2_FILE_ORDER) else ("",) * count  # the products' assembly order
    header = ChipHeader(image.grid, count, image.dtype, image.res, names, (None,) * count, image.zero_filled)
    pixels = pixels_of(image.data, header.nodata)
    if key is not None:
        _store_pixels(key, pixels)
    return Inspected(header, pixels, image, files)


def read_pixels(ref: ChipRef, header: ChipHeader) -> ChipPixels:
    """Per-band maxima and the no-data mask, a strip of rows at a time."""
    assert ref.image is not None
    try:
        with rasterio.open(ref.image) as src:
            return _strips(src, header)
    except RasterioIOError as exc:
        raise _unreadable(ref.image, exc) from exc


def _strips(src: DatasetReader, header: ChipHeader) -> ChipPixels:
    grid = header.grid
    maxima = np.full(header.count, -np.inf)
    declared = any(v is not None for v in header.nodata)
    mask = np.zeros(grid.shape, dtype=bool) if declared else None
    block = max(src.block_shapes[0][0], 1) if src.block_shapes else 1
    rows = max(STRIP_VALUES // max(header.count * grid.width, 1), 1)
    rows = max(rows // block, 1) * block if rows >= block else rows
    for row in range(0, grid.height, rows):
        height = min(rows, grid.height - row)
        data = src.read(window=Window(0, row, grid.width, height))
        if data.size:
            maxima = np.maximum(maxima, data.reshape(header.count, -1).max(axis=1))
        if mask is not None:
            mask[row : row + height] = _nodata_mask(data, header.nodata)
    return ChipPixels(tuple(0.0 if math.isinf(v) else float(v) for v in maxima), mask)


def _pixels_key(path: Path) -> Path | None:
    """Where the pixel facts of a chip file are cached (None: the file cannot be stat'ed; the read reports it)."""
    stamp = _stamp(path)
    if stamp is None:
        return None
    key = key_of(PIXELS_FORMAT, *stamp)
    return cache_dir("pixels") / key[:2] / f"{key}.npz"


def _product_key(files: ProductBands) -> Path | None:
    """Where a chip product's chip's pixel facts are cached: keyed by its label raster and every band file."""
    stamps = [_stamp(path) for path in (files.label, *files.files.values())]
    if any(stamp is None for stamp in stamps):
        return None
    parts = [value for stamp in stamps if stamp is not None for value in stamp]
    key = key_of(PIXELS_FORMAT, "product", *files.files, *files.zero_filled, *parts)
    return cache_dir("pixels") / key[:2] / f"{key}.npz"


def _stamp(path: Path) -> tuple[str, int, int, int, int] | None:
    """A file's real path, size, mtime, inode and device (None: it cannot be stat'ed)."""
    try:
        real = path.resolve()
        st = real.stat()
    except OSError:
        return None
    return str(real), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def _store_pixels(path: Path, pixels: ChipPixels) -> None:
    handle = io.BytesIO()
    mask = pixels.nodata_mask
    parts: dict[str, npt.NDArray[np.generic]] = {"maxima": np.array(pixels.maxima, dtype=np.float64)}
    if mask is not None:
        parts |= {"mask": np.packbits(mask, axis=None), "shape": np.array(mask.shape, dtype=np.int64)}
    np.savez(handle, allow_pickle=False, **parts)
    write_atomic(path, handle.getvalue())


def _load_pixels(path: Path | None, header: ChipHeader) -> ChipPixels | None:
    """Cached pixel facts that fit the header, else None (none stored, a torn entry: read again)."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            maxima = stored["maxima"]
            mask = None
            if "mask" in stored:
                shape = tuple(int(v) for v in stored["shape"])
                count = shape[0] * shape[1] if len(shape) == 2 else -1
                mask = np.unpackbits(stored["mask"], count=count).astype(bool).reshape(shape)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    declared = any(v is not None for v in header.nodata)
    if len(maxima) != header.count or declared != (mask is not None):
        return None
    if mask is not None and mask.shape != header.grid.shape:
        return None
    return ChipPixels(tuple(float(v) for v in maxima), mask)


def pixels_of(data: npt.NDArray[np.generic], nodata: tuple[float | None, ...]) -> ChipPixels:
    """Per-band maxima and no-data mask of an image held in memory."""
    maxima = data.reshape(data.shape[0], -1).max(axis=1) if data.size else np.zeros(data.shape[0])
    declared = any(v is not None for v in nodata)
    return ChipPixels(tuple(float(v) for v in maxima), _nodata_mask(data, nodata) if declared else None)


def _nodata_mask(data: npt.NDArray[np.generic], nodata: tuple[float | None, ...]) -> npt.NDArray[np.bool_]:
    """Pixels where every band holds its no-data value (a band without one always holds data)."""
    mask = np.ones(data.shape[1:], dtype=bool)
    for band, value in zip(data, nodata, strict=True):
        if value is None:
            return np.zeros(data.shape[1:], dtype=bool)
        mask &= np.isnan(band) if math.isnan(value) else band == value
    return mask
