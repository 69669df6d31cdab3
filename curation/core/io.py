"""Atomic writes: an interrupted stage never leaves a half-written artifact behind."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from curation.core.outputs import check_replaceable, output_lock, remove_stale, temp_prefix, write_owner_marker
from curation.core.params import active_stage_name


def default_mode() -> int:
    """The mode a plain `open()` would give a new file (mkstemp's 0600 would hide outputs from other users)."""
    return _dir_mode() & 0o666


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, path.name)  # what a killed writer of this file left behind
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    try:
        Path(tmp).chmod(default_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_parquet(path: Path, table: pl.DataFrame) -> None:
    """Write a table as zstd Parquet without statistics, so equal tables give equal bytes."""
    handle = io.BytesIO()
    table.write_parquet(handle, compression="zstd", statistics=False)
    atomic_write_bytes(path, handle.getvalue())


def atomic_write_json(path: Path, payload: Any) -> None:  # noqa: ANN401 - any JSON-serialisable value
    """Write JSON with sorted keys and a trailing newline, so equal inputs give equal bytes."""
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks (weight files, release checksums)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def place_file(source: Path, target: Path, mode: str) -> str:
    """Put `source`'s bytes at `target` as `mode` says; returns how they got there: reflink, hardlink or copy.

    `copy`: an independent copy. `hardlink`: the same file (one inode), or a copy where a hard link cannot be made
    (another filesystem, links not allowed). `reflink`: a copy-on-write clone (the FICLONE ioctl: btrfs, XFS,
    bcachefs; its own inode, the data extents shared until one side is written), or a copy. `auto`: a reflink, else a
    hard link, else a copy. A link mode that ends in a copy stores the data twice: that warns once per process (a
    warning with the same text is shown once), and the returned mode tells the caller, for its report. `target` is
    removed first, never written through: a hard link at `target` must not change its other names.
    """
    if mode not in ("copy", "hardlink", "reflink", "auto"):
        raise ValueError(f"place_file: mode must be copy, hardlink, reflink or auto, not {mode!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    if mode in ("reflink", "auto"):
        try:
            with source.open("rb") as src, target.open("wb") as dst:
                fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())  # FICLONE = _IOW(0x94, 9, int)
            return "reflink"
        except OSError as exc:
            target.unlink(missing_ok=True)
            if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOSPC):
                raise  # not a missing feature: the same error a copy would meet
    if mode in ("hardlink", "auto"):
        try:
            os.link(source, target)
            return "hardlink"
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.EEXIST, errno.ENOSPC):
                raise
    shutil.copyfile(source, target)
    if mode != "copy":
        warnings.warn(
            f"{mode} not possible (the input and the output are on different filesystems, or the filesystem does "
            "not support it): files are copied, so their data are stored twice; put the inputs, the project and its "
            "DVC cache on one filesystem to link them",
            RuntimeWarning,
            stacklevel=2,
        )
    return "copy"


DEMO_MARKER = "DEMO_WORLD.json"  # stage `demo` writes it at the raw root: the data are synthetic


def demo_marker(raw_root: Path) -> dict[str, Any] | None:
    """The demo world's marker (seed, sizes) when `raw_root` is the synthetic demo, else None."""
    path = raw_root / DEMO_MARKER
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _dir_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


@contextmanager
def stage_output(out: Path) -> Iterator[Path]:
    """A fresh temporary folder beside `out`, swapped in for `out` when the block succeeds.

    On an error inside the block the temporary folder is removed and `out` is left as it was; when the swap itself
    fails the previous output is put back. Only one run at a time writes `out` (a second one refuses), `out` is only
    replaced when the stage wrote it (`curation.core.outputs`), and temporaries a killed run left are removed first.
    Every stage writes its folder outputs through this one helper.
    """
    stage = active_stage_name()
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        remove_stale(out.parent, out.name)
        check_replaceable(out, stage)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=temp_prefix(out.name), suffix=".tmp"))
        old = tmp.with_suffix(".old")
        try:
            tmp.chmod(_dir_mode())  # mkdtemp's 0700 would hide the output from other users
            yield tmp
            write_owner_marker(tmp, stage)
            if out.exists():
                out.rename(old)
            try:
                tmp.rename(out)
            except OSError:
                if old.exists():
                    old.rename(out)  # put the previous output back
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
