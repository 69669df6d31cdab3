"""Schemas of the training results: the tidy transfer table and the confusion counts (report, app)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from curation.core.schemas import named_check, non_blank_check, table_check

WEIGHTS_PROVENANCE = ("pretrained", "random", "none")  # none: a model without weights to load (spectral)
BALANCE_STRATEGIES = ("base", "loss-weights", "chip-sampler", "pixel-budget")  # train.balance.strategies
COMPUTED = "computed"  # a number this toolkit computed (the study's published ones are `copied`, in vs_reference)
ORIGINS = (COMPUTED, "copied")


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
        "balance": pa.Column(
            pl.String, checks=named_check("a train.balance strategy", lambda c: c.is_in(list(BALANCE_STRATEGIES)))
        ),
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
        "weights_sha256": pa.Column(  # null: no weight file was loaded (random init, or no weights at all)
            pl.String, checks=named_check("64 hex digits", lambda c: c.str.contains("^[0-9a-f]{64}$")), nullable=True
        ),
        "weights_licence": pa.Column(pl.String, nullable=True),  # the loaded file's licence (null: none loaded)
        "data_version": pa.Column(  # sha256 of the manifest and subsets tables the run was scored with
            pl.String, checks=named_check("64 hex digits", lambda c: c.str.contains("^[0-9a-f]{64}$"))
        ),
        "origin": pa.Column(pl.String, checks=named_check("computed or copied", lambda c: c.is_in(list(ORIGINS)))),
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


def _score(nullable: bool = True) -> pa.Column:
    return pa.Column(
        pl.Float64, checks=named_check("in [0, 1]", lambda c: c.is_nan() | c.is_between(0.0, 1.0)), nullable=nullable
    )


SPLIT_BIAS_RUN_SCHEMA = pa.DataFrameSchema(
    {
        "run_id": _text_column(),
        "backbone": _text_column(),
        "target_source": _text_column(),
        "k": pa.Column(pl.Int64, checks=named_check("k >= 1", lambda c: c >= 1)),
        "seed": pa.Column(pl.Int64, checks=named_check("seed >= 0", lambda c: c >= 0)),
        "balance": _text_column(),
        "metric": _text_column(),
        "blocked": _score(),  # on the spatially blocked test set (every other table's number); NaN: undefined
        "random": _score(),  # on the random test set drawn beside the training chips
        "blocked_chips": pa.Column(pl.Int64, checks=named_check("chips >= 1", lambda c: c >= 1)),
        "random_chips": pa.Column(pl.Int64, checks=named_check("chips >= 1", lambda c: c >= 1)),
    },
    strict=True,
    ordered=True,
    checks=[table_check("unique (run_id, metric)", ~pl.struct("run_id", "metric").is_duplicated())],
    name="split bias per run",
)
"""evaluate's `split_bias.parquet`: each `id` run scored on its own source's blocked and random test sets."""

SPLIT_BIAS_KEYS = ("target_source", "backbone", "k", "balance", "metric")
SPLIT_BIAS_SCHEMA = pa.DataFrameSchema(
    {
        "target_source": _text_column(),
        "backbone": _text_column(),
        "k": pa.Column(pl.Int64, checks=named_check("k >= 1", lambda c: c >= 1)),
        "balance": _text_column(),
        "metric": _text_column(),
        "runs": pa.Column(pl.Int64, checks=named_check("runs >= 1", lambda c: c >= 1)),
        "blocked": _score(),
        "random": _score(),
        "bias": pa.Column(  # random minus blocked: the optimism a random split would report
            pl.Float64, checks=named_check("in [-1, 1]", lambda c: c.is_between(-1.0, 1.0)), nullable=True
        ),
        "bias_std": pa.Column(pl.Float64, checks=named_check(">= 0", lambda c: c >= 0.0), nullable=True),
    },
    strict=True,
    ordered=True,
    checks=[table_check(f"unique ({', '.join(SPLIT_BIAS_KEYS)})", ~pl.struct(SPLIT_BIAS_KEYS).is_duplicated())],
    name="split bias",
)
"""The report's `split_bias.parquet`: per source, backbone, k, strategy and metric, means over seeds (null: undefined
on every seed) and the std of the per-seed differences (null with one seed)."""
