"""Params of the `publish` stage."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from curation.core.params import Section, register

SEMVER = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"


@register
class PublishParams(Section):
    """The `publish` stage: a versioned, citable release of the harmonized dataset under `out/<version>/`."""

    section: ClassVar[str] = "publish"
    version: str = Field(pattern=SEMVER)  # major: changed crosswalk or re-split; minor: added chips; patch: metadata
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    date: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")  # release date, fixed so outputs are byte-identical
    licence: str = Field(min_length=1)  # of the harmonized labels and metadata (each source keeps its own licence)
    url: str | None  # where the release lives (a git repository); null: not public yet
    train_sizes: tuple[int, ...]  # training sets to include (from subsets.train_sizes); test sets always
    files: Literal["auto", "reflink", "hardlink", "copy"]  # how chips are placed in the release, as chips.link
    tag_prefix: str = Field(min_length=1)  # git tag of a published version: <tag_prefix><version>
    changelog: dict[str, str]  # version -> what changed; must have an entry for `version`
    out: Path  # releases

    @model_validator(mode="after")
    def _changelog_has_version(self) -> PublishParams:
        if self.version not in self.changelog:
            raise ValueError(f"add a changelog entry for version {self.version}")
        return self
