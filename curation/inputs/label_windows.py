"""Label windows read once: validate reads each chip's native codes, and chips reuses them from the cache.

A window is keyed by the reader's content key (every input byte and the readers' code, `LabelSource.content_key`)
and the chip's grid, so a hit is always what a read would give; the stages keep their DVC dependencies on the inputs
and the code, and the cache only saves the second read. Stored as the distinct codes plus a small index per pixel,
compressed: a 256 px window of 10-digit HCAT codes takes a few kB instead of 512 kB.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import numpy.typing as npt

from curation.core.cache import cache_dir, key_of, write_atomic
from curation.core.remap import distinct_codes
from curation.sources.base import ChipGrid, LabelSource

FORMAT = 1


def window_key(content_key: str, grid: ChipGrid) -> str:
    """The cache key of a label window: the reader's inputs and the grid (the chip id is only a name)."""
    return key_of(FORMAT, content_key, grid.crs.to_wkt(), list(grid.transform)[:6], grid.width, grid.height)


def read_window(product: LabelSource, grid: ChipGrid) -> npt.NDArray[np.integer]:
    """Native codes on `grid`: from the cache when an earlier read left them, else read (and cached)."""
    content = product.content_key()
    if content is None:
        return product.read_labels(grid)
    key = window_key(content, grid)
    path = cache_dir("labels") / key[:2] / f"{key}.npz"
    cached = _load(path.read_bytes() if path.is_file() else None, grid)
    if cached is not None:
        return cached
    codes = product.read_labels(grid)
    write_atomic(path, _pack(codes))
    return codes


def _pack(codes: npt.NDArray[np.integer]) -> bytes:
    values, index, _ = distinct_codes(codes)
    dtype = np.uint8 if len(values) <= 1 << 8 else np.uint16 if len(values) <= 1 << 16 else np.uint32
    handle = io.BytesIO()
    np.savez_compressed(handle, values=values, index=index.reshape(codes.shape).astype(dtype))
    return handle.getvalue()


def _load(data: bytes | None, grid: ChipGrid) -> npt.NDArray[np.integer] | None:
    """The window stored in `data`, None when there is none or it is torn or of another shape (read again)."""
    if data is None:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as stored:
            values, index = stored["values"], stored["index"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    if index.shape != grid.shape:
        return None
    codes: npt.NDArray[np.integer] = values[index]
    return codes
