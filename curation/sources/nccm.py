"""Northeast China Crop Map (NCCM): yearly uint8 rasters in EPSG:4326, 15 = nodata."""

from __future__ import annotations

from curation.sources.raster import RasterLabelSource


class NCCM(RasterLabelSource):
    """torchgeo layout: `<root>/CDL<year>_clip*.tif`."""

    name = "nccm"
    patterns = ("CDL{year}_clip*.tif",)
    year_regex = r"^CDL(\d{4})_clip"
    fill_code = 15  # nodata
