"""Params of the `demo` stage."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from curation.core.params import Section, register


@register
class DemoParams(Section):
    """The `demo` stage: the synthetic world written in every source's native layout."""

    section: ClassVar[str] = "demo"
    seed: int
    out: Path
    chip_px: int = Field(ge=16, le=1024)
    chips_per_source: int = Field(ge=1, le=100_000)
    cloud_probability: float = Field(ge=0.0, le=1.0)
