"""Params of the `chips` stage."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from curation.core.params import Section, register


@register
class ChipsParams(Section):
    """The `chips` stage: label chips cut on every image chip's grid, and the manifest."""

    section: ClassVar[str] = "chips"
    out: Path  # data/chips
    report: Path  # reports/chips.json
    # How image chips are placed beside their labels (`curation.core.io.place_file`): auto (a reflink, else a hard
    # link, else a copy, which warns), reflink (else a copy), hardlink (else a copy) or copy.
    link: Literal["auto", "reflink", "hardlink", "copy"]
    # Chip products read from their per-band files (`images: null`): vrt (a VRT over hard links of the band files,
    # `<source>/images/<chip_id>.vrt` and `<source>/bands/<chip_id>/`: no pixel stored twice) or stack (a 13-band
    # GeoTIFF per chip, as before: 0.29x more disk at study scale). publish writes GeoTIFF stacks either way.
    product_images: Literal["vrt", "stack"]
    skip_failed: bool  # true: chips that break a rule are left out and listed in the report; false: the stage fails
