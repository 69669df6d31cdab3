"""Stage output folders that are safe to replace: owned, locked, and cleaned of what a killed run left behind.

A stage may only replace a folder it wrote. Every output folder carries a marker (`OWNER_MARKER`) listing the
stage that wrote it and every file it wrote, so replacing a folder that holds anything else (a user's files, the
project itself, another stage's output) is refused with the files named. One run at a time writes an output: a lock
file beside it (`flock`, released by the kernel when a process dies, even by SIGKILL) makes a second run refuse
with the first one's pid. Temporary names carry the host and pid of their writer, so the next run removes what a
killed one left (a live writer's temporaries are never touched).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from curation.core.errors import SourceError, shorten

OWNER_MARKER = ".cropharmony-stage"  # inside every stage output folder: {"stage": ..., "files": [...]}
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"


def temp_prefix(name: str) -> str:
    """The prefix of a temporary sibling of `name`: `.{name}.{host}-{pid}.`, so a later run can tell it is stale."""
    return f".{name}.{_HOST}-{os.getpid()}."


def _alive(pid: int) -> bool:
    """Whether a process runs: a zombie (killed, not yet reaped, as under a container's PID 1) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return True  # no /proc (macOS): a signal reached it
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


_STALE_PID = re.compile(r"(\d+)\.")  # the writer's pid after the prefix, then the mkstemp part and the suffix


def remove_stale(parent: Path, name: str) -> list[Path]:
    """Remove temporaries of `name` in `parent` whose writer on this host is dead; the paths removed."""
    if not parent.is_dir():
        return []
    prefix = f".{name}.{_HOST}-"  # a prefix test first: a regex compiled per call costs more than the scan
    removed = []
    with os.scandir(parent) as entries:
        names = [(entry.name, entry.path) for entry in entries]
    for entry_name, entry_path in names:
        if not entry_name.startswith(prefix) or not entry_name.endswith((".tmp", ".old")):
            continue
        match = _STALE_PID.match(entry_name, len(prefix))
        if match is None or _alive(int(match.group(1))):
            continue
        path = Path(entry_path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return sorted(removed)


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the one writer's lock of `out`; a second writer refuses at once, naming the first one's pid."""
    path = _lock_path(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            holder = _read_holder(path)
            raise SourceError(
                out,
                "one writer at a time",
                f"another run{holder} is writing this output now (lock {path.name})",
                "wait for it to finish, or write elsewhere (another out / --out)",
            ) from exc
        try:  # the file may have been removed by the previous holder between open and flock: lock the new one
            same = os.fstat(fd).st_ino == path.stat().st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{_HOST} {os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def _read_holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").split()
    except OSError:
        return ""
    return f" (pid {text[1]} on {text[0]})" if len(text) == 2 else ""


def owned_files(folder: Path) -> tuple[str | None, set[str]] | None:
    """(stage, files) of the marker in `folder`, or None when the folder has no marker."""
    marker = folder / OWNER_MARKER
    if not marker.is_file():
        return None
    try:
        body = json.loads(marker.read_text(encoding="utf-8"))
        return body.get("stage"), set(body.get("files", []))
    except (OSError, ValueError, AttributeError):
        return None


def files_under(folder: Path) -> list[str]:
    """Every file (and link) below `folder`, as sorted POSIX paths relative to it."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        base = Path(dirpath)
        names = filenames + [d for d in dirnames if (base / d).is_symlink()]
        found += [(base / n).relative_to(folder).as_posix() for n in names]
    return sorted(found)


def foreign_files(folder: Path) -> list[str] | None:
    """Files in `folder` that its marker does not list (None: no marker, so nothing is known about it)."""
    owned = owned_files(folder)
    if owned is None:
        return None
    return [f for f in files_under(folder) if f not in owned[1] and f != OWNER_MARKER]


def write_owner_marker(folder: Path, stage: str | None) -> None:
    """List every file in `folder` as written by `stage` (deterministic bytes: same files, same marker)."""
    files = [f for f in files_under(folder) if f != OWNER_MARKER]
    body = json.dumps({"stage": stage, "files": files}, indent=1, sort_keys=True) + "\n"
    (folder / OWNER_MARKER).write_text(body, encoding="utf-8")


def check_replaceable(out: Path, stage: str | None) -> None:
    """Refuse to replace `out` unless it is absent, an empty folder, or a folder this stage wrote and nothing else."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise SourceError(
            out,
            "output is a folder",
            "a file (or link) of that name is in the way",
            "move it away, or choose another output folder",
        )
    if not any(out.iterdir()):
        return
    owned = owned_files(out)
    if owned is None:
        present = files_under(out)
        raise SourceError(
            out,
            "replace only an output it wrote",
            f"the folder was not written by a cropharmony stage and holds {len(present)} file(s): {shorten(present)}",
            "move those files away, or choose another output folder (an empty or new one)",
        )
    writer, listed = owned
    if stage is not None and writer is not None and writer != stage:
        raise SourceError(
            out,
            "replace only an output it wrote",
            f"it is the output of stage '{writer}', not of '{stage}'",
            "give the stages different output paths in params.yaml",
        )
    extra = [f for f in files_under(out) if f not in listed and f != OWNER_MARKER]
    if extra:
        raise SourceError(
            out,
            "replace only an output it wrote",
            f"{len(extra)} file(s) in it were not written by the stage: {shorten(extra)}",
            "move them to a folder no stage owns (they would be deleted), then run again",
        )
