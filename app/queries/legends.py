"""Crosswalks as tables: every code with its target, note and pixels seen, beside another set's target."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from curation.core.legends import CrosswalkSet
from curation.core.remap import UNMAPPED, Crosswalk

UNMAPPED_NAME = "(unmapped)"
NOT_LISTED = "(not listed: follows its parent code)"  # prefix-matched crosswalks (EuroCrops HCAT)
NOT_IN_CROSSWALK = "(not in the crosswalk)"  # exact-match crosswalks: validation stops such codes


def _target_names(crosswalk: Crosswalk, codes: list[int]) -> list[str]:
    """Harmonized class of each code as the crosswalk resolves it (prefix matching included)."""
    taxonomy = crosswalk.taxonomy
    ids = crosswalk.resolve(np.asarray(codes, dtype=np.int64)).tolist()
    return [UNMAPPED_NAME if i == UNMAPPED else taxonomy.names[taxonomy.ids.index(i)] for i in ids]


def crosswalk_frame(crosswalk: Crosswalk) -> pl.DataFrame:
    """The crosswalk CSV as loaded and validated: code, name, target, note."""
    codes = crosswalk.codes.tolist()
    notes = list(crosswalk.notes) if crosswalk.notes else [""] * len(codes)
    return pl.DataFrame(
        {"code": codes, "name": list(crosswalk.names), "target": _target_names(crosswalk, codes), "note": notes},
        schema={"code": pl.Int64, "name": pl.String, "target": pl.String, "note": pl.String},
    )


def pixels_seen(histograms: pl.DataFrame, source: str) -> pl.DataFrame:
    """Pixels per native code over every chip window of a source (validate's label histograms)."""
    return (
        histograms.filter(pl.col("source") == source)
        .group_by("code")
        .agg(pl.col("pixels").sum().cast(pl.Int64))
        .sort("code")
    )


def legend_table(active: Crosswalk, other: Crosswalk | None, seen: pl.DataFrame | None) -> pl.DataFrame:
    """Every row of the active crosswalk with the pixels seen, plus codes seen that it matches by prefix only.

    With `other` (the study's set, say), its target for the same code and a `differs` flag are added.
    """
    table = crosswalk_frame(active)
    if seen is not None:
        unlisted = seen.join(table, on="code", how="anti")
        extra = pl.DataFrame(
            {
                "code": unlisted["code"],
                "name": [NOT_LISTED if active.match == "prefix" else NOT_IN_CROSSWALK] * unlisted.height,
                "target": _target_names(active, unlisted["code"].to_list()),
                "note": [""] * unlisted.height,
            },
            schema=table.schema,
        )
        table = pl.concat([table, extra]).join(seen, on="code", how="left").with_columns(pl.col("pixels").fill_null(0))
    if other is not None:
        table = table.with_columns(
            pl.Series(f"{other.set_name}_target", _target_names(other, table["code"].to_list()), pl.String)
        ).with_columns(differs=pl.col("target") != pl.col(f"{other.set_name}_target"))
    return table.sort("code")


def differing_pixels(table: pl.DataFrame) -> int:
    """Pixels the data holds in codes the two sets map differently: how much the choice of set matters here."""
    if "differs" not in table.columns or "pixels" not in table.columns:
        return 0
    return int(table.filter(pl.col("differs"))["pixels"].sum())


def code_targets(crosswalks: Mapping[str, Crosswalk], codes: pl.DataFrame) -> pl.DataFrame:
    """(source, code, target): how one set's crosswalks map the native codes seen (`codes`: source, code)."""
    frames = []
    for (source,), group in codes.select("source", "code").unique().group_by("source"):
        if source not in crosswalks:
            continue
        values = group["code"].to_list()
        frames.append(
            pl.DataFrame(
                {"source": [source] * len(values), "code": values, "target": _target_names(crosswalks[source], values)},
                schema={"source": pl.String, "code": pl.Int64, "target": pl.String},
            )
        )
    empty = pl.DataFrame(schema={"source": pl.String, "code": pl.Int64, "target": pl.String})
    return pl.concat(frames) if frames else empty


def difference_summary(active: CrosswalkSet, other: CrosswalkSet, histograms: pl.DataFrame | None) -> pl.DataFrame:
    """Per source: codes the two sets map differently and the share of the source's pixels they hold.

    The share is what decides whether the choice of set matters for a source: many differing codes can hold
    no pixels, one can hold a third of them (CDL's rice).
    """
    rows = []
    for source, crosswalk in active.crosswalks.items():
        if source not in other.crosswalks:
            continue
        seen = pixels_seen(histograms, source) if histograms is not None else None
        table = legend_table(crosswalk, other[source], seen)
        total = int(seen["pixels"].sum()) if seen is not None else None
        changed = differing_pixels(table) if seen is not None else None
        in_data = table.filter(pl.col("differs"), pl.col("pixels") > 0).height if seen is not None else None
        share = changed / total if changed is not None and total else None
        rows.append((source, int(table["differs"].sum()), in_data, changed, total, share))
    schema = {
        "source": pl.String,
        "codes_differing": pl.Int64,
        "codes_differing_in_data": pl.Int64,
        "pixels_differing": pl.Int64,
        "pixels_of_source": pl.Int64,
        "share_of_source_pixels": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def differences_with_pixels(rows: list[dict[str, object]], histograms: pl.DataFrame | None) -> pl.DataFrame:
    """A crosswalks-report differences list with the pixels each code holds and its share of its source's pixels."""
    frame = pl.DataFrame(rows, infer_schema_length=None)
    if frame.is_empty() or histograms is None:
        return frame
    frame = frame.with_columns(pl.col("code").cast(pl.Int64))
    seen = histograms.group_by("source", "code").agg(pl.col("pixels").sum().cast(pl.Int64))
    totals = histograms.group_by("source").agg(pl.col("pixels").sum().cast(pl.Int64).alias("total"))
    return (
        frame.join(seen, on=["source", "code"], how="left", maintain_order="left")
        .join(totals, on="source", how="left", maintain_order="left")
        .with_columns(
            pl.col("pixels").fill_null(0),
            share_of_source_pixels=pl.when(pl.col("total") > 0).then(pl.col("pixels").fill_null(0) / pl.col("total")),
        )
        .drop("total")
    )
