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
    link: Literal["copy", "hardlink"]  # how image chips are placed beside their labels
    skip_failed: bool  # true: chips that break a rule are left out and listed in the report; false: the stage fails
