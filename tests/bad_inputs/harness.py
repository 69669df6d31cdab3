"""The bad-input matrix: each case breaks a copy of the tiny project one way and runs one command on it.

Every case must end with a non-zero exit (or, for a warning case, exit 0 and the named warning in the report), one
message naming the file, the rule and the fix, no traceback, no temporary folder or lock left, every file outside
the command's own outputs untouched, and (where asked) `dvc status` still reporting the stage as changed.

Cases change files with `write_bytes`/`write_text`/`detach`: the copy hard-links the large checkpoints of the
shared project, so a file must be detached before it is changed in place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tests.tiny_project import TinyProject

LINKED = (".pt",)  # large, read-only in every case: hard-linked instead of copied
CACHE = f"{os.sep}.dvc{os.sep}cache{os.sep}"  # DVC's cache files: read-only, linked too (scratch's whole ResNet-50s)
SKIPPED = (".git", "__pycache__", ".dvc/tmp")
LEFTOVER = (".tmp", ".old", ".lock")


@dataclass(frozen=True)
class Case:
    """One bad input: how to break the project, the command to run, and what its message must name."""

    id: str
    command: tuple[str, ...]  # a module and its arguments: ("curation.validate",) or ("curation.cli", "publish", ...)
    breaks: Callable[[Path], None]  # changes the project copy (its root) before the command runs
    rule: str  # text the message must hold: the rule broken
    file: str  # text the message must hold: the file (a path relative to the root is enough)
    warning: bool = False  # True: exit 0, the warning in reports/validation/failures.parquet (or `report`)
    report: str = "reports/validation/failures.parquet"  # where a warning case finds its row
    writes: tuple[str, ...] = ()  # outputs the command may change (validate writes its reports, then fails)
    dvc_stage: str | None = None  # a stage `dvc status` must still list as changed afterwards
    extra: tuple[str, ...] = field(default=())  # more texts the message must hold
    fix: str = "Fix:"  # how the message gives its fix (the app names the command to run)
    env: tuple[tuple[str, str], ...] = ()  # environment the command runs with; `{root}` in a value: the copy's root


def copy_project(tiny: TinyProject, target: Path) -> Path:
    """A private copy of the tiny project (checkpoints and DVC cache hard-linked), with its own empty git repository."""

    def copy(src: str, dst: str) -> object:
        if src.endswith(LINKED) or CACHE in src:  # the DVC cache holds the checkpoints again (read-only files)
            os.link(src, dst)
            return dst
        return shutil.copy2(src, dst)

    shutil.copytree(
        tiny.root,
        target,
        copy_function=copy,
        ignore=shutil.ignore_patterns(".git", "__pycache__", "tmp"),
        symlinks=True,
    )
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    return target


def detach(path: Path) -> Path:
    """Give `path` an inode of its own, so changing it in place leaves the shared project alone."""
    if path.is_file() and path.stat().st_nlink > 1:
        data = path.read_bytes()
        path.unlink()
        path.write_bytes(data)
    return path


def write_bytes(path: Path, data: bytes) -> None:
    """Replace a file's content (a new inode: linked files elsewhere keep theirs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """Replace a file's text (a new inode)."""
    write_bytes(path, text.encode("utf-8"))


def snapshot(root: Path) -> dict[str, str]:
    """Every file and link under the project with a fingerprint (content hash; size and inode for linked files)."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel = base.relative_to(root).as_posix()
        dirnames[:] = [d for d in dirnames if not _skipped(f"{rel}/{d}" if rel != "." else d)]
        for name in filenames + [d for d in dirnames if (base / d).is_symlink()]:
            path = base / name
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[key] = "link:" + str(path.readlink())
            elif name.endswith(LINKED):
                stat = path.stat()
                found[key] = f"{stat.st_size}:{stat.st_ino}:{stat.st_mtime_ns}"
            else:
                found[key] = hashlib.sha1(path.read_bytes()).hexdigest()
    return found


def _skipped(rel: str) -> bool:
    return any(rel == s or rel.startswith(s + "/") or rel.endswith("/" + s) for s in SKIPPED)


def leftovers(root: Path) -> list[str]:
    """Temporary folders, files and locks left anywhere in the project."""
    return sorted(
        k for k in snapshot(root) | _folders(root) if Path(k).name.startswith(".") and Path(k).name.endswith(LEFTOVER)
    )


def _folders(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): "dir"
        for p in root.rglob("*")
        if p.is_dir() and not _skipped(p.relative_to(root).as_posix())
    }


def run_command(
    root: Path, command: tuple[str, ...], timeout: float = 600, extra_env: tuple[tuple[str, str], ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`python -m <command>` in the project copy, as a user runs it."""
    env = {**os.environ, "PYTHONHASHSEED": "0", **{k: v.format(root=root) for k, v in extra_env}}
    return subprocess.run(
        [sys.executable, "-m", *command],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def dvc_status(root: Path) -> str:
    """`dvc status` of the project copy."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "status"], cwd=root, capture_output=True, text=True, check=False
    )
    return done.stdout + done.stderr


MESSAGES_ENV = "CROPHARMONY_MESSAGES"  # a file: every case's message is appended to it (docs/troubleshooting.md)


def _record(case: Case, root: Path, done: subprocess.CompletedProcess[str]) -> None:
    target = os.environ.get(MESSAGES_ENV)
    if not target:
        return
    said = done.stderr if not case.warning else _warning_rows(case, root)
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write(f"## {case.id}\n{said.replace(str(root) + '/', '').strip()}\n\n")


def _warning_rows(case: Case, root: Path) -> str:
    try:
        rows = pl.read_parquet(root / case.report).filter(pl.col("rule").str.contains(case.rule, literal=True))
    except OSError:
        return ""
    return "\n".join(
        f"warning: {r['file']}: {r['rule']}: {r['detail']}. Fix: {r['fix']}" for r in rows.head(3).iter_rows(named=True)
    )


def check_case(case: Case, root: Path) -> None:
    """Break the project, run the command, and hold the outcome to every rule of the matrix."""
    case.breaks(root)
    before = snapshot(root)
    done = run_command(root, case.command, extra_env=case.env)
    said = done.stdout + done.stderr
    _record(case, root, done)
    assert "Traceback" not in said, said
    if case.warning:
        assert done.returncode == 0, said
        rows = pl.read_parquet(root / case.report)
        hits = rows.filter(
            pl.col("rule").str.contains(case.rule, literal=True) & pl.col("file").str.contains(case.file, literal=True)
        )
        assert hits.height >= 1, f"no warning '{case.rule}' for '{case.file}' in {case.report}:\n{rows}"
        assert all(hits["fix"].str.len_chars() > 0)
    else:
        assert done.returncode != 0, said
        message = done.stderr
        assert message.count("error: ") == 1, message
        listed = [line for line in message.splitlines() if line.startswith("  - ")]
        assert len(listed) == len(set(listed)), f"a problem is listed twice:\n{message}"
        for text in (case.rule, case.file, case.fix, *case.extra):
            assert text in message, f"'{text}' is not in the message:\n{message}"
        if case.writes:  # the reports it wrote hold the error too
            rows = pl.read_parquet(root / case.report).filter(pl.col("severity") == "error")
            assert rows.filter(pl.col("rule").str.contains(case.rule, literal=True)).height >= 1, rows
    after = snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    touched = [k for k in changed if not any(k == w or k.startswith(w.rstrip("/") + "/") for w in case.writes)]
    assert touched == [], f"files changed by a failing or warning run: {touched}"
    assert leftovers(root) == [], leftovers(root)
    if case.dvc_stage is not None:
        status = dvc_status(root)
        assert f"{case.dvc_stage}:" in status, status
