"""What the Overview page shows: where the chips are and how many each source and subset holds."""

from __future__ import annotations

import math

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
    """A stable colour per source (Tableau 10) in the order given (params order: the same on every page)."""
    colors = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
    return {name: colors[i % len(colors)] for i, name in enumerate(sources)}


def crosswalk_sets(manifest: pl.DataFrame) -> list[str]:
    """The crosswalk set(s) the chips were cut with (one, unless the manifest was assembled by hand)."""
    return sorted(manifest["crosswalk_set"].unique().to_list())


SPLIT_COLORS = {  # chips on the map, by the subset kind they belong to
    "train": "#1f77b4",
    "test": "#d62728",
    "test_random": "#ff7f0e",
    "unused": "#9e9e9e",
}
METRES_PER_DEGREE = 111_320.0


def chip_splits(manifest: pl.DataFrame, subsets: pl.DataFrame | None) -> pl.DataFrame:
    """(source, chip_id, split): the kind of subset each chip is in (train before test), `unused` when in none."""
    chips = manifest.select("source", "chip_id")
    if subsets is None or subsets.is_empty():
        return chips.with_columns(split=pl.lit("unused"))
    kinds = list(SPLIT_COLORS)
    rank = pl.col("split").replace_strict({k: i for i, k in enumerate(kinds)}, default=len(kinds))
    first = subsets.select("source", "chip_id", "split").sort(rank).unique(["source", "chip_id"], keep="first")
    return chips.join(first, on=["source", "chip_id"], how="left").with_columns(pl.col("split").fill_null("unused"))


def _rgba(color: str, alpha: int) -> list[int]:
    return [int(color[i : i + 2], 16) for i in (1, 3, 5)] + [alpha]


def chip_footprints(manifest: pl.DataFrame, subsets: pl.DataFrame | None) -> pl.DataFrame:
    """Every chip as a square around its centre (lon, lat corners, sized from its bounds), coloured by split.

    The square is the chip's extent in metres laid out in degrees at its latitude: exact enough to see chips side
    by side without a reprojection library in the app.
    """
    splits = chip_splits(manifest, subsets)
    rows = manifest.join(splits, on=["source", "chip_id"], how="left").sort("source", "chip_id")
    polygons, colors = [], []
    for row in rows.select("lat", "lon", "minx", "maxx", "miny", "maxy", "split").iter_rows(named=True):
        half_x = abs(row["maxx"] - row["minx"]) / 2 / METRES_PER_DEGREE / max(math.cos(math.radians(row["lat"])), 0.01)
        half_y = abs(row["maxy"] - row["miny"]) / 2 / METRES_PER_DEGREE
        lon, lat = row["lon"], row["lat"]
        corners = [[lon - half_x, lat - half_y], [lon + half_x, lat - half_y], [lon + half_x, lat + half_y]]
        polygons.append([*corners, [lon - half_x, lat + half_y]])
        colors.append(_rgba(SPLIT_COLORS.get(row["split"], "#808080"), 170))
    return rows.select("source", "chip_id", "split", "dominant", "region", "lat", "lon").with_columns(
        pl.Series("polygon", polygons, dtype=pl.List(pl.List(pl.Float64))),
        pl.Series("fill", colors, dtype=pl.List(pl.Int64)),
    )


def fit_view(lats: list[float], lons: list[float], width_px: int = 900, height_px: int = 500) -> dict[str, float]:
    """Latitude, longitude and zoom (web mercator) that fit every point in a map of that size, with a margin."""
    if not lats:
        return {"latitude": 0.0, "longitude": 0.0, "zoom": 1.0}
    lat_span = max(max(lats) - min(lats), 1e-4) * 1.4
    lon_span = max(max(lons) - min(lons), 1e-4) * 1.4
    zoom = min(math.log2(360.0 * width_px / 512 / lon_span), math.log2(180.0 * height_px / 512 / lat_span))
    return {
        "latitude": (max(lats) + min(lats)) / 2,
        "longitude": (max(lons) + min(lons)) / 2,
        "zoom": max(0.0, min(zoom, 18.0)),
    }


def source_centres(manifest: pl.DataFrame, palette: dict[str, str]) -> pl.DataFrame:
    """Per source: the centre of its chips, how many, and its colour (the world map's one marker per source)."""
    return (
        manifest.group_by("source")
        .agg(pl.col("lat").mean(), pl.col("lon").mean(), pl.len().cast(pl.Int64).alias("chips"))
        .with_columns(
            label=pl.col("source").str.replace_all("_", " "),  # deck.gl's font atlas draws `_` below its cell
            fill=pl.col("source").map_elements(lambda s: _rgba(palette.get(s, "#808080"), 220), pl.List(pl.Int64)),
        )
        .sort("source")
    )
