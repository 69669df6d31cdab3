"""Class balance per source and per subset: pixel and chip shares, imbalance, missing classes, native codes.

A chip *contains* a class when the class covers at least `min_share` of its pixels (`subsets.min_class_share`, the
rule the subsets stage stratifies by), so "missing" here means what the subsets report means by it.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from app.queries.overview import subset_label, subset_rank
from curation.core.schemas import class_column

ALL_CHIPS = "all chips"
IGNORE = "ignore"


def scoped(manifest: pl.DataFrame, subsets: pl.DataFrame | None) -> pl.DataFrame:
    """Manifest rows tagged with a `subset` column: every chip once as `all chips`, and once per subset it is in."""
    rows = [manifest.with_columns(subset=pl.lit(ALL_CHIPS))]
    if subsets is not None and not subsets.is_empty():
        tagged = subsets.select("source", "chip_id", subset=subset_label(pl.col("split"), pl.col("size")))
        rows.append(manifest.join(tagged, on=["source", "chip_id"], how="inner"))
    return pl.concat(rows)


def class_balance(
    rows: pl.DataFrame, classes: Sequence[str], min_share: float, *, include_ignore: bool = True
) -> pl.DataFrame:
    """Per source, subset and class: pixels, pixel share, chips containing it, and the share of chips it dominates.

    Pixel shares are over the classes shown (with or without `ignore`), so each group's bars add up to 1; the
    dominant-class shares add up to 1 too (a chip has one dominant class), unlike "chips containing", which is a
    table column.
    """
    shown = [c for c in classes if include_ignore or c != IGNORE]
    area = pl.sum_horizontal(class_column(c) for c in classes)
    long = rows.select(
        "source",
        "subset",
        "dominant",
        *[pl.col(class_column(c)).alias(c) for c in shown],
        *[(pl.col(class_column(c)) / area >= min_share).alias(f"has_{c}") for c in shown],
    )
    per_group = long.group_by("source", "subset").agg(
        pl.len().alias("group_chips"),
        *[pl.col(c).sum().alias(f"pixels_{c}") for c in shown],
        *[pl.col(f"has_{c}").sum().alias(f"chips_{c}") for c in shown],
        *[(pl.col("dominant") == c).sum().alias(f"dominant_{c}") for c in shown],
    )
    out = pl.concat(
        [
            per_group.select(
                "source",
                "subset",
                pl.lit(c).alias("class"),
                pl.col(f"pixels_{c}").cast(pl.Int64).alias("pixels"),
                pl.col(f"chips_{c}").cast(pl.Int64).alias("chips"),
                pl.col(f"dominant_{c}").cast(pl.Int64).alias("dominant"),
                pl.col("group_chips").cast(pl.Int64),
            )
            for c in shown
        ]
    )
    group = ["source", "subset"]
    return (
        out.with_columns(
            pixel_share=pl.col("pixels") / pl.col("pixels").sum().over(group),
            chip_share=pl.col("chips") / pl.col("group_chips"),
            dominant_share=pl.col("dominant") / pl.col("group_chips"),
        )
        .with_columns(pl.col("pixel_share").fill_nan(0.0))
        .sort("source", subset_rank(pl.col("subset")), pl.col("class").replace_strict(shown, list(range(len(shown)))))
    )


def imbalance(balance: pl.DataFrame) -> pl.DataFrame:
    """Per source and subset: most over least frequent labelled class (by pixels) and the classes it misses.

    `ignore` never counts. A class is missing when no chip of the group contains it; the ratio is over the classes
    present (null when fewer than one class has pixels).
    """
    labelled = balance.filter(pl.col("class") != IGNORE)
    present = pl.col("pixels") > 0
    return (
        labelled.group_by("source", "subset")
        .agg(
            pl.col("group_chips").first().alias("chips"),
            (pl.col("pixels").filter(present).max() / pl.col("pixels").filter(present).min()).alias("imbalance_ratio"),
            pl.col("class").filter(present).sort_by(pl.col("pixels").filter(present)).last().alias("commonest"),
            pl.col("class").filter(present).sort_by(pl.col("pixels").filter(present)).first().alias("rarest"),
            pl.col("class").filter(pl.col("chips") == 0).alias("missing"),
        )
        .with_columns(pl.col("missing").list.join(", "))
        .sort("source", subset_rank(pl.col("subset")))
    )


def native_balance(histograms: pl.DataFrame, rows: pl.DataFrame, names: pl.DataFrame | None = None) -> pl.DataFrame:
    """Before harmonization: pixels and share of every native code per source and subset, with its target class.

    `histograms` is validate's label_histograms table (source, chip_id, code, pixels, target); `rows` the scoped
    manifest, which picks the chips of each subset; `names` (source, code, name) labels codes from the crosswalks.
    """
    chips = rows.select("source", "chip_id", "subset")
    out = (
        histograms.join(chips, on=["source", "chip_id"], how="inner")
        .group_by("source", "subset", "code", "target")
        .agg(pl.col("pixels").sum())
        .with_columns(share=pl.col("pixels") / pl.col("pixels").sum().over("source", "subset"))
    )
    if names is not None:
        out = out.join(names.select("source", "code", "name"), on=["source", "code"], how="left")
    else:
        out = out.with_columns(name=pl.lit(None, pl.String))
    return out.with_columns(pl.col("name").fill_null(pl.col("code").cast(pl.String))).sort(
        "source", subset_rank(pl.col("subset")), "pixels", "code", descending=[False, False, True, False]
    )


def harmonized_from_native(native: pl.DataFrame) -> pl.DataFrame:
    """The same pixels summed by target class: what the manifest should say after harmonization (a cross-check)."""
    return (
        native.group_by("source", "subset", "target")
        .agg(pl.col("pixels").sum())
        .rename({"target": "class"})
        .sort("source", subset_rank(pl.col("subset")), "class")
    )
