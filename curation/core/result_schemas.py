"""Schemas of the training results: the tidy transfer table and the confusion counts (report, app)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from curation.core.schemas import named_check, non_blank_check, table_check

WEIGHTS_PROVENANCE = ("pretrained", "random", "none")  # none: a model without weights to load (spectral)


def _text_column() -> pa.Column:
    """Non-blank text, not nullable."""
    return pa.Column(pl.String, checks=non_blank_check())


TRANSFER_SCHEMA = pa.DataFrameSchema(
    {
        "run_id": _text_column(),
        "protocol": _text_column(),
        "backbone": _text_column(),
        "target_source": _text_column(),
        "train_sources": _text_column(),
        "k": pa.Column(pl.Int64, checks=named_check("k >= 0", lambda c: c >= 0)),
        "seed": pa.Column(pl.Int64, checks=named_check("seed >= 0", lambda c: c >= 0)),
        "test_source": _text_column(),
        "metric": _text_column(),
        "value": pa.Column(  # nullable: Pandera counts NaN as null; the frame rule below still refuses a null
            pl.Float64,
            checks=named_check("value in [0, 1] or NaN", lambda c: c.is_nan() | c.is_between(0.0, 1.0)),
            nullable=True,
        ),
        "crosswalk_set": _text_column(),
        "weights": pa.Column(
            pl.String,
            checks=named_check("weights pretrained, random or none", lambda c: c.is_in(list(WEIGHTS_PROVENANCE))),
        ),
        "weights_file": pa.Column(pl.String, nullable=True),
    },
    strict=True,
    checks=[
        table_check("value not null (NaN for an absent class)", pl.col("value").is_not_null()),
        table_check(
            "unique (run_id, test_source, metric)", ~pl.struct("run_id", "test_source", "metric").is_duplicated()
        ),
    ],
    name="transfer results",
)

CHIP_CONFUSION_SCHEMA = pa.DataFrameSchema(
    {
        "run_id": _text_column(),
        "test_source": _text_column(),
        "chip_id": _text_column(),
        "target_class": _text_column(),
        "predicted_class": _text_column(),
        "pixels": pa.Column(pl.Int64, checks=named_check("pixels > 0", lambda c: c > 0)),
    },
    strict=True,
    checks=[
        table_check(
            "unique (run_id, test_source, chip_id, target_class, predicted_class)",
            ~pl.struct("run_id", "test_source", "chip_id", "target_class", "predicted_class").is_duplicated(),
        )
    ],
    name="per-chip confusion counts",
)

CONFUSION_SCHEMA = pa.DataFrameSchema(
    {
        "run_id": _text_column(),
        "test_source": _text_column(),
        "target_class": _text_column(),
        "predicted_class": _text_column(),
        "pixels": pa.Column(pl.Int64, checks=named_check("pixels >= 0", lambda c: c >= 0)),
    },
    strict=True,
    checks=[
        table_check(
            "unique (run_id, test_source, target_class, predicted_class)",
            ~pl.struct("run_id", "test_source", "target_class", "predicted_class").is_duplicated(),
        )
    ],
    name="confusion matrices",
)
