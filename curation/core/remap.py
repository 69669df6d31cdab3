"""The mapping engine: native label codes to harmonized class ids, with no default class.

Rasters go through one gather per window (a dense lookup table for uint8/uint16 codes, or the inverse of
`np.unique` for anything wider); vectors through a join on the code. Codes that the crosswalk lacks are always
reported, with pixel or feature counts, as an error naming the crosswalk file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from curation.core.errors import UnmappedCodesError
from curation.core.schemas import UNMAPPED_ID
from curation.core.taxonomy import Taxonomy

UNMAPPED = np.uint8(UNMAPPED_ID)
HIERARCHY_STEP = 100  # HCAT codes nest in pairs of digits: 3301010101 -> 3301010100 -> 3301010000 ...


@dataclass(frozen=True, eq=False)
class Crosswalk:
    """One source's validated crosswalk, as sorted arrays ready for lookups."""

    source: str
    path: str
    set_name: str
    match: Literal["exact", "prefix"]
    digits: int | None
    codes: npt.NDArray[np.int64]
    names: tuple[str, ...]
    targets: npt.NDArray[np.uint8]
    taxonomy: Taxonomy
    notes: tuple[str, ...] = field(default=())

    def target_name(self, code: int) -> str:
        """Harmonized class name of one native code (raises on an unmapped code)."""
        resolved = int(self.resolve(np.array([code], dtype=np.int64))[0])
        if resolved == UNMAPPED:
            raise UnmappedCodesError(self.path, {code: 1}, "codes")
        return self.taxonomy.names[self.taxonomy.ids.index(resolved)]

    def resolve(self, codes: npt.NDArray[np.integer]) -> npt.NDArray[np.uint8]:
        """Class ids of distinct native codes; UNMAPPED where no row matches.

        `prefix` crosswalks walk up the code hierarchy (longest prefix first), so a sub-type the table does not
        list follows its parent. The loop runs over hierarchy levels, never over classes or pixels.
        """
        wanted = np.asarray(codes, dtype=np.int64)
        out = self._exact(wanted)
        if self.match == "prefix" and self.digits is not None:
            hierarchical = wanted >= 10 ** (self.digits - 1)
            step = HIERARCHY_STEP
            while step < 10**self.digits:
                todo = (out == UNMAPPED) & hierarchical
                if not todo.any():
                    break
                out[todo] = self._exact(wanted[todo] - wanted[todo] % step)
                step *= HIERARCHY_STEP
        return out

    def _exact(self, codes: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        idx = np.searchsorted(self.codes, codes)
        idx_clipped = np.minimum(idx, len(self.codes) - 1)
        found = (idx < len(self.codes)) & (self.codes[idx_clipped] == codes)
        return np.where(found, self.targets[idx_clipped], UNMAPPED).astype(np.uint8)

    def dense_lut(self, size: int) -> npt.NDArray[np.uint8]:
        """A `size`-entry table (256 for uint8 labels, 65536 for uint16) for a single-gather remap."""
        return self.resolve(np.arange(size, dtype=np.int64))

    @cached_property
    def lut8(self) -> npt.NDArray[np.uint8]:
        """The 256-entry table for uint8 labels, built once per crosswalk."""
        return self.dense_lut(1 << 8)

    @cached_property
    def lut16(self) -> npt.NDArray[np.uint8]:
        """The 65536-entry table for uint16 labels, built once per crosswalk."""
        return self.dense_lut(1 << 16)


def _lut_for(crosswalk: Crosswalk, dtype: np.dtype[np.generic]) -> npt.NDArray[np.uint8] | None:
    if dtype == np.dtype(np.uint8):
        return crosswalk.lut8
    if dtype == np.dtype(np.uint16):
        return crosswalk.lut16
    return None


def distinct_codes(
    codes: npt.NDArray[np.integer],
) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """`np.unique(codes, return_inverse=True, return_counts=True)` (inverse flat), by counting for 8/16-bit codes.

    The same three arrays; for uint8/uint16 rasters one `bincount` and one lookup replace the sort, which costs about
    1 ms on a 256 px chip, twice per chip (the label-window cache and the histograms).
    """
    flat = codes.ravel()
    if codes.dtype in (np.uint8, np.uint16):
        counts = np.bincount(flat, minlength=1)
        values = np.flatnonzero(counts)
        rank = np.zeros(len(counts), dtype=np.intp)
        rank[values] = np.arange(len(values), dtype=np.intp)
        return values.astype(codes.dtype), rank[flat], counts[values].astype(np.intp)
    values, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    return values, inverse.astype(np.intp, copy=False), counts.astype(np.intp, copy=False)


def remap_codes(labels: npt.NDArray[np.integer], crosswalk: Crosswalk) -> npt.NDArray[np.uint8]:
    """Remap without raising: unmapped pixels come back as UNMAPPED (for reports that list them)."""
    lut = _lut_for(crosswalk, labels.dtype)
    if lut is not None:
        gathered: npt.NDArray[np.uint8] = lut[labels]
        return gathered
    uniques, inverse = np.unique(labels, return_inverse=True)
    return crosswalk.resolve(uniques)[inverse].reshape(labels.shape)


def unmapped_counts(labels: npt.NDArray[np.integer], remapped: npt.NDArray[np.uint8]) -> dict[int, int]:
    """Native codes left UNMAPPED by a remap, with their pixel counts."""
    missing = remapped == UNMAPPED
    if not missing.any():
        return {}
    codes, counts = np.unique(labels[missing], return_counts=True)
    return {int(c): int(n) for c, n in zip(codes, counts, strict=True)}


def remap_raster(
    labels: npt.NDArray[np.integer], crosswalk: Crosswalk, where: str | None = None
) -> npt.NDArray[np.uint8]:
    """Harmonized class ids of a label window; raises naming the crosswalk if any code is unmapped."""
    remapped = remap_codes(labels, crosswalk)
    missing = unmapped_counts(labels, remapped)
    if missing:
        counts: dict[int | str | None, int] = dict(missing.items())
        raise UnmappedCodesError(crosswalk.path, counts, "pixels", where)
    return remapped


def class_counts(harmonized: npt.NDArray[np.uint8], taxonomy: Taxonomy) -> dict[str, int]:
    """Pixel count per harmonized class name (ignore included)."""
    counts = np.bincount(harmonized.ravel(), minlength=taxonomy.size).astype(np.int64)
    return taxonomy.counts_by_name(counts)


def remap_vector(frame: pl.DataFrame, code_column: str, crosswalk: Crosswalk, where: str | None = None) -> pl.DataFrame:
    """Add `target_id` and `target` to a feature table through a join on the native code.

    Null or non-integer codes are unmapped like any other: readers decide explicitly what a missing code means.
    """
    if code_column not in frame.columns:
        raise UnmappedCodesError(crosswalk.path, {f"column '{code_column}' absent": frame.height}, "features", where)
    codes = frame.get_column(code_column)
    as_int = codes.cast(pl.Int64, strict=False) if codes.dtype != pl.Int64 else codes
    uniques = as_int.drop_nulls().unique().sort().to_numpy()
    table = pl.DataFrame(
        {
            "__code": pl.Series(uniques, dtype=pl.Int64),
            "target_id": pl.Series(crosswalk.resolve(uniques), dtype=pl.UInt8),
        }
    )
    joined = frame.with_columns(as_int.alias("__code")).join(table, on="__code", how="left", maintain_order="left")
    bad = joined.filter(pl.col("target_id").is_null() | (pl.col("target_id") == int(UNMAPPED)))
    if bad.height:
        original = bad.get_column(code_column)
        counts = original.value_counts(sort=True)
        missing: dict[int | str | None, int] = {}
        for value, count in counts.iter_rows():
            missing[value if value is None or isinstance(value, int | str) else str(value)] = int(count)
        raise UnmappedCodesError(crosswalk.path, missing, "features", where)
    lookup = pl.DataFrame(
        {"target_id": pl.Series(crosswalk.taxonomy.ids, dtype=pl.UInt8), "target": pl.Series(crosswalk.taxonomy.names)}
    )
    return joined.drop("__code").join(lookup, on="target_id", how="left", maintain_order="left")
