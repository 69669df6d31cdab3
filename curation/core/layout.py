"""Where outputs may go: never over an input, the project, or each other (checked before any stage writes).

`dvc repro` refuses overlapping outputs, but a stage run from the CLI would not: `chips.out: data` (a parent of the
raw root) would replace the raw inputs. Every stage and `cropharmony params check` run these rules first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from curation.core.errors import ParamsError, Problem, shorten
from curation.core.outputs import foreign_files

OUTPUTS = (  # every params key that names a stage output (the artifact catalogue's `_Out` entries)
    ("demo", "out"),
    ("crosswalks", "out"),
    ("validate", "out"),
    ("chips", "out"),
    ("chips", "report"),
    ("subsets", "out"),
    ("subsets", "report"),
    ("train", "out"),
    ("evaluate", "out"),
    ("report", "out"),
    ("publish", "out"),
)
INPUTS = (("shared", "raw_root"), ("shared", "legends_dir"))
PROJECT = ("params.yaml", "dvc.yaml", "dvc.lock", "curation", "training", "app", ".git", ".dvc")
UPSTREAM = {("shared", "raw_root"): ("demo", "out")}  # an input a stage writes: the demo world is the raw root


def _value(raw: Mapping[str, Any], section: str, key: str) -> str | None:
    body = raw.get(section)
    value = body.get(key) if isinstance(body, Mapping) else None
    return value if isinstance(value, str) and value else None


def _resolve(root: Path, value: str) -> Path:
    return (root / value).resolve()


def _inside(a: Path, b: Path) -> bool:
    """Whether `a` is `b` or lies below it."""
    return a == b or b in a.parents


def _overlap(a: Path, b: Path) -> bool:
    return _inside(a, b) or _inside(b, a)


def layout_problems(raw: Mapping[str, Any], params_file: Path, root: Path | None = None) -> list[Problem]:
    """Outputs that overlap each other, an input, or the project's own files (paths relative to `root`)."""
    base = Path.cwd() if root is None else root
    file = str(params_file)
    outs = [(f"{s}.{k}", _resolve(base, v)) for s, k in OUTPUTS if (v := _value(raw, s, k))]
    problems = []
    for i, (name, path) in enumerate(outs):
        for other, other_path in outs[i + 1 :]:
            if _overlap(path, other_path):
                problems.append(
                    Problem(
                        file,
                        "outputs apart",
                        f"'{name}' ({path}) overlaps '{other}' ({other_path})",
                        "give every stage output a path of its own, none inside another",
                    )
                )
        for item in PROJECT:
            project_path = _resolve(base, item)
            if _inside(project_path, path) or path == _resolve(base, "."):
                problems.append(
                    Problem(
                        file,
                        "outputs apart from the project",
                        f"'{name}' ({path}) would replace {item}",
                        f"point '{name}' at a folder of its own (e.g. under data/ or reports/)",
                    )
                )
                break
    for section, key in INPUTS:
        value = _value(raw, section, key)
        if value is None:
            continue
        path = _resolve(base, value)
        allowed = UPSTREAM.get((section, key))
        for name, out in outs:
            if allowed is not None and name == ".".join(allowed) and _inside(path, out):
                continue  # the stage that writes this input: its output is read, not overwritten
            if _overlap(path, out):
                problems.append(
                    Problem(
                        file,
                        "outputs apart from inputs",
                        f"'{name}' ({out}) overlaps input '{section}.{key}' "
                        f"({path}): running the stage would replace it",
                        f"point '{name}' at a folder outside {value}",
                    )
                )
    return problems


def input_problems(raw: Mapping[str, Any], params_file: Path, root: Path | None = None) -> list[Problem]:
    """Inputs inside a stage's output that hold files the stage did not write: DVC deletes them on its next run."""
    base = Path.cwd() if root is None else root
    problems = []
    for (section, key), (out_section, out_key) in UPSTREAM.items():
        value, out_value = _value(raw, section, key), _value(raw, out_section, out_key)
        if value is None or out_value is None:
            continue
        path, out = _resolve(base, value), _resolve(base, out_value)
        if not _inside(path, out) or not out.is_dir():
            continue
        extra = foreign_files(out)
        if extra:
            problems.append(
                Problem(
                    str(out),
                    "inputs apart from outputs",
                    f"{len(extra)} file(s) here were not written by stage '{out_section}', whose output this "
                    f"folder is, and `dvc repro` deletes them when it re-runs it: {shorten(extra)}",
                    f"move real products to a folder no stage owns (e.g. data/real) and set '{section}.{key}' "
                    f"to it in {params_file}",
                )
            )
    return problems


def check_layout(raw: Mapping[str, Any], params_file: Path, *, inputs: bool = True) -> None:
    """Raise one error naming every overlap (and, with `inputs`, every user file inside a stage's output)."""
    problems = layout_problems(raw, params_file)
    if inputs:
        problems += input_problems(raw, params_file)
    if problems:
        raise ParamsError("outputs and inputs overlap", problems)
