"""Schemas of the facts validate and chips gather: image chips, raster products, parcel layers, label windows."""

from __future__ import annotations

from collections.abc import Sequence

import pandera.polars as pa
import polars as pl

from curation.core.schemas import named_check, regex_check, table_check

INTEGER_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64")


def image_chips_schema(bands: Sequence[str], chip_px: int, resolution_m: float) -> pa.DataFrameSchema:
    """Facts of every image chip (one row each): band count, dtype, size, CRS, transform, resolution and more.

    Also the band order its descriptions give (null: not described), its zero bands and the share of pixels
    without data (null: no no-data value declared, or pixels not read since the header failed).
    """
    tolerance = resolution_m * 1e-6
    count, order = len(bands), ",".join(bands)
    return pa.DataFrameSchema(
        {
            "source": pa.Column(pl.String),
            "chip_id": pa.Column(pl.String),
            "file": pa.Column(pl.String),
            "bands": pa.Column(pl.Int64, checks=named_check(f"{count} bands", lambda c: c == count)),
            "dtype": pa.Column(pl.String, checks=named_check("uint16", lambda c: c == "uint16")),
            "height": pa.Column(pl.Int64, checks=named_check(f"{chip_px} px high", lambda c: c == chip_px)),
            "width": pa.Column(pl.Int64, checks=named_check(f"{chip_px} px wide", lambda c: c == chip_px)),
            "crs": pa.Column(pl.String, checks=named_check("CRS present", lambda c: c.is_not_null()), nullable=True),
            "has_transform": pa.Column(pl.Boolean, checks=named_check("transform present", lambda c: c)),
            "res_x": pa.Column(
                pl.Float64,
                checks=named_check(f"{resolution_m:g} m pixels", lambda c: (c - resolution_m).abs() < tolerance),
            ),
            "res_y": pa.Column(
                pl.Float64,
                checks=named_check(f"{resolution_m:g} m pixels", lambda c: (c - resolution_m).abs() < tolerance),
            ),
            "band_order": pa.Column(pl.String, checks=named_check("band order", lambda c: c == order), nullable=True),
            "zero_bands": pa.Column(pl.String, checks=named_check("no all-zero band", lambda c: c == "")),
            "nodata_share": pa.Column(
                pl.Float64, checks=named_check("not all nodata", lambda c: c < 1.0), nullable=True
            ),
        },
        strict=True,
        name="image chips",
    )


RASTER_PRODUCTS_SCHEMA = pa.DataFrameSchema(
    {
        "source": pa.Column(pl.String),
        "file": pa.Column(pl.String),
        "crs": pa.Column(pl.String, checks=named_check("CRS present", lambda c: c.is_not_null()), nullable=True),
        "declared_crs": pa.Column(pl.String, nullable=True),
        "res_x": pa.Column(pl.Float64, checks=named_check("positive resolution", lambda c: c > 0)),
        "res_y": pa.Column(pl.Float64, checks=named_check("positive resolution", lambda c: c > 0)),
        "dtype": pa.Column(pl.String, checks=named_check("integer codes", lambda c: c.is_in(INTEGER_DTYPES))),
        "nodata": pa.Column(pl.Float64, nullable=True),
        "nodata_target": pa.Column(pl.String, nullable=True),
    },
    strict=True,
    checks=[
        table_check(
            "declared CRS",
            pl.col("declared_crs").is_null() | pl.col("crs").is_null() | (pl.col("crs") == pl.col("declared_crs")),
        ),
        table_check("nodata in crosswalk", pl.col("nodata").is_null() | pl.col("nodata_target").is_not_null()),
        table_check(
            "nodata maps to ignore",
            pl.col("nodata").is_null() | pl.col("nodata_target").is_null() | (pl.col("nodata_target") == "ignore"),
        ),
    ],
    name="raster label products",
)

VECTOR_LAYERS_SCHEMA = pa.DataFrameSchema(
    {
        "source": pa.Column(pl.String),
        "layer": pa.Column(pl.String),
        "crs": pa.Column(pl.String, checks=named_check("CRS known", lambda c: c.is_not_null()), nullable=True),
        "code_column": pa.Column(pl.Boolean, checks=named_check("code column present", lambda c: c)),
        "features": pa.Column(pl.Int64, checks=named_check("non-empty layer", lambda c: c > 0)),
        "invalid_geometries": pa.Column(pl.Int64),  # repaired when rasterized: validate warns, per layer
    },
    strict=True,
    name="vector label layers",
)

VECTOR_FEATURES_SCHEMA = pa.DataFrameSchema(
    {
        "source": pa.Column(pl.String),
        "layer": pa.Column(pl.String),
        "feature": pa.Column(pl.Int64),  # the first parcel (source feature id) of the row's code and emptiness
        "parcels": pa.Column(pl.Int64, checks=pa.Check.gt(0)),  # parcels of this code and emptiness in the layer
        "examples": pa.Column(pl.String),  # their first feature ids, for messages
        "code": pa.Column(pl.String, checks=regex_check(r"^\s*[0-9]+(\.0*)?\s*$", "integer code"), nullable=True),
        "target": pa.Column(pl.String, nullable=True),
        "empty": pa.Column(pl.Boolean, checks=named_check("non-empty geometry", lambda c: ~c)),
    },
    strict=True,
    checks=[
        table_check(
            "code in crosswalk",
            pl.col("code").is_null()
            | ~pl.col("code").str.contains(r"^\s*[0-9]+(\.0*)?\s*$")
            | pl.col("target").is_not_null(),
        )
    ],
    name="vector label features",
)

LABEL_HISTOGRAMS_SCHEMA = pa.DataFrameSchema(
    {
        "source": pa.Column(pl.String),
        "chip_id": pa.Column(pl.String),
        "code": pa.Column(pl.Int64),
        "pixels": pa.Column(pl.Int64, checks=pa.Check.gt(0)),
        "target": pa.Column(
            pl.String, checks=named_check("code in crosswalk", lambda c: c.is_not_null()), nullable=True
        ),
    },
    strict=True,
    name="label windows",
)
