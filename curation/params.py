"""Typed, frozen params: a stage asks for its section of params.yaml and gets a validated object.

Every key is required: params.yaml is the single source of truth, so nothing falls back to a silent default.
Unknown or misspelled keys are errors that name the key and the closest valid one.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from curation.errors import ParamsError, Problem

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Base of every params section: immutable, and strict about keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    section: ClassVar[str]


class SharedParams(Section):
    """Keys every stage may read besides its own section."""

    section: ClassVar[str] = "shared"
    legends_dir: Path
    crosswalk_set: str

    @field_validator("crosswalk_set")
    @classmethod
    def _set_is_a_name(cls, value: str) -> str:
        if not value or "/" in value or value.startswith("."):
            raise ValueError("must be a set name such as 'toolkit' or 'paper', not a path")
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


SECTIONS: dict[str, type[Section]] = {model.section: model for model in (SharedParams, CrosswalksParams, DemoParams)}

S = TypeVar("S", bound=Section)


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
        annotation = model.model_fields[key].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, Mapping):
            problems += _unknown_keys(value, annotation, dotted, file)
    return problems


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
    return [
        Problem(file, "unknown section", f"'{key}'", _suggest(str(key), list(SECTIONS)))
        for key in raw
        if key not in SECTIONS
    ]


def load_section(model: type[S], path: Path = DEFAULT_PARAMS) -> S:
    """Return the validated, frozen section `model.section` of params.yaml."""
    raw = read_params(path)
    problems = _top_level_problems(raw, str(path))
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
    for name, model in SECTIONS.items():
        section_problems, value = _section_problems(raw, model, str(path))
        problems += section_problems
        if value is not None:
            sections[name] = value
    if problems:
        raise ParamsError("params are invalid", problems)
    return sections
