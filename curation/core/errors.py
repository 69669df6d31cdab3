"""Errors that name the file, the rule broken and the fix, so users never read a deep traceback."""

from __future__ import annotations

import difflib
import errno
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn


@dataclass(frozen=True)
class Problem:
    """One broken rule in one file; many of them make one error."""

    file: str
    rule: str
    detail: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}: {self.rule}: {self.detail}. Fix: {self.fix}"


class CropharmonyError(Exception):
    """Base of every error the toolkit raises on bad input."""


class ProblemsError(CropharmonyError):
    """Every problem found in one pass, reported together rather than one per run."""

    def __init__(self, headline: str, problems: Sequence[Problem]) -> None:
        self.headline = headline
        counts = Counter(problems)  # the same problem met by many chips (a product file they share) is listed once
        self.problems = tuple(counts)
        lines = [f"{headline} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"]
        lines += [f"  - {p}" + (f" (met {n} times)" if n > 1 else "") for p, n in counts.items()]
        super().__init__("\n".join(lines))


class ParamsError(ProblemsError):
    """params.yaml does not match the typed configuration."""


class LegendError(ProblemsError):
    """A taxonomy or crosswalk file breaks a schema rule."""


class SourceError(CropharmonyError):
    """A raw root or chip a reader cannot use: it carries the problem (file, rule, detail, fix) it reports."""

    def __init__(self, file: str | object, rule: str, detail: str, fix: str) -> None:
        self.problem = Problem(str(file), rule, detail, fix)
        super().__init__(str(self.problem))


def require_folder(path: Path, rule: str, detail: str, fix: str) -> None:
    """Raise a SourceError (path, rule, detail, fix) unless `path` is a folder."""
    if not path.is_dir():
        raise SourceError(path, rule, detail, fix)


def closest(name: str, names: Sequence[str]) -> str:
    """The fix for a mistyped name: the closest known one, else the list of them."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(names)}"


def shorten(ids: Sequence[str], shown: int = 5) -> str:
    """The first few ids of a long list and how many more, for messages."""
    head = ", ".join(ids[:shown])
    return head if len(ids) <= shown else f"{head} (+{len(ids) - shown} more)"


class UnmappedCodesError(CropharmonyError):
    """Label data holds codes its crosswalk lacks: there is no default class. Carries its problem, like SourceError."""

    def __init__(
        self, crosswalk: str, counts: Mapping[int | str | None, int], unit: str, where: str | None = None
    ) -> None:
        self.crosswalk = crosswalk
        self.counts = dict(counts)
        self.unit = unit
        listed = ", ".join(
            f"{'null' if code is None else code} ({n:,} {unit})" for code, n in sorted(counts.items(), key=_code_order)
        )
        origin = f" in {where}" if where else ""
        self.problem = Problem(
            str(crosswalk),
            "unmapped codes",
            f"{len(counts)} code(s){origin} are missing from the crosswalk: {listed}",
            f"add a row (code,name,target) for each to {crosswalk}; use target 'ignore' for codes to leave out.",
        )
        super().__init__(str(self.problem))


def _code_order(item: tuple[int | str | None, int]) -> tuple[int, int, str]:
    code = item[0]
    if isinstance(code, int):
        return (0, code, "")
    return (1, 0, "" if code is None else code)


_OS_FIXES = {
    errno.ENOSPC: ("disk space", "free space on that disk, or point the output at another one"),
    errno.EDQUOT: ("disk quota", "free space within your quota, or point the output at another disk"),
    errno.EROFS: ("writable folder", "the filesystem is read-only: point the output at a writable folder"),
    errno.EACCES: ("permission", "give yourself access to it (chmod/chown), or use another folder"),
    errno.EPERM: ("permission", "give yourself access to it (chmod/chown), or use another folder"),
}


def os_error(error: OSError) -> SourceError | None:
    """A full disk or a folder the user may not write, as a message naming the file (None for other OS errors).

    Other OS errors are left to surface: they are bugs to report, not input to fix.
    """
    known = _OS_FIXES.get(error.errno or -1)
    if known is None:
        return None
    rule, fix = known
    file = error.filename if error.filename is not None else "(the stage's output)"
    return SourceError(file, rule, error.strerror or str(error), fix)


def report_and_exit(error: CropharmonyError) -> NoReturn:
    """Print a toolkit error as its message alone (no traceback) and exit with status 1."""
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(1)
