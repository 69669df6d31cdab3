"""Pandera schemas of the legends, the chip manifest and the subsets, and the checks every schema builds on.

The facts validate gathers are checked in `fact_schemas`, the training results in `result_schemas`.

Tables are read with every column as text, so that a malformed value is reported by the schema with its row,
instead of failing inside the CSV reader.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

INTEGER = r"^[0-9]+$"
CLASS_NAME = r"^[a-z][a-z0-9_]*$"
HEX_COLOR = r"^#[0-9a-fA-F]{6}$"
UNMAPPED_ID = 255  # lookup-table sentinel, so class ids stay below it


def rows_frame(rows: Sequence[dict[str, object]], schema: pa.DataFrameSchema) -> pl.DataFrame:
    """Rows as a frame with the schema's column types, also when there are none."""
    columns = {name: column.dtype.type for name, column in schema.columns.items()}
    return pl.DataFrame(list(rows), schema=columns, orient="row") if rows else pl.DataFrame(schema=columns)


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
        # the source's crosswalk file in each set; empty: <source>.csv. Sources sharing a legend share one file.
        "crosswalk": pa.Column(
            pl.String, checks=regex_check(r"^[a-z0-9_]+\.csv$", "crosswalk file"), nullable=True, required=False
        ),
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


def table_check(name: str, expression: pl.Expr) -> pa.Check:
    """A frame-wide rule: one boolean per row, reported under `name`."""
    return pa.Check(lambda data: data.lazyframe.select(expression), name=name)


def class_column(name: str) -> str:
    """The manifest column holding a class's pixel count."""
    return f"px_{name}"


def manifest_schema(class_names: Sequence[str], sources: Sequence[str]) -> pa.DataFrameSchema:
    """`data/chips/manifest.parquet`: one row per chip, one pixel-count column per target class (ignore included)."""
    counts = [class_column(n) for n in class_names]
    text = pa.Column(pl.String, checks=non_blank_check())
    columns: dict[str, pa.Column] = {
        "chip_id": text,
        "source": pa.Column(pl.String, checks=pa.Check.isin(sorted(sources))),
        "region": text,
        "continent": text,
        "year": pa.Column(pl.Int64, checks=pa.Check.in_range(1980, 2100)),
        "crs": text,
        "minx": pa.Column(pl.Float64),
        "miny": pa.Column(pl.Float64),
        "maxx": pa.Column(pl.Float64),
        "maxy": pa.Column(pl.Float64),
        "lon": pa.Column(pl.Float64, checks=pa.Check.in_range(-180.0, 180.0)),
        "lat": pa.Column(pl.Float64, checks=pa.Check.in_range(-90.0, 90.0)),
        "height": pa.Column(pl.Int64, checks=pa.Check.gt(0)),
        "width": pa.Column(pl.Int64, checks=pa.Check.gt(0)),
        **{c: pa.Column(pl.Int64, checks=pa.Check.ge(0)) for c in counts},
        "dominant": pa.Column(pl.String, checks=pa.Check.isin(list(class_names))),
        "image_path": text,
        "label_path": text,
        "grid": text,
        "label_grid": text,
        "crosswalk_set": text,
    }
    return pa.DataFrameSchema(
        columns,
        strict=True,
        ordered=True,
        checks=[
            table_check("unique chip id per source", ~pl.struct("source", "chip_id").is_duplicated()),
            table_check("counts sum to the chip area", pl.sum_horizontal(counts) == pl.col("height") * pl.col("width")),
            table_check("label and image grids agree", pl.col("grid") == pl.col("label_grid")),
            table_check("bounds ordered", (pl.col("minx") < pl.col("maxx")) & (pl.col("miny") < pl.col("maxy"))),
        ],
        name="chip manifest",
    )


TEST_RANDOM = "test_random"  # the random, unblocked test set (subsets.random_test_size): never in a release
SPLITS = ("train", "test", TEST_RANDOM)


def _nested_check() -> pa.Check:
    """Each training chip is in every larger training set of its source (10 within 100 within 900)."""

    def check(data: PolarsData) -> pl.LazyFrame:
        frame = data.lazyframe.with_row_index("_row")
        train = frame.filter(pl.col("split") == "train")
        sizes = train.group_by("source").agg(pl.col("size").unique().alias("_sizes"))
        member = train.group_by("source", "chip_id").agg(
            pl.col("size").min().alias("_smallest"), pl.len().alias("_memberships")
        )
        expected = (
            frame.join(member, on=["source", "chip_id"], how="left")
            .join(sizes.explode("_sizes"), on="source", how="left")
            .group_by("_row")
            .agg(
                pl.col("split").first(),
                pl.col("_memberships").first(),
                (pl.col("_sizes") >= pl.col("_smallest")).sum().alias("_expected"),
            )
            .sort("_row")
        )
        return expected.select((pl.col("split") != "train") | (pl.col("_memberships") == pl.col("_expected")))

    return pa.Check(check, name="training sets nested")


def _chip_in(split: pl.Expr) -> pl.Expr:
    """Per row: whether the row's chip (of its source) is in some set whose split matches."""
    return split.any().over("source", "chip_id")


def subsets_schema(nested: bool = True) -> pa.DataFrameSchema:
    """The subsets manifest: one row per chip and set; each test set disjoint from training and the other; nesting.

    The random test set lies beside training chips (unblocked) but shares none with them.
    """
    split = pl.col("split")
    checks = [
        table_check("unique chip per set", ~pl.struct("source", "split", "size", "chip_id").is_duplicated()),
        table_check("test disjoint from training", ~(_chip_in(split == "test") & _chip_in(split == "train"))),
        table_check(
            "random test disjoint from training and test",
            ~(_chip_in(split == TEST_RANDOM) & _chip_in(split != TEST_RANDOM)),
        ),
    ]
    if nested:
        checks.append(_nested_check())
    return pa.DataFrameSchema(
        {
            "chip_id": pa.Column(pl.String, checks=non_blank_check()),
            "source": pa.Column(pl.String, checks=non_blank_check()),
            "split": pa.Column(pl.String, checks=pa.Check.isin(list(SPLITS))),
            "size": pa.Column(pl.Int64, checks=pa.Check.gt(0)),
        },
        strict=True,
        ordered=True,
        checks=checks,
        name="subsets manifest",
    )


def named_check(name: str, predicate: Callable[[pl.Expr], pl.Expr]) -> pa.Check:
    """A column check with a readable rule name; nulls are left to the column's nullable flag."""
    return pa.Check(lambda data: data.lazyframe.select(predicate(pl.col(data.key)).fill_null(True)), name=name)
