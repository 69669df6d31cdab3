"""Params of the `validate` stage."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from curation.core.params import Section, register


@register
class ValidateParams(Section):
    """The `validate` stage: what every source's products and chips must satisfy."""

    section: ClassVar[str] = "validate"
    max_ignore_share: float = Field(ge=0.0, le=1.0)  # warn (not fail) when a chip's labels are more ignore than this
    max_nodata_share: float = Field(ge=0.0, le=1.0)  # warn above this share of no-data pixels (all: an error)
    out: Path  # reports/validation
