"""South America Soybean maps: yearly uint8 rasters in EPSG:4326, 1 soybean, 0 other, the rest no data."""

from __future__ import annotations

from curation.sources.raster import RasterLabelSource


class SouthAmericaSoybean(RasterLabelSource):
    """torchgeo layout: `<root>/SouthAmerica_Soybean_<year>.tif`."""

    name = "south_america_soybean"
    patterns = ("SouthAmerica_Soybean_{year}.tif",)
    year_regex = r"^SouthAmerica_Soybean_(\d{4})"
    fill_code = 255  # no data
