"""Northeast China Crop Map (NCCM): yearly uint8 rasters in EPSG:4326, 15 = nodata."""

from __future__ import annotations

from typing import ClassVar

from curation.sources.base import SourceInfo
from curation.sources.raster import RasterLabelSource


class NCCM(RasterLabelSource):
    """torchgeo layout: `<root>/CDL<year>_clip*.tif`."""

    info: ClassVar[SourceInfo] = SourceInfo(
        name="nccm",
        title="Northeast China Crop Map",
        region="Northeast China",
        continent="Asia",
        years=(2017, 2018, 2019),
        licence="CC BY 4.0",
        citation="You, N., Dong, J., Huang, J. et al. The 10-m crop type maps in Northeast China during 2017-2019. "
        "Scientific Data 8, 41 (2021).",
        doi="10.1038/s41597-021-00827-9",
        kind="raster",
        layout="<root>/CDL<year>_clip*.tif",
        study_name="nccm_2019",
    )
    patterns = ("CDL{year}_clip*.tif",)
    year_regex = r"^CDL(\d{4})_clip"
    fill_code = 15  # nodata
