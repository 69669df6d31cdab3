"""USDA NASS Cropland Data Layer (USA): one uint8 GeoTIFF per year in EPSG:5070 at 30 m."""

from __future__ import annotations

from typing import ClassVar

from curation.sources.base import SourceInfo
from curation.sources.raster import RasterLabelSource


class CDL(RasterLabelSource):
    """torchgeo layout: `<root>/<year>_30m_cdls/<year>_30m_cdls.tif`, or the flat `<root>/<year>_30m_cdls.tif`."""

    info: ClassVar[SourceInfo] = SourceInfo(
        name="cdl",
        title="USDA NASS Cropland Data Layer",
        region="Contiguous United States",
        continent="North America",
        years=(2017, 2018, 2019, 2020, 2021, 2022, 2023),
        licence="U.S. public domain",
        citation="USDA National Agricultural Statistics Service Cropland Data Layer. Published crop-specific data "
        "layer. USDA-NASS, Washington, DC.",
        doi="",
        kind="raster",
        layout="<root>/<year>_30m_cdls/<year>_30m_cdls.tif or <root>/<year>_30m_cdls.tif",
        study_name="cdl_2023",
    )
    patterns = ("{year}_30m_cdls.tif",)
    year_regex = r"^(\d{4})_30m_cdls"
    fill_code = 0  # Background
