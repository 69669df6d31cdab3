"""The six label sources, one module each, and the registry that names them with their provenance."""

from __future__ import annotations

import difflib

from curation.sources.agrifieldnet import AgriFieldNet
from curation.sources.base import ChipGrid, LabelSource, SourceError, SourceInfo
from curation.sources.cdl import CDL
from curation.sources.eurocrops import EuroCrops
from curation.sources.nccm import NCCM
from curation.sources.south_africa_crop_type import SouthAfricaCropType
from curation.sources.south_america_soybean import SouthAmericaSoybean

SOURCES: dict[str, type[LabelSource]] = {
    cls.info.name: cls for cls in (CDL, EuroCrops, NCCM, SouthAfricaCropType, AgriFieldNet, SouthAmericaSoybean)
}

__all__ = ["SOURCES", "ChipGrid", "LabelSource", "SourceError", "SourceInfo", "get_source", "registry_rows"]


def get_source(name: str) -> type[LabelSource]:
    """The reader class of a source name, with the closest name suggested on a typo."""
    if name not in SOURCES:
        close = difflib.get_close_matches(name, list(SOURCES), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(SOURCES)}"
        raise SourceError(f"source '{name}': known source: not in the registry. Fix: {hint}")
    return SOURCES[name]


def registry_rows() -> list[dict[str, str]]:
    """The registry as rows (for the CLI, the data card and the app)."""
    return [
        {
            "source": info.name,
            "title": info.title,
            "region": info.region,
            "continent": info.continent,
            "years": ", ".join(map(str, info.years)),
            "licence": info.licence,
            "doi": info.doi,
            "crosswalk": info.crosswalk,
            "layout": info.layout,
            "kind": info.kind,
        }
        for info in (cls.info for cls in SOURCES.values())
    ]
