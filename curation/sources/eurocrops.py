"""EuroCrops (Europe): parcel shapefiles per country and year with HCAT codes, in national CRSs.

A layer's year is in its name (`SI_2021_EC21.shp`, `DE_LS_2021_EC21.shp`). Romania ships as `RO_ny` ("no year":
torchgeo leaves its zip out for that reason): a layer without a year is read only when no year is set, and a read
of one year reports it as an unused file rather than leaving it out silently.
"""

from __future__ import annotations

import re
from pathlib import Path

from curation.sources.files import find
from curation.sources.vector import NO_CODE, Layer, VectorLabelSource

__all__ = ["NO_CODE", "EuroCrops", "Layer"]

YEAR_IN_NAME = re.compile(r"_((?:19|20)\d{2})(?=_|\.|$)")  # `_2021_` of SI_2021_EC21.shp (not the `_EC21`)


def layer_year(name: str) -> int | None:
    """The year a layer's file name carries, None when it has none (`RO_ny_EC21.shp`)."""
    match = YEAR_IN_NAME.search(name)
    return int(match.group(1)) if match else None


class EuroCrops(VectorLabelSource):
    """torchgeo layout: `*_EC*.shp` anywhere under the root (release zips are read in place) plus `HCAT*.csv`."""

    name = "eurocrops"
    patterns = ("*_EC*.shp",)
    code_column = "EC_hcat_c"
    code_name = "HCAT code"
    a_code = "an HCAT code"
    layer_hint = "the country's shapefile"

    def wanted(self, name: str) -> bool:
        """A layer file's name carries its year (`<CC>_<year>_EC*.shp`); one without is read when no year is set."""
        return self.year is None or layer_year(name) == self.year

    def skip_reason(self, name: str) -> tuple[str, str]:
        """Why a layer is left out of a read of one year: no year in its name, or another year."""
        year = layer_year(name)
        if year is None:
            country = name.split("_EC")[0]
            return (
                f"no year in the name ({country}): read only when no year is set",
                "rename it <CC>_<year>_EC*.shp with the year of its parcels, or label its chips with no year "
                "(no <year>_ prefix, shared.sources.eurocrops.year null)",
            )
        return (f"a layer of {year}: read only for chips of {year}", "keep it for chips of that year, or remove it")

    def hcat_table(self) -> Path | None:
        """The HCAT csv torchgeo keeps beside the shapefiles, when present."""
        tables = sorted(p for p in find(self.root, "HCAT*.csv") if p.is_file())
        return tables[0] if tables else None

    def used_paths(self) -> set[Path]:
        """The layers and the HCAT table (its codes' names)."""
        table = self.hcat_table()
        return super().used_paths() | ({table} if table is not None else set())
