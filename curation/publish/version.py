"""Semantic versions of releases: what changed since the last published one, and which bump that requires.

A release's fingerprints (release.json) are compared with those of the latest published version (its git tag):
- major: the crosswalks changed, a chip's content changed, a released chip is gone, or a chip's subset memberships
  changed (a re-split): anything that makes results on the old version incomparable;
- minor: chips (or whole subsets) were added and nothing old changed;
- patch: the data are identical and only metadata (card, description, changelog) changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from curation.core.io import sha256_file

Bump = Literal["major", "minor", "patch"]
LEVELS: dict[Bump, int] = {"patch": 0, "minor": 1, "major": 2}


def parse(version: str) -> tuple[int, int, int]:
    """`1.2.3` -> (1, 2, 3) (params already checked the pattern)."""
    major, minor, patch = (int(part) for part in version.split("."))
    return major, minor, patch


def bump_of(previous: str, current: str) -> Bump | None:
    """The level `current` raises over `previous` (None when it does not go up at all)."""
    old, new = parse(previous), parse(current)
    if new <= old:
        return None
    if new[0] > old[0]:
        return "major"
    return "minor" if new[1] > old[1] else "patch"


def next_version(previous: str, bump: Bump) -> str:
    """The smallest version after `previous` at that level."""
    major, minor, patch = parse(previous)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def sha256_files(paths: Iterable[Path], root: Path) -> str:
    """One digest over several files: their paths relative to `root` and their contents, in path order."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class Change:
    """What differs between two releases' fingerprints, and the bump that requires."""

    bump: Bump
    reasons: tuple[str, ...]


def required_bump(previous: Mapping[str, Any], current: Mapping[str, Any]) -> Change:
    """Compare two `fingerprints` mappings (release.json) and name every reason for the bump."""
    reasons: list[str] = []
    if previous["crosswalks"] != current["crosswalks"]:
        reasons.append("the crosswalks changed")
    old_chips, new_chips = previous["chips"], current["chips"]
    gone = sorted(set(old_chips) - set(new_chips))
    changed = sorted(c for c in set(old_chips) & set(new_chips) if old_chips[c] != new_chips[c])
    if gone:
        reasons.append(f"{len(gone)} released chip(s) are gone (first: {gone[0]})")
    if changed:
        reasons.append(f"{len(changed)} chip(s) changed content (first: {changed[0]})")
    old_sets, new_sets = previous["subsets"], current["subsets"]
    moved = sorted(c for c in old_sets if not set(old_sets[c]) <= set(new_sets.get(c, [])))
    if moved:
        reasons.append(f"{len(moved)} chip(s) left a subset they were in: a re-split (first: {moved[0]})")
    if reasons:
        return Change("major", tuple(reasons))
    added = sorted(set(new_chips) - set(old_chips))
    joined = sorted(c for c in new_sets if set(new_sets[c]) != set(old_sets.get(c, [])))
    if added or joined:
        return Change("minor", (f"{len(added)} chip(s) added, {len(joined)} chip(s) in new subsets",))
    return Change("patch", ("the data are identical: metadata only",))
