"""EuroCrops (Europe): parcel shapefiles per country and year with HCAT codes, in national CRSs."""

from __future__ import annotations

from pathlib import Path

from curation.sources.vector import NO_CODE, Layer, VectorLabelSource

__all__ = ["NO_CODE", "EuroCrops", "Layer"]


class EuroCrops(VectorLabelSource):
    """torchgeo layout: `*_EC*.shp` anywhere under the root (release zips are read in place) plus `HCAT*.csv`."""

    name = "eurocrops"
    patterns = ("*_EC*.shp",)
    code_column = "EC_hcat_c"
    code_name = "HCAT code"
    a_code = "an HCAT code"
    layer_hint = "the country's shapefile"

    def wanted(self, name: str) -> bool:
        """A layer file's name carries its year (`<CC>_<year>_EC*.shp`)."""
        return self.year is None or f"_{self.year}" in name

    def hcat_table(self) -> Path | None:
        """The HCAT csv torchgeo keeps beside the shapefiles, when present."""
        tables = sorted(self.root.rglob("HCAT*.csv"))
        return tables[0] if tables else None
