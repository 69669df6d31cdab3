"""Atomic writes: an interrupted stage never leaves a half-written artifact behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl


def default_mode() -> int:
    """The mode a plain `open()` would give a new file (mkstemp's 0600 would hide outputs from other users)."""
    return _dir_mode() & 0o666


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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


def place_file(source: Path, target: Path, mode: str) -> None:
    """Put a copy of `source` at `target`, or a hard link when `mode` is "hardlink" (a copy across filesystems)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    if mode == "hardlink":
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another filesystem: fall back to a copy
    shutil.copyfile(source, target)


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
    fails the previous output is put back. Every stage writes its folder outputs through this one helper.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    old = tmp.with_suffix(".old")
    try:
        tmp.chmod(_dir_mode())  # mkdtemp's 0700 would hide the output from other users
        yield tmp
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
