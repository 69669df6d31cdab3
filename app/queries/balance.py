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

    `ignore` never counts. `imbalance_ratio` is over every labelled class, so it is infinite when a class has no
    pixel at all (a source holding two of five classes is not "balanced"); `ratio_present` is the same over the
    classes with pixels; `imbalance` says both in words. A class is `missing` when no chip of the group contains it
    (at least `min_share` of a chip's pixels); `classes_missing` counts them.
    """
    labelled = balance.filter(pl.col("class") != IGNORE)
    present = pl.col("pixels") > 0
    out = (
        labelled.group_by("source", "subset")
        .agg(
            pl.col("group_chips").first().alias("chips"),
            pl.len().alias("classes"),
            present.sum().alias("classes_with_pixels"),
            (pl.col("pixels").filter(present).max() / pl.col("pixels").filter(present).min()).alias("ratio_present"),
            pl.col("class").filter(present).sort_by(pl.col("pixels").filter(present)).last().alias("commonest"),
            pl.col("class").filter(present).sort_by(pl.col("pixels").filter(present)).first().alias("rarest"),
            pl.col("class").filter(pl.col("chips") == 0).alias("missing"),
        )
        .with_columns(
            imbalance_ratio=pl.when(pl.col("classes_with_pixels") < pl.col("classes"))
            .then(float("inf"))
            .otherwise(pl.col("ratio_present")),
            classes_missing=pl.col("missing").list.len().cast(pl.Int64),
            missing=pl.col("missing").list.join(", "),
        )
    )
    words = (
        pl.when(pl.col("classes_with_pixels") < pl.col("classes"))
        .then(
            pl.format(
                "∞: {} of {} classes have no pixel",
                (pl.col("classes") - pl.col("classes_with_pixels")).cast(pl.String),
                pl.col("classes").cast(pl.String),
            )
        )
        .when(pl.col("classes_missing") > 0)
        .then(pl.format("{} ({} missing)", pl.col("ratio_present").round(2).cast(pl.String), pl.col("classes_missing")))
        .otherwise(pl.col("ratio_present").round(2).cast(pl.String))
    )
    return (
        out.with_columns(imbalance=words)
        .select(
            "source",
            "subset",
            "chips",
            "imbalance",
            "imbalance_ratio",
            "ratio_present",
            "commonest",
            "rarest",
            "classes_missing",
            "missing",
        )
        .sort("source", subset_rank(pl.col("subset")))
    )


def share_table(balance: pl.DataFrame, share: str = "pixel_share") -> pl.DataFrame:
    """Every source and subset in one table: chips, then one column per class with its share (`share_<class>`)."""
    classes = balance["class"].unique(maintain_order=True).to_list()
    wide = balance.pivot(on="class", index=["source", "subset", "group_chips"], values=share, maintain_order=True)
    return wide.select(
        "source",
        "subset",
        pl.col("group_chips").alias("chips"),
        *[pl.col(c).alias(f"share_{c}") for c in classes],
    )


def set_shares(
    histograms: pl.DataFrame,
    rows: pl.DataFrame,
    targets: dict[str, pl.DataFrame],
    *,
    include_ignore: bool = True,
) -> pl.DataFrame:
    """Pixel share of each class per source and subset under every crosswalk set, from the same native pixels.

    `histograms`: validate's label histograms (source, chip_id, code, pixels); `rows`: the scoped manifest (picks
    each subset's chips); `targets`: per set, (source, code, target) as that set maps the codes. The same chips and
    native pixels go through each set's crosswalks, so two sets' shares differ only by their mapping.
    """
    chips = rows.select("source", "chip_id", "subset")
    native = (
        histograms.join(chips, on=["source", "chip_id"], how="inner")
        .group_by("source", "subset", "code")
        .agg(pl.col("pixels").sum())
    )
    frames = []
    for name, mapping in targets.items():
        mapped = native.join(mapping.select("source", "code", "target"), on=["source", "code"], how="left")
        frames.append(
            mapped.with_columns(pl.col("target").fill_null(IGNORE), set=pl.lit(name))
            .group_by("source", "subset", "set", pl.col("target").alias("class"))
            .agg(pl.col("pixels").sum().cast(pl.Int64))
        )
    out = pl.concat(frames) if frames else pl.DataFrame()
    if out.is_empty():
        return out
    if not include_ignore:
        out = out.filter(pl.col("class") != IGNORE)
    return out.with_columns(share=pl.col("pixels") / pl.col("pixels").sum().over("source", "subset", "set"))


def set_differences(shares: pl.DataFrame, classes: Sequence[str], sets: Sequence[str]) -> pl.DataFrame:
    """One row per source, subset and class: its share under each set (`share_<set>`) and the difference in points.

    The difference is the second set minus the first (`sets[1] - sets[0]`), in percentage points.
    """
    wide = shares.pivot(on="set", index=["source", "subset", "class"], values="share")
    for name in sets:
        if name not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(name))
    grid = (
        shares.select("source", "subset")
        .unique()
        .join(pl.DataFrame({"class": list(classes)}, schema={"class": pl.String}), how="cross")
    )
    rank = {c: i for i, c in enumerate(classes)}
    out = grid.join(wide, on=["source", "subset", "class"], how="left").with_columns(
        [pl.col(name).fill_null(0.0) for name in sets]
    )
    difference = (
        [((pl.col(sets[1]) - pl.col(sets[0])) * 100).alias(f"{sets[1]}_minus_{sets[0]}_points")]
        if len(sets) > 1
        else []
    )
    return out.select(
        "source",
        "subset",
        "class",
        *[pl.col(name).alias(f"share_{name}") for name in sets],
        *difference,
    ).sort(
        "source",
        subset_rank(pl.col("subset")),
        pl.col("class").replace_strict(rank, default=len(rank), return_dtype=pl.Int64),
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
