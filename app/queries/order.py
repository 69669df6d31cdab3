"""One source order on every page: the order of `shared.sources` in params.yaml, any other source after, by name."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl


def source_order(params_order: Sequence[str], present: Iterable[str]) -> list[str]:
    """The sources present, in params order; sources params do not list (a hand-made manifest) follow by name."""
    found = set(present)
    return [s for s in params_order if s in found] + sorted(found - set(params_order))


def source_rank(column: str, order: Sequence[str]) -> pl.Expr:
    """A sort key putting `column`'s sources in `order` (unknown names last; sort by name after it to break ties)."""
    return pl.col(column).replace_strict({s: i for i, s in enumerate(order)}, default=len(order), return_dtype=pl.Int64)


def by_source(frame: pl.DataFrame, order: Sequence[str], column: str = "source", *then: str) -> pl.DataFrame:
    """`frame` sorted by source in `order` (a stable sort: the order within a source is kept unless `then` is given)."""
    return frame.sort(source_rank(column, order), column, *then, maintain_order=True)
