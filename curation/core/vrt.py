"""A band stack as a GDAL VRT over single-band files: a multi-band image that stores no pixel of its own.

The chip products ship one GeoTIFF per band. Stacking them into a 13-band GeoTIFF per chip stores the imagery a
second time (0.29x of a study-size world's imagery, measured in benchmarks/bench_scale.py); a VRT beside hard links
of the band files reads as the same 13-band uint16 image in rasterio, GDAL, QGIS and torchgeo for a few kilobytes.

The XML is written here, not by `gdalbuildvrt`, so that it is byte-identical for equal inputs (no absolute paths, no
statistics, no GDAL-version-dependent attributes). Band files are referenced relative to the VRT, so the folder
holding both can be moved, `dvc pull`ed or copied whole. A band without a file (B10 in the products) is a band with
no source, which GDAL reads as zeros: the same values the stack held.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import rasterio
from affine import Affine
from rasterio.crs import CRS

from curation.core.geotiff import CHIP_OPTIONS, write_geotiff
from curation.core.io import default_mode

VRT_SUFFIX = ".vrt"
AREA_OR_POINT = "AREA_OR_POINT"  # GDAL's pixel-is-area flag, which every GeoTIFF it writes carries (Area)


def stack_vrt(
    crs: CRS,
    transform: Affine,
    shape: tuple[int, int],
    bands: Sequence[str],
    files: Mapping[str, str],
    dtype: str = "UInt16",
    tags: Mapping[str, str] | None = None,
) -> str:
    """The VRT text of a `len(bands)`-band image of `shape` (rows, columns): band i reads `files[bands[i]]`.

    `files` maps a band name to its file's path relative to the VRT (posix); bands missing from it read as zeros.
    Every file must hold the band as its band 1 on exactly this grid (the caller checks it: a VRT does not).
    """
    t = transform
    height, width = shape
    geo = ", ".join(repr(float(v)) for v in (t.c, t.a, t.b, t.f, t.d, t.e))
    size = f'xOff="0" yOff="0" xSize="{width}" ySize="{height}"'
    lines = [
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
        f'  <SRS dataAxisToSRSAxisMapping="1,2">{escape(crs.to_wkt())}</SRS>',
        f"  <GeoTransform>{geo}</GeoTransform>",
    ]
    metadata = {AREA_OR_POINT: "Area"} | dict(tags or {})
    if metadata:
        lines.append("  <Metadata>")
        lines += [f"    <MDI key={quoteattr(k)}>{escape(v)}</MDI>" for k, v in sorted(metadata.items())]
        lines.append("  </Metadata>")
    for number, band in enumerate(bands, start=1):
        lines += [
            f'  <VRTRasterBand dataType="{dtype}" band="{number}">',
            f"    <Description>{escape(band)}</Description>",
        ]
        if band in files:
            lines += [
                "    <SimpleSource>",
                f'      <SourceFilename relativeToVRT="1">{escape(files[band])}</SourceFilename>',
                "      <SourceBand>1</SourceBand>",
                f"      <SrcRect {size}/>",
                f"      <DstRect {size}/>",
                "    </SimpleSource>",
            ]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"


def write_stack_vrt(
    path: Path,
    crs: CRS,
    transform: Affine,
    shape: tuple[int, int],
    bands: Sequence[str],
    files: Mapping[str, Path],
    tags: Mapping[str, str] | None = None,
) -> None:
    """Write `stack_vrt` at `path`, band files given as paths and stored relative to `path`.

    Atomic as `write_geotiff` is (a temporary file renamed over `path`, no fsync): thousands of chips are written
    into a stage's temporary folder, which is what gets renamed into place.
    """
    relative = {band: _relative(file, path.parent) for band, file in files.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(stack_vrt(crs, transform, shape, bands, relative, tags=tags))
        tmp.chmod(default_mode())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _relative(file: Path, folder: Path) -> str:
    """`file` relative to `folder`, both under one root (the chips output): `../bands/<chip>/B01.tif`."""
    file_parts, folder_parts = file.absolute().parts, folder.absolute().parts
    common = 0
    while common < min(len(file_parts), len(folder_parts)) and file_parts[common] == folder_parts[common]:
        common += 1
    return "/".join([".."] * (len(folder_parts) - common) + list(file_parts[common:]))


def write_stack_of(vrt: Path, path: Path) -> None:
    """The image a VRT reads as, written as a GeoTIFF stack (CHIP_OPTIONS, same band names and tags).

    Bytes equal those of the chips stage's own stack of the chip (`chips.product_images: stack`): a release's
    images are GeoTIFFs whichever way the chips were stored.
    """
    with rasterio.open(vrt) as src:
        data = src.read()
        tags = {k: v for k, v in src.tags().items() if k != AREA_OR_POINT}  # GeoTIFF sets it itself
        names = tuple(d or "" for d in src.descriptions)
        crs, transform = src.crs, src.transform
    write_geotiff(path, data, crs, transform, names, tags, CHIP_OPTIONS)
