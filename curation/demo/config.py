"""Params of the `demo` stage."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from curation.core.params import Section, register

CHIP_PRODUCTS = ("south_africa_crop_type", "agrifieldnet")


@register
class DemoParams(Section):
    """The `demo` stage: the synthetic world written in every source's native layout."""

    section: ClassVar[str] = "demo"
    seed: int
    out: Path
    chip_px: int = Field(ge=16, le=1024)
    chips_per_source: int = Field(ge=1, le=100_000)
    cloud_probability: float = Field(ge=0.0, le=1.0)
    # Parcels in the EuroCrops layer: null keeps the fields that cover the chips; a count adds cheap square parcels
    # beyond the chips' extent up to that total, so the layer has a national size (profiles/scale.yaml: 1,000,000).
    # The default lets Python callers that predate the key (tests, benchmarks) build DemoParams without it.
    parcels: int | None = Field(default=None, ge=1, le=100_000_000)
    # Chip products whose 13-band chips the demo also writes as a folder, `sentinel2/<source>/<year>_<field>.tif` in
    # EPSG:3857 over each field (the study's `sentinel2_sact_2017_subsampled` layout, with a real B10), for
    # `shared.sources.<source>.images: sentinel2/<source>`. The product's own files are the same either way, and the
    # default (none) keeps the default world's bytes.
    chip_folders: tuple[str, ...] = ()

    @field_validator("chip_folders")
    @classmethod
    def _chip_products(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name not in CHIP_PRODUCTS]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a chip product; name some of {', '.join(CHIP_PRODUCTS)}")
        return tuple(name for name in CHIP_PRODUCTS if name in value)  # one order, each once
