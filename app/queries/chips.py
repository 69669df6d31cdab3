"""Which chips the gallery shows: filtered by source, subset and class, in a stable order."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

import polars as pl

from app.queries.balance import ALL_CHIPS
from app.queries.overview import subset_label, subset_rank
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


def pages(total: int, per_page: int) -> int:
    """How many gallery pages `total` chips fill (at least one)."""
    return max(1, -(-total // per_page))


def chip_shares(row: dict[str, object], classes: Sequence[str]) -> pl.DataFrame:
    """One chip's pixels and share of each class (the manifest's `px_<class>` counts), ignore included."""
    pixels = [int(value) if isinstance(value := row.get(class_column(c)), int) else 0 for c in classes]
    total = sum(pixels)
    return pl.DataFrame(
        {"class": list(classes), "pixels": pixels, "share": [p / total if total else 0.0 for p in pixels]},
        schema={"class": pl.String, "pixels": pl.Int64, "share": pl.Float64},
    )


def chip_location(row: dict[str, object]) -> pl.DataFrame:
    """Where a chip lies: region, year, centre (lat, lon), CRS and bounds in it, size in pixels."""
    fields = {
        "source": row.get("source"),
        "region": row.get("region"),
        "continent": row.get("continent"),
        "year": row.get("year"),
        "lat, lon": f"{float(str(row.get('lat'))):.5f}, {float(str(row.get('lon'))):.5f}",
        "crs": row.get("crs"),
        "bounds (minx, miny, maxx, maxy)": ", ".join(f"{float(str(row.get(k))):.1f}" for k in BOUNDS),
        "size (px)": f"{row.get('width')} x {row.get('height')}",
    }
    return pl.DataFrame({"field": list(fields), "value": [str(v) for v in fields.values()]})


BOUNDS = ("minx", "miny", "maxx", "maxy")


def chip_subsets(subsets: pl.DataFrame | None, source: str, chip_id: str) -> list[str]:
    """The subsets a chip belongs to (`train 4`, `test 4`, ...), in reading order."""
    if subsets is None or subsets.is_empty():
        return []
    mine = subsets.filter(pl.col("source") == source, pl.col("chip_id") == chip_id)
    labels = mine.select(label=subset_label(pl.col("split"), pl.col("size"))).unique()
    return labels.sort(subset_rank(pl.col("label")))["label"].to_list()


CHIP_IN_DETAIL = re.compile(r"\bchip (\S+?):")


def failure_chip(file: str | None, detail: str | None, chips: set[str]) -> str | None:
    """The chip a validation warning is about: its file's stem or the `chip <id>:` of its detail, if a known chip."""
    candidates = [PurePosixPath(file).stem] if file else []
    if detail and (found := CHIP_IN_DETAIL.search(detail)):
        candidates.append(found.group(1))
    return next((c for c in candidates if c in chips), None)


def with_chips(failures: pl.DataFrame, manifest: pl.DataFrame) -> pl.DataFrame:
    """The failure table with a `chip_id` column: the chip each row names (null: a product file, not a chip)."""
    known = {source: set(ids) for (source,), ids in _ids_by_source(manifest)}
    chips = [
        failure_chip(row["file"], row["detail"], known.get(row["source"], set()))
        for row in failures.select("source", "file", "detail").iter_rows(named=True)
    ]
    return failures.with_columns(pl.Series("chip_id", chips, dtype=pl.String))


def _ids_by_source(manifest: pl.DataFrame) -> list[tuple[tuple[str], list[str]]]:
    grouped = manifest.group_by("source").agg(pl.col("chip_id"))
    return [((str(source),), list(ids)) for source, ids in grouped.iter_rows()]


def chip_warnings(failures: pl.DataFrame | None, manifest: pl.DataFrame, source: str, chip_id: str) -> pl.DataFrame:
    """The validation errors and warnings about one chip."""
    if failures is None or failures.is_empty():
        return pl.DataFrame(schema={"severity": pl.String, "rule": pl.String, "detail": pl.String, "fix": pl.String})
    tagged = with_chips(failures.filter(pl.col("source") == source), manifest)
    return tagged.filter(pl.col("chip_id") == chip_id).select("severity", "rule", "detail", "fix")
