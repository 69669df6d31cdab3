"""What the Overview page shows: where the chips are and how many each source and subset holds."""

from __future__ import annotations

import polars as pl


def subset_label(split: pl.Expr, size: pl.Expr) -> pl.Expr:
    """`train 20`, `test 8`: how a subset is named everywhere in the app."""
    return pl.concat_str(split, pl.lit(" "), size.cast(pl.String))


def subset_rank(label: pl.Expr) -> pl.Expr:
    """Sort key of subset labels: `all chips` first, training sets by size, then test sets, the random one last."""
    size = label.str.extract(r" (\d+)$").cast(pl.Int64)
    return (
        pl.when(label.str.starts_with("train "))
        .then(size)
        .when(label.str.starts_with("test "))
        .then(size + 1_000_000_000)
        .when(label.str.starts_with("test_random "))
        .then(size + 2_000_000_000)
        .otherwise(-1)
    )


def subset_order(subsets: pl.DataFrame) -> list[str]:
    """Subset labels in reading order: training sets by size, then the test set(s), the random test set last."""
    random_last = pl.col("split") == "test_random"
    labels = subsets.select("split", "size").unique().sort(pl.col("split") != "train", random_last, "size")
    return [f"{split} {size}" for split, size in labels.iter_rows()]


def counts_per_source(manifest: pl.DataFrame, subsets: pl.DataFrame | None) -> pl.DataFrame:
    """One row per source: region, continent, years, chips in the manifest, then chips per subset (nested sizes)."""
    base = (
        manifest.group_by("source")
        .agg(
            pl.col("region").first(),
            pl.col("continent").first(),
            pl.col("year").unique().sort().cast(pl.String).str.join(", ").alias("years"),
            pl.len().alias("chips"),
        )
        .sort("source")
    )
    if subsets is None or subsets.is_empty():
        return base
    wide = (
        subsets.with_columns(subset=subset_label(pl.col("split"), pl.col("size")))
        .group_by("source", "subset")
        .len()
        .pivot(on="subset", index="source", values="len")
    )
    columns = [c for c in subset_order(subsets) if c in wide.columns]
    return base.join(wide.select("source", *columns), on="source", how="left").with_columns(
        pl.col(columns).fill_null(0).cast(pl.Int64)
    )


def chip_points(manifest: pl.DataFrame, palette: dict[str, str]) -> pl.DataFrame:
    """Chip centres with a colour per source, for the world map."""
    return manifest.select(
        "source",
        "chip_id",
        "lat",
        "lon",
        pl.col("source").replace_strict(palette, default="#808080").alias("color"),
    ).sort("source", "chip_id")


def source_palette(sources: list[str]) -> dict[str, str]:
    """A stable colour per source (Tableau 10), the same on every page."""
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
    return {name: colors[i % len(colors)] for i, name in enumerate(sorted(sources))}


def crosswalk_sets(manifest: pl.DataFrame) -> list[str]:
    """The crosswalk set(s) the chips were cut with (one, unless the manifest was assembled by hand)."""
    return sorted(manifest["crosswalk_set"].unique().to_list())
