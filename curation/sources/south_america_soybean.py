"""South America Soybean maps: yearly uint8 rasters in EPSG:4326, 1 soybean, 0 other, the rest no data."""

from __future__ import annotations

from typing import ClassVar

from curation.sources.base import SourceInfo
from curation.sources.raster import RasterLabelSource


class SouthAmericaSoybean(RasterLabelSource):
    """torchgeo layout: `<root>/SouthAmerica_Soybean_<year>.tif`."""

    info: ClassVar[SourceInfo] = SourceInfo(
        name="south_america_soybean",
        title="South America Soybean",
        region="South America",
        continent="South America",
        years=tuple(range(2001, 2022)),
        licence="CC BY 4.0",
        citation="Song, X.-P. et al. Massive soybean expansion in South America since 2000 and implications for "
        "conservation. Nature Sustainability 4, 784-792 (2021).",
        doi="10.1038/s41893-021-00729-z",
        kind="raster",
        layout="<root>/SouthAmerica_Soybean_<year>.tif",
        study_name="sas_2021",
    )
    patterns = ("SouthAmerica_Soybean_{year}.tif",)
    year_regex = r"^SouthAmerica_Soybean_(\d{4})"
    fill_code = 255  # no data
