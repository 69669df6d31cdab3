"""Params of the `crosswalks` stage."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import field_validator

from curation.core.params import Section, register


@register
class CrosswalksParams(Section):
    """The `crosswalks` stage: which crosswalk sets to validate and compare."""

    section: ClassVar[str] = "crosswalks"
    sets: tuple[str, ...]
    out: Path  # the report: every set validated and compared with the active one

    @field_validator("sets")
    @classmethod
    def _at_least_one(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one crosswalk set")
        if len(set(value)) != len(value):
            raise ValueError("lists a set twice")
        return value
