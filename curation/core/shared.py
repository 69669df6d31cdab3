"""The `shared` params section: the keys every stage may read (inputs, chip geometry, band order, Dask)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator
from rasterio.crs import CRS
from rasterio.errors import CRSError

from curation.core.bands import S2_FILE_ORDER
from curation.core.params import Part, Section, register, suggest
from curation.core.registry import source_names

S2_BANDS = frozenset(S2_FILE_ORDER)


class SourceParams(Part):
    """Where one source's labels and imagery lie, and what the stages should expect of them."""

    labels: Path  # the product's root in torchgeo's layout, relative to shared.raw_root
    images: Path | None  # folder of 13-band chips `{year}_...tif` (relative); None: the product's own fields
    label_crs: str | None  # CRS the label product is declared in; None: any (national or UTM CRSs)
    year: int | None = Field(ge=1980, le=2100)  # label year of chips whose file name has no `<year>_` prefix
    month: int | None = Field(ge=1, le=12)  # chip products with time series: take the first complete date of it

    @field_validator("label_crs")
    @classmethod
    def _known_crs(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CRS.from_user_input(value)
            except CRSError as exc:
                raise ValueError(f"unknown CRS {value!r}: write it like EPSG:5070") from exc
        return value


class DaskParams(Part):
    """Where parallel stages run."""

    scheduler: str  # local (a LocalCluster here), synchronous (in-process, for debugging), or tcp://host:port
    workers: int = Field(ge=1, le=512)  # worker processes of the local cluster

    @field_validator("scheduler")
    @classmethod
    def _scheduler(cls, value: str) -> str:
        if value not in ("local", "synchronous") and "://" not in value:
            raise ValueError("use 'local', 'synchronous' or a scheduler address such as tcp://10.0.0.5:8786")
        return value


@register
class SharedParams(Section):
    """Keys every stage may read besides its own section."""

    section: ClassVar[str] = "shared"
    legends_dir: Path
    crosswalk_set: str
    raw_root: Path  # source paths are relative to it
    chip_px: int = Field(ge=16, le=4096)  # side of every image chip in pixels
    resolution_m: float = Field(gt=0)  # image pixel size in CRS units (metres)
    bands: tuple[str, ...]  # band order of the 13-band image chips
    dask: DaskParams
    sources: dict[str, SourceParams]

    @field_validator("crosswalk_set")
    @classmethod
    def _set_is_a_name(cls, value: str) -> str:
        if not value or "/" in value or value.startswith("."):
            raise ValueError("must be a set name such as 'toolkit' or 'paper', not a path")
        return value

    @field_validator("bands")
    @classmethod
    def _bands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [b for b in value if b not in S2_BANDS]
        if unknown or len(set(value)) != len(S2_BANDS) or len(value) != len(S2_BANDS):
            raise ValueError(f"list each of the 13 Sentinel-2 bands once (e.g. {', '.join(S2_FILE_ORDER)})")
        return value

    @field_validator("sources")
    @classmethod
    def _registered(cls, value: dict[str, SourceParams]) -> dict[str, SourceParams]:
        if not value:
            raise ValueError("list at least one source")
        for name in value:
            if name not in source_names():
                raise ValueError(f"unknown source '{name}': {suggest(name, list(source_names()))}")
        return value
