"""The derived-data cache: spatial indexes of parcel layers and label windows, shared by stages and workers.

Everything here is derived from input files and keyed by their content (sha256), never by path or time, so a stale
entry cannot be read: a changed input gets a new key. That is why the cache is not a DVC output and needs no DVC
dependency of its own: the stages still depend on the inputs, and the cache only saves them work. Deleting the
folder is always safe (the next run rebuilds what it needs).

Where: `$CROPHARMONY_CACHE`, else `$XDG_CACHE_HOME/cropharmony`, else `~/.cache/cropharmony`. On a cluster it must be
a folder every worker sees (a shared filesystem), like the outputs.

File digests are memoized per (path, size, mtime, inode), as DVC's own state does, so a national layer of gigabytes is
hashed once, not on every run. An entry is written to a unique temporary name and renamed into place; builders of
one key take a lock, so concurrent workers build it once and the others wait and read it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from curation.core.errors import SourceError
from curation.core.outputs import remove_stale, temp_prefix

ENV = "CROPHARMONY_CACHE"


def cache_root() -> Path:
    """The cache folder (created on first use)."""
    explicit = os.environ.get(ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cropharmony"


def cache_dir(kind: str) -> Path:
    """A kind's folder in the cache, created; an unwritable cache is a named error, not a traceback."""
    folder = cache_root() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(
            folder,
            "writable cache",
            f"the cache folder cannot be created ({exc.strerror or exc})",
            f"set {ENV} to a writable folder (on a cluster, one every worker sees)",
        ) from exc
    return folder


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, memoized by its (real path, size, mtime, inode)."""
    real = path.resolve()
    stat = real.stat()
    stamp = [str(real), stat.st_size, stat.st_mtime_ns, stat.st_ino]
    memo = cache_dir("digests") / (hashlib.sha256(str(real).encode()).hexdigest() + ".json")
    try:
        known = json.loads(memo.read_text(encoding="utf-8"))
        if known.get("stamp") == stamp:
            return str(known["sha256"])
    except (OSError, ValueError):
        pass  # no memo yet, or a torn one: hash again
    value = _hash_file(real)
    write_atomic(memo, json.dumps({"stamp": stamp, "sha256": value}).encode())
    return value


def key_of(*parts: object) -> str:
    """A cache key: sha256 of the parts' JSON (digests, names, versions)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write a cache file under a unique temporary name, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)  # what a killed writer of this entry left
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def temporary_folder_beside(path: Path) -> Iterator[Path]:
    """A unique temporary folder beside `path`, removed afterwards (for writers that want a file name, as GDAL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)
    folder = Path(tempfile.mkdtemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock for building `path`: a second builder waits, then finds the entry built."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
