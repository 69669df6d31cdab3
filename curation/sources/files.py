"""How readers find files under a raw root, and which files found there are never inputs of their own.

Extensions match in any case (`.tif`, `.TIF`, `.Tif`: GDAL reads them all, and Windows tools write them), the rest
of a name exactly as the product's layout writes it. A file a reader does not read is reported, with the reason,
unless it is documentation (readme, licence, metadata pages, the fixtures' generators) or a sidecar of a file
beside it (`.dbf`, `.shx`, `.prj`, `.cpg` of a shapefile; `.aux.xml`, `.ovr`, `.tfw` of a GeoTIFF): those travel
with their file and are reported with it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

UNUSED = "unused file"  # the rule of every row that reports a file found and not read

DOCUMENTATION_SUFFIXES = frozenset({".md", ".txt", ".pdf", ".htm", ".html", ".rst", ".py", ".pyc", ".ipynb", ".log"})
DOCUMENTATION_NAMES = frozenset({"README", "LICENSE", "LICENCE", "COPYING", "NOTICE", "CITATION", "PROVENANCE"})
SIDECAR_SUFFIXES = (
    ".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".fix", ".qmd", ".xml", ".shp.xml",
    ".aux.xml", ".ovr", ".tfw", ".tifw", ".wld", ".msk", ".vat.dbf", ".vat.cpg",
)  # fmt: skip
"""Files that belong to the file of the same stem beside them (a shapefile's parts, a GeoTIFF's overviews)."""


def any_case(pattern: str) -> str:
    """A file-name glob whose extension matches in any case: `*_EC*.shp` -> `*_EC*.[sS][hH][pP]`."""
    head, dot, ext = pattern.rpartition(".")
    if not dot or not ext or any(c in ext for c in "*?[]"):
        return pattern
    return f"{head}.{''.join(f'[{c.lower()}{c.upper()}]' if c.isalpha() else c for c in ext)}"


def name_matches(name: str, pattern: str) -> bool:
    """Whether a file name matches a layout glob (extension in any case)."""
    return fnmatch.fnmatchcase(name, any_case(pattern))


def find(root: Path, pattern: str) -> set[Path]:
    """Every path under `root` whose name matches `pattern` (extension in any case), searched recursively."""
    return set(root.rglob(any_case(pattern)))


def is_documentation(path: Path) -> bool:
    """Readmes, licences, metadata pages and scripts: shipped beside the data, never read as data."""
    return path.suffix.lower() in DOCUMENTATION_SUFFIXES or path.stem.upper() in DOCUMENTATION_NAMES


def sidecar_shaped(path: Path) -> bool:
    """Whether the name ends like a sidecar (`.dbf`, `.aux.xml`, ...): such a file is never a product file itself."""
    return path.name.lower().endswith(SIDECAR_SUFFIXES)


def is_sidecar(path: Path, of: Path) -> bool:
    """Whether `path` belongs to `of` beside it: `X.dbf` of `X.shp`, `X.tif.ovr` or `X.aux.xml` of `X.tif`.

    `of` must not be a sidecar itself, so a `.dbf` and a `.prj` without their `.shp` are reported, not hidden.
    """
    if path == of or path.parent != of.parent or sidecar_shaped(of):
        return False
    name, main = path.name.lower(), of.name.lower()
    if name.startswith(main + "."):
        return True
    stem = main.rpartition(".")[0] or main
    return any(name == stem + suffix for suffix in SIDECAR_SUFFIXES)


def walk(roots: Iterable[Path], units: Iterable[str] = ()) -> Iterator[Path]:
    """Every file under `roots`, skipping hidden entries and caches.

    A folder matching a glob of `units` (a FileGDB: `*.gdb`) is one entry, not descended into.
    """
    patterns = tuple(units)
    for root in roots:
        if not root.is_dir():
            continue
        for folder, dirs, names in os.walk(root):
            here = Path(folder)
            keep = []
            for name in sorted(dirs):
                if name.startswith(".") or name == "__pycache__":
                    continue
                if any(name_matches(name, p) for p in patterns):
                    yield here / name
                else:
                    keep.append(name)
            dirs[:] = keep
            yield from (here / name for name in sorted(names) if not name.startswith("."))
