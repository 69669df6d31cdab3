"""Params of the `subsets` stage."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from curation.core.params import Section, increasing_sizes, register


@register
class SubsetsParams(Section):
    """The `subsets` stage: size-normalized, stratified, spatially blocked train and test sets per source.

    And optionally a random, unblocked test set beside them, to measure the bias a random split hides.
    """

    section: ClassVar[str] = "subsets"
    seed: int
    train_sizes: tuple[int, ...]  # training sets, nested when selected (the study: 10, 100, 900)
    test_size: int = Field(ge=1)  # the study: 100
    # chips per source of a random test set drawn without blocks or buffer from the chips in no other set, to
    # measure the optimistic bias a random split hides (0: none; the study had none)
    random_test_size: int = Field(ge=0)
    block_m: float = Field(gt=0)  # side of the square spatial blocks, in metres
    buffer_m: float = Field(ge=0)  # minimum distance between any training and any test chip, in metres
    min_class_share: float = Field(gt=0.0, le=1.0)  # a chip contains a class when it covers this share of its pixels
    allow_smaller: bool  # true: a pool too small for a size gives a smaller set (reported) instead of failing
    published: Path | None  # folder of the study's lists (sentinel2_<dataset>_subsampled_*.csv) to use instead
    # final: the 10-chip lists the study finally used (<published>/final-10/, commit eaff5bf; AgriFieldNet's was
    # never replaced); first: every list as first published (commit 4317e20). Only read when `published` is set.
    published_revision: Literal["final", "first"] = "final"
    out: Path  # data/subsets
    report: Path  # reports/subsets.json

    @field_validator("train_sizes")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return increasing_sizes(value, "(e.g. [10, 100, 900])")
