"""Writers of the chip products in their native layouts (the demo world and the tests' fixtures use them).

The layouts are the readers' (`label_path`, `band_path` ... in each reader module), so what is written here is
exactly what the readers find. `write_chip_folder` writes a product's 13-band chips as a folder of their own, as the
study's `sentinel2_sact_2017_subsampled` (read with `shared.sources.<name>.images`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_points

from curation.core.bands import S2_FILE_ORDER
from curation.core.errors import SourceError
from curation.core.geotiff import write_geotiff
from curation.sources.agrifieldnet import FIELD_IDS_SUFFIX, ID_RE, AgriFieldNet, band_path, label_path
from curation.sources.base import ChipGrid
from curation.sources.chip_product import ChipProductSource
from curation.sources.south_africa_crop_type import FIELD_RE, SouthAfricaCropType, labels_dir, normalize_date
from curation.sources.south_africa_crop_type import band_path as sact_band_path

Labels: TypeAlias = npt.NDArray[np.uint8]  # (H, W) class codes
Stack: TypeAlias = npt.NDArray[np.uint16]  # (13, H, W) in S2_FILE_ORDER
Crs: TypeAlias = CRS | str | int
WEB_MERCATOR = CRS.from_epsg(3857)
S2_RES = 10.0


def check_field_arrays(labels: npt.NDArray[np.generic], image: npt.NDArray[np.generic], field_id: str) -> None:
    """Refuse a field's arrays unless labels are (H, W) and the image (13, H, W)."""
    if labels.ndim != 2 or image.shape != (len(S2_FILE_ORDER), *labels.shape):
        raise SourceError(
            f"field {field_id}",
            "array shapes",
            f"labels {labels.shape} and image {image.shape} must be (H, W) and ({len(S2_FILE_ORDER)}, H, W)",
            "pass the 13-band stack in S2_FILE_ORDER",
        )


def _write_bands(
    image: npt.NDArray[np.uint16], bands: tuple[str, ...], path_of: Callable[[str], Path], crs: CRS | str | int,
    transform: Affine,
) -> None:  # fmt: skip
    for band in bands:
        write_geotiff(path_of(band), image[S2_FILE_ORDER.index(band)].astype(np.uint16), crs, transform)


def write_sact_field(
    root: Path, field_id: str, date: str, labels: Labels, image: Stack, crs: Crs, transform: Affine
) -> None:
    """One South Africa field: its label raster (codes 0..9) and 12 band files of `date` (YYYY_MM_DD; no B10).

    `field_id` is digits as in the product ("2199"); `image` is (13, H, W) uint16 in S2_FILE_ORDER on the
    labels' (H, W) grid, in the field's UTM CRS at 10 m.
    """
    if not FIELD_RE.match(field_id):
        raise SourceError(f"field {field_id!r}", "field id", "the product's field ids are digits", "use e.g. '2199'")
    day = normalize_date(date)
    check_field_arrays(labels, image, field_id)
    write_geotiff(labels_dir(root) / f"{field_id}.tif", labels.astype(np.uint8), crs, transform)
    bands = SouthAfricaCropType.native_bands()
    _write_bands(image, bands, lambda band: sact_band_path(root, field_id, day, band), crs, transform)


def write_agrifieldnet_field(
    root: Path, field_id: str, labels: Labels, image: Stack, crs: Crs, transform: Affine
) -> None:
    """One AgriFieldNet chip: label raster (0 no data, 1..36), the field-id raster beside it, 12 band files (no B10).

    `field_id` is the product's 5-character id ("f2eb7"); `image` is (13, H, W) uint16 in S2_FILE_ORDER.
    """
    if not ID_RE.match(field_id):
        raise SourceError(
            f"field {field_id!r}", "chip id", "the product's ids are 5 lower-case letters or digits", "use e.g. 'f2eb7'"
        )
    check_field_arrays(labels, image, field_id)
    labels_file = label_path(root, field_id)
    write_geotiff(labels_file, labels.astype(np.uint8), crs, transform)
    field_ids = labels_file.with_name(f"{labels_file.stem}{FIELD_IDS_SUFFIX}.tif")
    write_geotiff(field_ids, _field_numbers(labels), crs, transform)
    _write_bands(image, AgriFieldNet.native_bands(), lambda band: band_path(root, field_id, band), crs, transform)


def _field_numbers(labels: npt.NDArray[np.generic]) -> npt.NDArray[np.uint16]:
    """A field number per labelled pixel (1 + rank of its class among the chip's classes), 0 where unlabelled."""
    codes = np.unique(labels[labels != 0])
    ranks = np.searchsorted(codes, labels) + 1
    return np.where(labels != 0, ranks, 0).astype(np.uint16)


def write_chip_folder(
    folder: Path,
    product: ChipProductSource,
    fields: Sequence[str],
    chip_px: int,
    image_of: Callable[[npt.NDArray[np.integer], str], Stack],
    tags: Mapping[str, str],
) -> list[str]:
    """A chip product's 13-band chips as a folder, as the study's own: `<folder>/<year>_<field>.tif` per field.

    Each chip is `chip_px` square at 10 m in EPSG:3857, centred on its field; `image_of(codes, chip_id)` turns the
    native codes cut from `product` on the chip's grid (`cut_labels`, across the CRS) into its 13-band stack in
    S2_FILE_ORDER, so the imagery follows the labels the pipeline will cut. Returns the chip ids written.
    """
    half = chip_px * S2_RES / 2
    written = []
    for field in fields:
        key = product.resolve(field)
        own = product.grid_of(key)
        minx, miny, maxx, maxy = own.bounds
        cx, cy = warp_points(own.crs, WEB_MERCATOR, [(minx + maxx) / 2], [(miny + maxy) / 2])
        left = round((cx[0] - half) / S2_RES) * S2_RES
        top = round((cy[0] + half) / S2_RES) * S2_RES
        chip_id = product.chip_id(key)
        grid = ChipGrid(WEB_MERCATOR, Affine(S2_RES, 0, left, 0, -S2_RES, top), chip_px, chip_px, chip_id)
        image = image_of(product.cut_labels(grid).codes, chip_id)
        write_geotiff(folder / f"{chip_id}.tif", image, WEB_MERCATOR, grid.transform, S2_FILE_ORDER, tags)
        written.append(chip_id)
    return written
