"""The study's chip lists (`sentinel2_<dataset>_subsampled_<name>.csv`): read them, and write ours in their format.

The format, as published in yichiac/crop-type-transfer-learning: a literal `Test` header row (optional on reading),
then one chip file name (`<chip_id>.tif`) per row, CRLF line ends. Names: `_test`, `_100_train`, and `_<k>` for
the other training sizes; on reading both `_<k>` and `_<k>_train` are accepted for every k. The random test set
(`_test_random`, split `test_random`) is ours only: the study had none, so it is written, never read.
The study's training lists are not nested, and reading reports that as a quirk rather than an error, so its splits
are reproduced as they were: its first-published 10-chip lists lie mostly outside its 1000-chip pool, and the 10-chip
lists it finally used (commit eaff5bf replaced all but AgriFieldNet's: `<folder>/final-10/` beside the first ones)
lie inside its 900-chip lists but share no chip with its 100-chip lists.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Literal

from curation.core.errors import Problem, shorten
from curation.core.io import atomic_write_bytes
from curation.core.schemas import TEST_RANDOM

HEADER = "Test"
SUFFIX = ".tif"
SHOWN = 5  # ids named in an error before "+N more"
FINAL_DIR = "final-10"  # beside the first-published lists: the 10-chip lists the study finally used
FINAL_SIZE = 10  # the only size the study replaced
Revision = Literal["final", "first"]  # final: a list in FINAL_DIR replaces the first-published one
REVISIONS: tuple[Revision, ...] = ("final", "first")


def set_name(split: str, size: int) -> str:
    """The study's name of a set: `test`, `100_train`, or the size alone; ours only: `test_random`."""
    if split in ("test", TEST_RANDOM):
        return split
    return "100_train" if size == 100 else str(size)


def list_name(study_name: str, split: str, size: int) -> str:
    """File name of one set's list, as the study names it."""
    return f"sentinel2_{study_name}_subsampled_{set_name(split, size)}.csv"


def accepted_names(study_name: str, split: str, size: int) -> list[str]:
    """File names accepted on reading, the study's own first."""
    names = [list_name(study_name, split, size)]
    if split == "train":
        names += [f"sentinel2_{study_name}_subsampled_{k}.csv" for k in (f"{size}_train", str(size))]
    return list(dict.fromkeys(names))


def read_list(path: Path) -> list[str]:
    """Chip ids of one list, in file order: header row dropped, blank rows skipped, `.tif` stripped."""
    rows = [row.strip().strip('"') for row in path.read_text(encoding="utf-8-sig").splitlines()]
    rows = [row for row in rows if row]
    if rows and rows[0] == HEADER:
        rows = rows[1:]
    return [row.removesuffix(SUFFIX) for row in rows]


def list_bytes(chip_ids: Sequence[str]) -> bytes:
    """A list in the study's format (header row, CRLF), so the study's loaders read ours unchanged."""
    return "".join(f"{row}\r\n" for row in [HEADER, *(f"{c}{SUFFIX}" for c in chip_ids)]).encode("utf-8")


def write_list(path: Path, chip_ids: Sequence[str]) -> None:
    """Write one list atomically."""
    atomic_write_bytes(path, list_bytes(chip_ids))


@dataclass(frozen=True)
class Published:
    """One source's published sets: chip ids in list order, the files they came from, and the quirks found."""

    test: list[str]
    train: dict[int, list[str]]
    files: dict[str, str]  # set name -> file
    quirks: list[str] = field(default_factory=list)
    nested: bool = True


def _find(folders: Sequence[Path], study_name: str, split: str, size: int) -> Path | None:
    """The first accepted file name in the first folder holding one (a final list before the first-published)."""
    for folder in folders:
        for name in accepted_names(study_name, split, size):
            if (folder / name).is_file():
                return folder / name
    return None


def search_folders(folder: Path, revision: Revision) -> tuple[list[Path], list[Problem]]:
    """Where lists are looked up, in order; `final` without its folder is a problem naming the fix."""
    if revision == "first":
        return [folder], []
    final = folder / FINAL_DIR
    if final.is_dir():
        return [final, folder], []
    problem = Problem(
        str(final),
        "final lists exist (subsets.published_revision: final)",
        f"no {FINAL_DIR}/ folder beside the first-published lists in {folder}",
        f"place the study's final 10-chip lists (commit eaff5bf) in {final}, "
        "or set subsets.published_revision: first to use the lists as first published",
    )
    return [folder], [problem]


def _read_checked(
    path: Path, source: str, known: Collection[str], quirks: list[str], problems: list[Problem]
) -> list[str]:
    ids = read_list(path)
    unique = list(dict.fromkeys(ids))
    if len(unique) < len(ids):
        quirks.append(f"{path.name} repeats {len(ids) - len(unique)} chip(s); each is kept once")
    missing = [c for c in unique if c not in known]
    if missing:
        problems.append(
            Problem(
                str(path),
                "listed chips in the manifest",
                f"source '{source}': {len(missing)} of {len(unique)} chips are not in the manifest: {shorten(missing)}",
                "build the manifest from the study's chips (chips stage) or set subsets.published: null to select",
            )
        )
    return unique


def read_published(
    folder: Path,
    source: str,
    study_name: str,
    train_sizes: Sequence[int],
    test_size: int,
    known: Collection[str],
    revision: Revision = "first",
) -> tuple[Published | None, list[Problem]]:
    """Read a source's test and training lists from `folder`, checking every id against `known` (the manifest).

    `revision` final: a list in `folder/final-10/` replaces the first-published one of the same name; a 10-chip
    training list found only in `folder` is used as published (the study never replaced AgriFieldNet's) and noted.
    """
    folders, problems = search_folders(folder, revision)
    if problems:
        return None, problems
    quirks: list[str] = []
    wanted = [("test", test_size), *(("train", k) for k in train_sizes)]
    paths: dict[tuple[str, int], Path] = {}
    for split, size in wanted:
        path = _find(folders, study_name, split, size)
        if path is None:
            names = " or ".join(accepted_names(study_name, split, size))
            problems.append(
                Problem(
                    str(folder),
                    "published list exists",
                    f"source '{source}': no {set_name(split, size)} list ({names})",
                    "add the list, change subsets.train_sizes/test_size to the published sizes, or unset published",
                )
            )
        else:
            paths[(split, size)] = path
    if problems:
        return None, problems
    if revision == "final" and FINAL_SIZE in train_sizes and paths[("train", FINAL_SIZE)].parent == folder:
        quirks.append(
            f"{FINAL_DIR}/ has no {FINAL_SIZE}-chip list for '{study_name}': the first-published "
            f"{paths[('train', FINAL_SIZE)].name} is used (the study replaced every 10-chip list but AgriFieldNet's)"
        )
    ids = {key: _read_checked(path, source, known, quirks, problems) for key, path in paths.items()}
    for (split, size), chips in ids.items():
        if len(chips) != size:
            quirks.append(f"{paths[(split, size)].name} lists {len(chips)} chips for the {size}-chip {split} set")
    nested = True
    for small, large in pairwise(train_sizes):
        larger = set(ids[("train", large)])
        outside = [c for c in ids[("train", small)] if c not in larger]
        if outside:
            nested = False
            quirks.append(
                f"the {small}-chip training list is not nested in the {large}-chip list: {len(outside)} of its "
                f"{len(ids[('train', small)])} chips lie outside it (as published)"
            )
    published = Published(
        test=ids[("test", test_size)],
        train={k: ids[("train", k)] for k in train_sizes},
        files={set_name(split, size): str(path) for (split, size), path in paths.items()},
        quirks=quirks,
        nested=nested,
    )
    return (None if problems else published), problems
