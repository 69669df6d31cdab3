"""Load and validate crosswalk sets: taxonomy, per-source legend rules, one CSV per source.

A set is a folder: `toolkit` is `<legends_dir>/` itself, any other set (e.g. `paper`) is `<legends_dir>/<set>/`.
`target.csv` and `sources.csv` come from `<legends_dir>/` unless the set folder has its own.
Every problem in every file is collected before anything is raised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandera.polars as pa
import polars as pl

from curation.core.errors import LegendError, Problem
from curation.core.failures import Words, problems_of
from curation.core.remap import Crosswalk
from curation.core.schemas import SOURCE_LEGENDS_SCHEMA, TARGET_SCHEMA, crosswalk_schema
from curation.core.taxonomy import Taxonomy

TOOLKIT = "toolkit"
TARGET = "target.csv"  # the harmonized classes, shared by every set unless a set folder has its own
SOURCES_TABLE = "sources.csv"  # per source: match rule, code range, crosswalk file

# rule name in the schema -> (what the rule says, how to fix a breach)
_RULES = {
    "integer": ("code is a non-negative integer", "write the code as digits only"),
    "unique code": ("unique code", "keep one row per code"),
    "unique id": ("unique class id", "give each class its own id"),
    "non-empty name": ("non-empty name", "give the code its official name"),
    "field_uniqueness": ("unique value", "keep one row per value"),
    "not_nullable": ("required value", "fill the cell"),
    "column_in_schema": ("known column", "remove the column"),
    "column_in_dataframe": ("required column", "add the column"),
    "10-digit code": ("HCAT code has 10 digits", "use the full 10-digit HCAT code (or 0 for no code)"),
    "class name": ("class name is lower_snake_case", "rename the class"),
    "hex colour": ("colour is #rrggbb", "write the colour as #rrggbb"),
    "id 0 is ignore": ("class id 0 is 'ignore' (skipped by loss and metrics)", "give id 0 the name 'ignore'"),
    "ignore is id 0": ("'ignore' has id 0", "give 'ignore' id 0"),
    "source name": ("source name is lower_snake_case", "rename the source"),
    "crosswalk file": (
        "crosswalk is a file name <name>.csv",
        "name a crosswalk file of the set folder, or leave it empty",
    ),
}


@dataclass(frozen=True)
class SourceLegend:
    """How one source's codes are matched and which values are legal (a row of sources.csv)."""

    source: str
    match: Literal["exact", "prefix"]
    min_code: int
    max_code: int
    digits: int | None
    legend: str
    crosswalk: str  # the file of the source's crosswalk in each set (another source's, when they share a legend)


@dataclass(frozen=True)
class CrosswalkSet:
    """A validated set of crosswalks, one per source, sharing one taxonomy."""

    name: str  # toolkit, paper, ...
    directory: Path  # the set's folder (toolkit: the legends folder itself)
    taxonomy: Taxonomy  # target.csv
    legends: Mapping[str, SourceLegend]  # sources.csv, by source
    crosswalks: Mapping[str, Crosswalk]  # one per source of sources.csv

    def __getitem__(self, source: str) -> Crosswalk:
        if source not in self.crosswalks:
            known = ", ".join(self.crosswalks)
            raise KeyError(f"crosswalk set '{self.name}' has no source '{source}' (known: {known})")
        return self.crosswalks[source]


def set_directory(legends_dir: Path, set_name: str) -> Path:
    """Folder of a crosswalk set."""
    return legends_dir if set_name == TOOLKIT else legends_dir / set_name


def _read_table(path: Path, problems: list[Problem]) -> pl.DataFrame | None:
    if not path.is_file():
        problems.append(Problem(str(path), "file exists", "no such file", "create it (see curation/legends/README.md)"))
        return None
    try:
        return pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as exc:
        problems.append(Problem(str(path), "readable CSV", str(exc).splitlines()[0], "fix the CSV syntax"))
        return None


def _schema_problems(frame: pl.DataFrame, schema: pa.DataFrameSchema, path: Path) -> list[Problem]:
    words = Words(
        file=str(path),
        fix="see the schema in curation/core/schemas.py",
        line_offset=2,  # the header is line 1
        rules=_RULES,
        fixes={"code range": "use a code of the source's official legend (ranges in sources.csv)"},
        values="quoted",
    )
    return problems_of(frame, schema, words)


def taxonomy_of(legends_dir: Path) -> Taxonomy:
    """The taxonomy every set of `legends_dir` shares (its target.csv)."""
    return load_taxonomy(legends_dir / TARGET)


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and validate target.csv."""
    problems: list[Problem] = []
    taxonomy = _taxonomy(path, problems)
    if taxonomy is None:
        raise LegendError(f"taxonomy {path} is invalid", problems)
    return taxonomy


def _validated(path: Path, schema: pa.DataFrameSchema, problems: list[Problem]) -> pl.DataFrame | None:
    """The table at `path` when it reads and passes `schema`; else None, with every problem added."""
    frame = _read_table(path, problems)
    if frame is None:
        return None
    found = _schema_problems(frame, schema, path)
    problems += found
    return None if found else frame


def _taxonomy(path: Path, problems: list[Problem]) -> Taxonomy | None:
    frame = _validated(path, TARGET_SCHEMA, problems)
    if frame is None:
        return None
    frame = frame.with_columns(pl.col("id").cast(pl.Int64)).sort("id")
    return Taxonomy(
        ids=tuple(frame.get_column("id").to_list()),
        names=tuple(frame.get_column("name").to_list()),
        colors=tuple(frame.get_column("color").to_list()),
    )


def _source_legends(path: Path, problems: list[Problem]) -> dict[str, SourceLegend] | None:
    frame = _validated(path, SOURCE_LEGENDS_SCHEMA, problems)
    if frame is None:
        return None
    return {
        row["source"]: SourceLegend(
            source=row["source"],
            match=cast(Literal["exact", "prefix"], row["match"]),
            min_code=int(row["min_code"]),
            max_code=int(row["max_code"]),
            digits=int(row["digits"]) if row["digits"] else None,
            legend=row["legend"],
            crosswalk=row.get("crosswalk") or f"{row['source']}.csv",
        )
        for row in frame.iter_rows(named=True)
    }


def _crosswalk(
    path: Path, set_name: str, legend: SourceLegend, taxonomy: Taxonomy, problems: list[Problem]
) -> Crosswalk | None:
    schema = crosswalk_schema(legend.source, taxonomy.names, legend.min_code, legend.max_code, legend.digits)
    frame = _validated(path, schema, problems)
    if frame is None:
        return None
    frame = frame.with_columns(pl.col("code").cast(pl.Int64)).sort("code")
    notes = frame.get_column("note").fill_null("").to_list() if "note" in frame.columns else [""] * frame.height
    return Crosswalk(
        source=legend.source,
        path=str(path),
        set_name=set_name,
        match=legend.match,
        digits=legend.digits,
        codes=frame.get_column("code").to_numpy().astype(np.int64),
        names=tuple(frame.get_column("name").to_list()),
        targets=np.array([taxonomy.id_of(t) for t in frame.get_column("target").to_list()], dtype=np.uint8),
        taxonomy=taxonomy,
        notes=tuple(notes),
    )


def _load_set(legends_dir: Path, set_name: str, problems: list[Problem]) -> CrosswalkSet | None:
    directory = set_directory(legends_dir, set_name)
    if not directory.is_dir():
        others = sorted(p.name for p in legends_dir.iterdir() if p.is_dir()) if legends_dir.is_dir() else []
        problems.append(
            Problem(
                str(directory),
                "crosswalk set exists",
                f"no folder for set '{set_name}'",
                f"choose one of {', '.join([TOOLKIT, *others])} or create the folder",
            )
        )
        return None

    def shared(name: str) -> Path:
        own = directory / name
        return own if own.is_file() else legends_dir / name

    n_before = len(problems)
    taxonomy = _taxonomy(shared(TARGET), problems)
    legends = _source_legends(shared(SOURCES_TABLE), problems)
    if taxonomy is None or legends is None:
        return None
    crosswalks = {}
    for source, legend in legends.items():
        crosswalk = _crosswalk(directory / legend.crosswalk, set_name, legend, taxonomy, problems)
        if crosswalk is not None:
            crosswalks[source] = crosswalk
    if len(problems) > n_before:
        return None
    return CrosswalkSet(set_name, directory, taxonomy, legends, crosswalks)


def load_set(legends_dir: Path, set_name: str) -> CrosswalkSet:
    """Load and validate one set, raising one error that lists every problem."""
    return check_sets(legends_dir, [set_name])[set_name]


def check_sets(legends_dir: Path, set_names: Iterable[str]) -> dict[str, CrosswalkSet]:
    """Load and validate several sets; every problem across all of them is raised together."""
    problems: list[Problem] = []
    sets = {}
    for name in set_names:
        loaded = _load_set(legends_dir, name, problems)
        if loaded is not None:
            sets[name] = loaded
    if problems:
        raise LegendError("crosswalks are invalid", problems)
    return sets


def unlisted_crosswalks(legends_dir: Path) -> list[Problem]:
    """CSVs of the legends folder that no set reads, as "unused file" rows sorted by file: none is skipped silently.

    The sets are `<legends_dir>/` (toolkit) and each folder directly in it; a set reads its target.csv and
    sources.csv (its own, else the shared ones) and the crosswalk file each row of its sources.csv names. A set
    whose sources.csv does not load lists nothing: loading the set reports that table's problems.
    """
    if not legends_dir.is_dir():
        return []
    rows = []
    sets = [legends_dir, *sorted(p for p in legends_dir.iterdir() if p.is_dir() and not p.name.startswith("."))]
    for directory in sets:
        own = directory / SOURCES_TABLE
        table = own if own.is_file() else legends_dir / SOURCES_TABLE
        legends = _source_legends(table, []) if table.is_file() else None
        if legends is None:
            continue
        listed = {TARGET.lower(), SOURCES_TABLE.lower()} | {legend.crosswalk.lower() for legend in legends.values()}
        for path in sorted(directory.iterdir()):
            if path.is_file() and path.suffix.lower() == ".csv" and path.name.lower() not in listed:
                rows.append(
                    Problem(
                        str(path),
                        "unused file",
                        f"a crosswalk CSV that {table} does not list: no source of set "
                        f"'{TOOLKIT if directory == legends_dir else directory.name}' reads it",
                        f"name it in the crosswalk column of its source's row in {table}, or remove it",
                    )
                )
    for path in sorted(legends_dir.rglob("*")):
        depth = len(path.relative_to(legends_dir).parts)
        if depth > 2 and path.is_file() and path.suffix.lower() == ".csv":
            rows.append(
                Problem(
                    str(path),
                    "unused file",
                    "a CSV below the crosswalk set folders (a set is the legends folder or a folder directly in it)",
                    "move it into a set folder and list it in sources.csv, or remove it",
                )
            )
    return sorted(rows, key=lambda p: p.file)


def differences(first: CrosswalkSet, second: CrosswalkSet) -> list[dict[str, Any]]:
    """Codes whose harmonized class differs between two sets, source by source."""
    rows = []
    for source, a in first.crosswalks.items():
        b = second.crosswalks.get(source)
        if b is None:
            continue
        codes = np.union1d(a.codes, b.codes)
        ta, tb = a.resolve(codes), b.resolve(codes)
        for code, x, y in zip(codes.tolist(), ta.tolist(), tb.tolist(), strict=True):
            if x != y:
                rows.append(
                    {
                        "source": source,
                        "code": code,
                        "name": _name_of(a, code) or _name_of(b, code),
                        first.name: _class_name(first.taxonomy, x),
                        second.name: _class_name(second.taxonomy, y),
                    }
                )
    return rows


def _name_of(crosswalk: Crosswalk, code: int) -> str:
    idx = int(np.searchsorted(crosswalk.codes, code))
    return crosswalk.names[idx] if idx < len(crosswalk.codes) and crosswalk.codes[idx] == code else ""


def _class_name(taxonomy: Taxonomy, class_id: int) -> str:
    return taxonomy.names[taxonomy.ids.index(class_id)] if class_id in taxonomy.ids else "(unmapped)"
