"""The registry of label sources as data: one row of `curation/sources/registry.csv` per product.

A row names the reader (`module:Class`, imported only when a stage needs it) and the product's provenance, so
params, the CLI, the data card and the app know every source without importing rasterio, pyogrio or a reader.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal, cast

from curation.core.errors import Problem, ProblemsError, closest

REGISTRY = Path(__file__).resolve().parents[1] / "sources" / "registry.csv"
REGISTRY_ENV = "CROPHARMONY_REGISTRY"  # another registry file (a private source, a test): the whole table, not a diff
Kind = Literal["raster", "vector", "chips"]
KINDS: tuple[Kind, ...] = ("raster", "vector", "chips")
COLUMNS = (
    "source",
    "reader",
    "title",
    "region",
    "continent",
    "years",
    "licence",
    "doi",
    "kind",
    "study_name",
    "demo",
    "layout",
    "citation",
)


class RegistryError(ProblemsError):
    """The registry file breaks a rule."""


@dataclass(frozen=True)
class SourceInfo:
    """Provenance and layout of one product, as recorded in the registry."""

    name: str
    title: str
    region: str
    continent: str
    years: tuple[int, ...]
    licence: str
    citation: str
    doi: str
    kind: Kind
    layout: str
    study_name: str  # the dataset's name in the study's file names: sentinel2_<study_name>_subsampled[_<size>.csv]
    crosswalk: str = field(default="")  # the default crosswalk file; legends/sources.csv may name another
    reader: str = ""  # module:Class of the reader
    demo: bool = False  # the demo world writes this source

    def __post_init__(self) -> None:
        if not self.crosswalk:
            object.__setattr__(self, "crosswalk", f"{self.name}.csv")


def _row_problems(row: dict[str, str], line: int, file: str) -> list[Problem]:
    where = f"{file}:{line}"
    problems = [
        Problem(where, "required value", f"column '{c}' is empty", f"fill '{c}'")
        for c in ("source", "reader", "title", "kind", "years", "study_name")
        if not row.get(c)
    ]
    if row.get("kind") and row["kind"] not in KINDS:
        problems.append(Problem(where, "known kind", f"kind '{row['kind']}'", f"use one of {', '.join(KINDS)}"))
    if row.get("reader") and ":" not in row["reader"]:
        problems.append(Problem(where, "reader is module:Class", row["reader"], "write e.g. curation.sources.cdl:CDL"))
    if row.get("demo") not in ("true", "false"):
        problems.append(Problem(where, "demo is true or false", f"demo '{row.get('demo')}'", "write true or false"))
    if row.get("years") and not all(part.isdigit() for part in row["years"].split()):
        problems.append(Problem(where, "years are integers", row["years"], "separate years with spaces"))
    return problems


def registry_path() -> Path:
    """The registry in use: `$CROPHARMONY_REGISTRY` when set, else the package's own."""
    return Path(os.environ.get(REGISTRY_ENV) or REGISTRY)


def load_registry(path: Path | None = None) -> dict[str, SourceInfo]:
    """Every registered source in file order; every problem of the file is raised at once."""
    return _load(path or registry_path())


@cache
def _load(path: Path) -> dict[str, SourceInfo]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = tuple(reader.fieldnames or ())
        if header != COLUMNS:
            raise RegistryError(
                "the source registry is invalid",
                [Problem(str(path), "columns", f"header {', '.join(header)}", f"use {', '.join(COLUMNS)}")],
            )
        rows = list(reader)
    problems: list[Problem] = []
    infos: dict[str, SourceInfo] = {}
    for line, row in enumerate(rows, start=2):
        found = _row_problems(row, line, str(path))
        if row["source"] in infos:
            found.append(Problem(f"{path}:{line}", "unique source", row["source"], "keep one row per source"))
        problems += found
        if found:
            continue
        infos[row["source"]] = SourceInfo(
            name=row["source"],
            title=row["title"],
            region=row["region"],
            continent=row["continent"],
            years=tuple(int(y) for y in row["years"].split()),
            licence=row["licence"],
            citation=row["citation"],
            doi=row["doi"],
            kind=cast(Kind, row["kind"]),
            layout=row["layout"],
            study_name=row["study_name"],
            reader=row["reader"],
            demo=row["demo"] == "true",
        )
    if problems:
        raise RegistryError("the source registry is invalid", problems)
    return infos


def source_names() -> tuple[str, ...]:
    """Names of the registered sources, in registry order."""
    return tuple(load_registry())


def demo_sources() -> tuple[str, ...]:
    """The sources the demo world writes (registry column `demo`): the six of the study."""
    return tuple(name for name, info in load_registry().items() if info.demo)


def source_info(name: str) -> SourceInfo:
    """A source's registry entry, with the closest name suggested on a typo."""
    registry = load_registry()
    if name not in registry:
        hint = closest(name, list(registry))
        raise RegistryError(
            "unknown source", [Problem(str(registry_path()), "registered source", f"'{name}' is not registered", hint)]
        )
    return registry[name]


def registry_rows() -> list[dict[str, str]]:
    """The registry as rows (for the CLI, the data card and the app)."""
    return [
        {
            "source": info.name,
            "title": info.title,
            "region": info.region,
            "continent": info.continent,
            "years": ", ".join(map(str, info.years)),
            "licence": info.licence,
            "doi": info.doi,
            "layout": info.layout,
            "kind": info.kind,
        }
        for info in load_registry().values()
    ]
