"""Typed, frozen params: a stage asks for its section of params.yaml and gets a validated object.

Every key is required: params.yaml is the single source of truth, so nothing falls back to a silent default.
Unknown or misspelled keys are errors that name the key and the closest valid one.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rasterio.crs import CRS
from rasterio.errors import CRSError

from curation.errors import ParamsError, Problem
from curation.sources import SOURCES
from curation.sources.chip_product import S2_FILE_ORDER

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Base of every params section: immutable, and strict about keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    section: ClassVar[str]


S2_BANDS = frozenset(S2_FILE_ORDER)


class Part(BaseModel):
    """A nested block of a section: as strict as a section."""

    model_config = ConfigDict(frozen=True, extra="forbid")


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
            if name not in SOURCES:
                raise ValueError(f"unknown source '{name}': {_suggest(name, list(SOURCES))}")
        return value


class CrosswalksParams(Section):
    """The `crosswalks` stage: which crosswalk sets to validate and compare."""

    section: ClassVar[str] = "crosswalks"
    sets: tuple[str, ...]

    @field_validator("sets")
    @classmethod
    def _at_least_one(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("list at least one crosswalk set")
        if len(set(value)) != len(value):
            raise ValueError("lists a set twice")
        return value


class DemoParams(Section):
    """The `demo` stage: the synthetic world written in every source's native layout."""

    section: ClassVar[str] = "demo"
    seed: int
    out: Path
    chip_px: int = Field(ge=16, le=1024)
    chips_per_source: int = Field(ge=1, le=100_000)
    cloud_probability: float = Field(ge=0.0, le=1.0)


class ValidateParams(Section):
    """The `validate` stage: what every source's products and chips must satisfy."""

    section: ClassVar[str] = "validate"
    max_ignore_share: float = Field(ge=0.0, le=1.0)  # warn (not fail) when a chip's labels are more ignore than this
    out: Path  # reports/validation


class ChipsParams(Section):
    """The `chips` stage: label chips cut on every image chip's grid, and the manifest."""

    section: ClassVar[str] = "chips"
    out: Path  # data/chips
    link: Literal["copy", "hardlink"]  # how image chips are placed beside their labels
    skip_failed: bool  # true: chips that break a rule are left out and listed in the report; false: the stage fails


class SubsetsParams(Section):
    """The `subsets` stage: size-normalized, stratified, spatially blocked train and test sets per source."""

    section: ClassVar[str] = "subsets"
    seed: int
    train_sizes: tuple[int, ...]  # nested training sets (the study: 10, 100, 900)
    test_size: int = Field(ge=1)  # the study: 100
    block_m: float = Field(gt=0)  # side of the square spatial blocks, in metres
    buffer_m: float = Field(ge=0)  # minimum distance between any training and any test chip, in metres
    min_class_share: float = Field(gt=0.0, le=1.0)  # a chip contains a class when it covers this share of its pixels
    allow_smaller: bool  # true: a pool too small for a size gives a smaller set (reported) instead of failing
    published: Path | None  # folder of the study's lists (sentinel2_<dataset>_subsampled_*.csv) to use instead
    out: Path  # data/subsets

    @field_validator("train_sizes")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(k < 1 for k in value) or list(value) != sorted(set(value)):
            raise ValueError("list positive, strictly increasing sizes (e.g. [10, 100, 900])")
        return value


SEMVER = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"


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
    files: Literal["copy", "hardlink"]  # how chips are placed in the release
    tag_prefix: str = Field(min_length=1)  # git tag of a published version: <tag_prefix><version>
    changelog: dict[str, str]  # version -> what changed; must have an entry for `version`
    out: Path  # releases

    @model_validator(mode="after")
    def _changelog_has_version(self) -> PublishParams:
        if self.version not in self.changelog:
            raise ValueError(f"add a changelog entry for version {self.version}")
        return self


SECTIONS: dict[str, type[Section]] = {
    model.section: model
    for model in (SharedParams, CrosswalksParams, DemoParams, ValidateParams, ChipsParams, SubsetsParams, PublishParams)
}

S = TypeVar("S", bound=Section)


def known_sections() -> dict[str, type[Section]]:
    """Every section of params.yaml: the curation stages' and the training stages' (torch-free models)."""
    from training.config import TRAINING_SECTIONS

    return {**SECTIONS, **{model.section: model for model in TRAINING_SECTIONS}}


def read_params(path: Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read params.yaml as a mapping, with errors that say what to fix."""
    if not path.is_file():
        raise ParamsError(
            "cannot read params",
            [Problem(str(path), "file exists", "no such file", "run from the project root or pass --params PATH")],
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(
            "cannot read params", [Problem(str(path), "valid YAML", str(exc), "fix the YAML syntax")]
        ) from exc
    if not isinstance(raw, dict):
        raise ParamsError(
            "cannot read params",
            [Problem(str(path), "top level is a mapping", f"got {type(raw).__name__}", "write one section per stage")],
        )
    return raw


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{close[0]}'? (valid: {', '.join(valid)})"
    return f"valid keys: {', '.join(valid)}"


def _unknown_keys(raw: Mapping[str, Any], model: type[BaseModel], prefix: str, file: str) -> list[Problem]:
    problems: list[Problem] = []
    fields = list(model.model_fields)
    for key, value in raw.items():
        dotted = f"{prefix}.{key}"
        if key not in model.model_fields:
            problems.append(Problem(file, "unknown key", f"'{dotted}'", _suggest(str(key), fields)))
            continue
        annotation = _strip_optional(model.model_fields[key].annotation)
        if _is_model(annotation) and isinstance(value, Mapping):
            problems += _unknown_keys(value, annotation, dotted, file)
        elif typing.get_origin(annotation) is dict and isinstance(value, Mapping):
            item = _strip_optional(typing.get_args(annotation)[1])
            if _is_model(item):
                for name, body in value.items():
                    if isinstance(body, Mapping):
                        problems += _unknown_keys(body, item, f"{dotted}.{name}", file)
    return problems


def _strip_optional(annotation: Any) -> Any:  # noqa: ANN401 - a typing annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, type(int | None)) and len(args) == 1:
        return args[0]
    return annotation


def _is_model(annotation: Any) -> bool:  # noqa: ANN401 - a typing annotation
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _section_problems(raw: Mapping[str, Any], model: type[Section], file: str) -> tuple[list[Problem], Section | None]:
    name = model.section
    if name not in raw:
        fields = ", ".join(model.model_fields)
        return [Problem(file, "missing section", f"'{name}'", f"add a '{name}:' section with keys {fields}")], None
    body = raw[name]
    if not isinstance(body, Mapping):
        return [
            Problem(file, "section is a mapping", f"'{name}' is {type(body).__name__}", "write key: value pairs")
        ], None
    problems = _unknown_keys(body, model, name, file)
    if problems:
        return problems, None
    try:
        return [], model.model_validate(dict(body))
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join([name, *(str(part) for part in err["loc"])])
            fix = f"add '{loc}'" if err["type"] == "missing" else f"give '{loc}' a valid value"
            problems.append(Problem(file, "invalid value", f"'{loc}': {err['msg']}", fix))
        return problems, None


def _top_level_problems(raw: Mapping[str, Any], file: str) -> list[Problem]:
    sections = known_sections()
    return [
        Problem(file, "unknown section", f"'{key}'", _suggest(str(key), list(sections)))
        for key in raw
        if key not in sections
    ]


def load_section(model: type[S], path: Path = DEFAULT_PARAMS, *, whole_file: bool = True) -> S:
    """Return the validated, frozen section `model.section` of params.yaml.

    `whole_file=False` skips the check for unknown sections, which needs the training sections' models: the app
    reads curation sections without importing the training package.
    """
    raw = read_params(path)
    problems = _top_level_problems(raw, str(path)) if whole_file else []
    section_problems, value = _section_problems(raw, model, str(path))
    problems += section_problems
    if problems or value is None:
        raise ParamsError(f"params section '{model.section}' is invalid", problems)
    assert isinstance(value, model)
    return value


def check_all(path: Path = DEFAULT_PARAMS) -> dict[str, Section]:
    """Validate every section at once and report every problem together."""
    raw = read_params(path)
    problems = _top_level_problems(raw, str(path))
    sections: dict[str, Section] = {}
    for name, model in known_sections().items():
        section_problems, value = _section_problems(raw, model, str(path))
        problems += section_problems
        if value is not None:
            sections[name] = value
    if problems:
        raise ParamsError("params are invalid", problems)
    return sections
