"""Every Pandera schema of the toolkit, one per artifact boundary.

Tables are read with every column as text, so that a malformed value is reported by the schema with its row,
instead of failing inside the CSV reader.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

INTEGER = r"^[0-9]+$"
CLASS_NAME = r"^[a-z][a-z0-9_]*$"
HEX_COLOR = r"^#[0-9a-fA-F]{6}$"
UNMAPPED_ID = 255  # lookup-table sentinel, so class ids stay below it


def _as_int(key: str) -> pl.Expr:
    return pl.col(key).cast(pl.Int64, strict=False)


def regex_check(pattern: str, name: str) -> pa.Check:
    """Text matching `pattern`, reported under a readable rule name (built-in checks drop the name)."""

    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.contains(pattern).fill_null(True))

    return pa.Check(check, name=name)


def integer_check() -> pa.Check:
    """Text that is a non-negative integer."""
    return regex_check(INTEGER, "integer")


def range_check(low: int, high: int) -> pa.Check:
    """Integer text within [low, high]; non-integers are left to `integer_check`."""

    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_as_int(data.key).is_between(low, high).fill_null(True))

    return pa.Check(check, name=f"code range {low}-{high}")


def unique_int_check(name: str = "unique code") -> pa.Check:
    """Unique by integer value, so '5' and '05' count as the same code."""

    def check(data: PolarsData) -> pl.LazyFrame:
        value = _as_int(data.key)
        return data.lazyframe.select((~value.is_duplicated()) | value.is_null())

    return pa.Check(check, name=name)


def digits_check(digits: int) -> pa.Check:
    """Non-zero codes have exactly `digits` digits (HCAT codes are 10-digit hierarchies)."""

    def check(data: PolarsData) -> pl.LazyFrame:
        text = pl.col(data.key).str.strip_chars_start("0")
        return data.lazyframe.select((text.str.len_chars() == digits) | (text == "") | text.is_null())

    return pa.Check(check, name=f"{digits}-digit code")


def non_blank_check() -> pa.Check:
    """Text with something other than whitespace."""

    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.strip_chars().str.len_chars() > 0)

    return pa.Check(check, name="non-empty name")


TARGET_SCHEMA = pa.DataFrameSchema(
    {
        "id": pa.Column(
            pl.String, checks=[integer_check(), range_check(0, UNMAPPED_ID - 1), unique_int_check("unique id")]
        ),
        "name": pa.Column(
            pl.String,
            checks=[regex_check(CLASS_NAME, "class name")],
            unique=True,
        ),
        "color": pa.Column(pl.String, checks=regex_check(HEX_COLOR, "hex colour")),
    },
    strict=True,
    checks=[
        pa.Check(
            lambda data: data.lazyframe.select((pl.col("id") != "0") | (pl.col("name") == "ignore")),
            name="id 0 is ignore",
        ),
        pa.Check(
            lambda data: data.lazyframe.select((pl.col("name") != "ignore") | (pl.col("id") == "0")),
            name="ignore is id 0",
        ),
    ],
    name="target.csv",
)

SOURCE_LEGENDS_SCHEMA = pa.DataFrameSchema(
    {
        "source": pa.Column(
            pl.String,
            checks=regex_check(CLASS_NAME, "source name"),
            unique=True,
        ),
        "match": pa.Column(pl.String, checks=pa.Check.isin(["exact", "prefix"])),
        "min_code": pa.Column(pl.String, checks=integer_check()),
        "max_code": pa.Column(pl.String, checks=integer_check()),
        "digits": pa.Column(pl.String, checks=integer_check(), nullable=True),
        "legend": pa.Column(pl.String, checks=non_blank_check()),
    },
    strict=True,
    name="sources.csv",
)


def crosswalk_schema(
    source: str, targets: Sequence[str], min_code: int, max_code: int, digits: int | None
) -> pa.DataFrameSchema:
    """Schema of one source's crosswalk (`code,name,target[,note]`) against a taxonomy and code range."""
    code_checks = [integer_check(), range_check(min_code, max_code), unique_int_check()]
    if digits is not None:
        code_checks.append(digits_check(digits))
    return pa.DataFrameSchema(
        {
            "code": pa.Column(pl.String, checks=code_checks),
            "name": pa.Column(pl.String, checks=non_blank_check()),
            "target": pa.Column(
                pl.String,
                checks=pa.Check.isin(sorted(targets)),
            ),
            "note": pa.Column(pl.String, nullable=True, required=False),
        },
        strict=True,
        name=f"{source} crosswalk",
    )
