"""Typed, frozen params: a stage asks for its section of params.yaml and gets a validated object.

Every key is required: params.yaml is the single source of truth, so nothing falls back to a silent default.
Unknown or misspelled keys are errors that name the key and the closest valid one. Each package defines its
sections' models and registers them with `@register`; the names of all sections come from the stage table, so
checking a file for unknown sections imports no stage. While a stage runs (`reading_for`), a read of a section it
does not declare is refused: DVC would not re-run the stage when that section changes.
"""

from __future__ import annotations

import difflib
import importlib
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from curation.core.errors import CropharmonyError, ParamsError, Problem
from curation.core.layout import input_problems, layout_problems
from curation.core.stages import BY_NAME, SECTION_NAMES, STAGES, Stage

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Base of every params section: immutable, and strict about keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    section: ClassVar[str]


class Part(BaseModel):
    """A nested block of a section: as strict as a section."""

    model_config = ConfigDict(frozen=True, extra="forbid")


SECTIONS: dict[str, type[Section]] = {}
"""Section name -> model, filled by `@register` as each package's params module is imported."""

T = TypeVar("T", bound=type[Section])
S = TypeVar("S", bound=Section)


def register(model: T) -> T:
    """Add a section model to the registry (a class decorator)."""
    if model.section not in SECTION_NAMES:
        raise ValueError(f"section {model.section!r} is not in curation/core/stages.py: add its stage there")
    SECTIONS[model.section] = model
    return model


def increasing_sizes(value: tuple[int, ...], hint: str) -> tuple[int, ...]:
    """Check a list of set sizes: positive and strictly increasing (`hint` says where valid sizes come from)."""
    if not value or any(k < 1 for k in value) or list(value) != sorted(set(value)):
        raise ValueError(f"list positive, strictly increasing sizes {hint}")
    return value


def all_sections() -> dict[str, type[Section]]:
    """Every section model, importing each stage's params module (light: pydantic only)."""
    importlib.import_module("curation.core.shared")
    for stage in STAGES:
        importlib.import_module(stage.config)
    return {name: SECTIONS[name] for name in SECTION_NAMES}


class UndeclaredParamsError(CropharmonyError):
    """A stage read params it does not declare: DVC would not re-run it when they change."""


_ACTIVE: ContextVar[Stage | None] = ContextVar("active_stage", default=None)


@contextmanager
def reading_for(stage_name: str) -> Iterator[Stage]:
    """Reads of params inside the block must be declared by the stage (curation/core/stages.py and dvc.yaml)."""
    stage = BY_NAME[stage_name]
    token = _ACTIVE.set(stage)
    try:
        yield stage
    finally:
        _ACTIVE.reset(token)


def active_stage_name() -> str | None:
    """The stage running in this context (None outside a stage: tests, notebooks)."""
    stage = _ACTIVE.get()
    return None if stage is None else stage.name


def check_declared(section: str, key: str | None = None) -> None:
    """Refuse a read the running stage does not declare (outside a stage, every read is allowed)."""
    stage = _ACTIVE.get()
    if stage is None or stage.reads(section, key):
        return
    what = section if key is None else f"{section}.{key}"
    raise UndeclaredParamsError(
        f"stage {stage.name}: params declared: it reads '{what}', which it does not declare. "
        f"Fix: add '{what}' to the stage's params in curation/core/stages.py and in dvc.yaml"
    )


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice: plain YAML loaders keep the last value without a word."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load that refuses a key given twice in one mapping (merge keys `<<` still override)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise DuplicateKeyError(
                    f"key '{key}' appears twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1})"
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_params(path: Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read params.yaml as a mapping, with errors that say what to fix."""
    if not path.is_file():
        raise ParamsError(
            "cannot read params",
            [Problem(str(path), "file exists", "no such file", "run from the project root or pass --params PATH")],
        )
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except DuplicateKeyError as exc:
        raise ParamsError(
            "cannot read params",
            [Problem(str(path), "unique keys", str(exc), "keep one of them: YAML would silently use the last")],
        ) from exc
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


def suggest(key: str, valid: list[str]) -> str:
    """'did you mean ...?' for a mistyped key, with the valid ones."""
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
            problems.append(Problem(file, "unknown key", f"'{dotted}'", suggest(str(key), fields)))
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
    return [
        Problem(file, "unknown section", f"'{key}'", suggest(str(key), list(SECTION_NAMES)))
        for key in raw
        if key not in SECTION_NAMES
    ]


def load_section(model: type[S], path: Path = DEFAULT_PARAMS, *, whole_file: bool = True) -> S:
    """Return the validated, frozen section `model.section` of params.yaml.

    `whole_file=False` skips the check for unknown sections: a reader of one section (the app) tolerates sections
    it does not know.
    """
    check_declared(model.section)
    raw = read_params(path)
    problems = _top_level_problems(raw, str(path)) if whole_file else []
    section_problems, value = _section_problems(raw, model, str(path))
    problems += section_problems
    if problems or value is None:
        raise ParamsError(f"params section '{model.section}' is invalid", problems)
    assert isinstance(value, model)
    return value


def load_named(section: str, path: Path = DEFAULT_PARAMS) -> Section:
    """A section by name, its model imported through the stage table (callers need not import a stage)."""
    importlib.import_module("curation.core.shared" if section == "shared" else BY_NAME[section].config)
    return load_section(SECTIONS[section], path, whole_file=False)


def check_all(path: Path = DEFAULT_PARAMS) -> dict[str, Section]:
    """Validate every section at once and report every problem together."""
    raw = read_params(path)
    problems = _top_level_problems(raw, str(path))
    sections: dict[str, Section] = {}
    for name, model in all_sections().items():
        section_problems, value = _section_problems(raw, model, str(path))
        problems += section_problems
        if value is not None:
            sections[name] = value
    problems += layout_problems(raw, path) + input_problems(raw, path)
    if problems:
        raise ParamsError("params are invalid", problems)
    return sections
