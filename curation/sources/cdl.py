"""USDA NASS Cropland Data Layer (USA): one uint8 GeoTIFF per year in EPSG:5070 at 30 m."""

from __future__ import annotations

from curation.sources.raster import RasterLabelSource


class CDL(RasterLabelSource):
    """torchgeo layout: `<root>/<year>_30m_cdls/<year>_30m_cdls.tif`, or the flat `<root>/<year>_30m_cdls.tif`."""

    name = "cdl"
    patterns = ("{year}_30m_cdls.tif",)
    year_regex = r"^(\d{4})_30m_cdls"
    fill_code = 0  # Background
