"""Which chips the gallery shows: filtered by source, subset and class, in a stable order."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from app.queries.balance import ALL_CHIPS
from curation.core.schemas import class_column


def filter_chips(
    rows: pl.DataFrame,
    classes: Sequence[str],
    *,
    source: str | None = None,
    subset: str = ALL_CHIPS,
    contains: str | None = None,
    min_share: float = 0.0,
) -> pl.DataFrame:
    """Chips of the scoped manifest (balance.scoped) matching every filter, with each class's share of the chip.

    `contains` keeps chips where that class covers at least `min_share` of the pixels, the largest share first.
    """
    area = pl.sum_horizontal(class_column(c) for c in classes)
    chosen = rows.filter(pl.col("subset") == subset)
    if source is not None:
        chosen = chosen.filter(pl.col("source") == source)
    chosen = chosen.with_columns(*[(pl.col(class_column(c)) / area).alias(f"share_{c}") for c in classes])
    if contains is not None:
        return chosen.filter(pl.col(f"share_{contains}") >= max(min_share, 1e-12)).sort(
            [f"share_{contains}", "source", "chip_id"], descending=[True, False, False]
        )
    return chosen.sort("source", "chip_id")


def caption(row: dict[str, object], classes: Sequence[str]) -> str:
    """A chip's caption: id, dominant class and the shares of the classes present."""
    shares = ", ".join(
        f"{c} {float(share):.0%}" for c in classes if isinstance(share := row.get(f"share_{c}"), float) and share > 0
    )
    return f"{row['chip_id']} · {row['dominant']} · {shares}"
