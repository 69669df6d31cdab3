"""Symbolic links under a source's label and image folders are refused, by validate and chips alike.

The readers follow links, DVC does not: `dvc repro` hashes a dependency folder with `os.walk` without following
links (dvc-objects' `LocalFileSystem.walk`: "no support for symlinks"), so the files under a linked folder are not
part of the stage's dependency hash and `dvc status` stays "up to date" when they change (checked with DVC 3.67:
a linked folder inside `deps` adds no file to the `.dir` hash; see also iterative/dvc#9971 and #10237). A linked
file is hashed through the link today, but DVC's maintainers call following links accidental (iterative/dvc#10055)
and a link to a path outside the project breaks in every other checkout. So one rule for both: no link at or below
a source's folders (below `shared.raw_root`, the folder DVC tracks); copy the data in, or point the params at the
real folder. `shared.raw_root` itself may be a link: DVC resolves the top of a dependency path.
"""

from __future__ import annotations

import os
from pathlib import Path

from curation.core.errors import Problem
from curation.inputs.chip_refs import SourceInput

RULE = "no symbolic links"


def link_problems(source: SourceInput) -> list[Problem]:
    """Every link at or below the source's label and image folders (and between them and the raw root)."""
    found: dict[Path, str] = {}
    for key, folder in (("labels", source.labels), ("images", source.images)):
        if folder is None:
            continue
        for link in _links_above(folder, source.raw_root) + _links_below(folder):
            found.setdefault(link, key)
    return [_problem(link, key, source.name) for link, key in sorted(found.items())]


def _links_above(folder: Path, raw_root: Path | None) -> list[Path]:
    """Links among the folders from below the raw root down to `folder` itself."""
    if raw_root is None:
        return [folder] if folder.is_symlink() else []
    try:
        parts = folder.relative_to(raw_root).parts
    except ValueError:  # an absolute path outside the raw root: DVC does not track it through raw_root
        return []
    steps = [raw_root.joinpath(*parts[: i + 1]) for i in range(len(parts))]
    return [step for step in steps if step.is_symlink()]


def _links_below(folder: Path) -> list[Path]:
    """Links inside `folder` (a linked subfolder is named once, not walked)."""
    if not folder.is_dir():
        return []
    links = []
    for root, dirs, files in os.walk(folder):  # followlinks=False: linked folders are listed, not entered
        links += [Path(root, name) for name in (*dirs, *files) if Path(root, name).is_symlink()]
    return links


def _problem(link: Path, key: str, source: str) -> Problem:
    kind = "folder" if link.is_dir() else "file"
    target = link.readlink()
    return Problem(
        str(link),
        RULE,
        f"a link to the {kind} {target}: the readers follow it but DVC does not hash what a link inside a "
        "dependency folder points at, so `dvc status` would call stale outputs up to date",
        f"copy the data in (cp -rL), or point shared.raw_root or shared.sources.{source}.{key} at the real folder",
    )
