"""How validate tells each fact table's failures: a fix per rule, detail templates per table, grouped code rows.

Templates are per table, because tables hold different columns (a label window counts pixels, a parcel does not);
`curation.core.failures.fill` also leaves a template aside rather than raise when a field is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandera.polars as pa
import polars as pl

from curation.core.errors import Problem
from curation.core.failures import Failure, Words, failures, fill, row_problem

FIXES = {
    "13 bands": "write chips with the 13 Sentinel-2 bands in shared.bands order",
    "uint16": "write chips as uint16 L1C reflectance (digital numbers)",
    "CRS present": "write the file with its CRS (gdal_edit.py -a_srs EPSG:...)",
    "transform present": "write the chip with its geotransform",
    "band order": "if the chips are right, set shared.bands to their order ({band_order}); else re-export the "
    "chips with their bands in shared.bands order",
    "no all-zero band": "re-export the chip: a band holding only zeros is missing data",
    "not all nodata": "remove the chip: it holds no data in any pixel",
    "declared CRS": "use the product as published, or set shared.sources.{source}.label_crs to its real CRS",
    "nodata in crosswalk": "add the nodata value to {crosswalk} (target ignore)",
    "nodata maps to ignore": "set the target of code {nodata_code} to ignore in {crosswalk}: pixels without data "
    "must never be trained on",
    "integer codes": "use the product's original integer-coded raster",
    "positive resolution": "fix the file's geotransform",
    "code in crosswalk": "add a row (code,name,target) for it to {crosswalk}; target ignore to leave it out",
    "integer code": "correct the parcel's {code_column} attribute to {a_code}",
    "non-empty geometry": "drop the parcel or restore its geometry",
    "CRS known": "add the layer's .prj file (its national CRS)",
    "code column present": "use the {product} release files, which carry {code_column}",
    "non-empty layer": "re-download the layer",
}

DETAILS: Mapping[str, Mapping[str, str]] = {
    "image chips": {
        "band order": "its band descriptions give the order {band_order}, but shared.bands is {shared_bands}",
        "no all-zero band": "zero_bands = {zero_bands}",
        "not all nodata": "every pixel holds the image's nodata value in every band",
    },
    "raster products": {
        "declared CRS": "the product is in {crs} but params declare {declared_crs}",
        "nodata in crosswalk": "nodata value {nodata_code} is missing from {crosswalk}",
        "nodata maps to ignore": "nodata value {nodata_code} maps to {nodata_target} in {crosswalk}, not ignore",
    },
    "vector layers": {},
    "vector features": {
        "non-empty geometry": "{which} with code {code} {verb} an empty geometry",
        "integer code": "{which} {verb} code {code!r}",
    },
    "label windows": {
        "code in crosswalk": "code {code} ({pixels} px) is missing from {crosswalk}",
    },
}


def _size_fix(rule: str) -> str | None:
    if rule.endswith(("px high", "px wide")):
        return "cut chips at shared.chip_px pixels, or set shared.chip_px to the chips' size"
    if rule.endswith("m pixels"):
        return "resample chips to shared.resolution_m, or set it to the chips' pixel size"
    return None


def _fixes(table_failures: Sequence[str]) -> dict[str, str]:
    fixes = dict(FIXES)
    for rule in table_failures:
        extra = _size_fix(rule)
        if extra:
            fixes[rule] = extra
    return fixes


def table_problems(
    name: str, table: pl.DataFrame, schema: pa.DataFrameSchema, file_column: str, context: Mapping[str, str]
) -> list[Problem]:
    """Every failure of `schema` on the fact table `name`, told in its words (parcel codes grouped per layer)."""
    found = failures(table, schema)
    if "nodata" in table.columns:
        table = table.with_columns(nodata_code=pl.col("nodata").cast(pl.Int64, strict=False))
    if "parcels" in table.columns:  # a row counts the parcels of one code: "parcel 5 has", "3 parcels (5, 7, 9) have"
        one = pl.col("parcels") == 1
        more = pl.when(pl.col("parcels") > pl.col("examples").str.count_matches(",") + 1).then(pl.lit(", ..."))
        table = table.with_columns(
            which=pl.when(one)
            .then(pl.format("parcel {}", pl.col("examples")))
            .otherwise(
                pl.format("{} parcels ({}{})", pl.col("parcels"), pl.col("examples"), more.otherwise(pl.lit("")))
            ),
            verb=pl.when(one).then(pl.lit("has")).otherwise(pl.lit("have")),
        )
    words = Words(
        file="?",
        fix="see curation/core/fact_schemas.py",
        file_column=file_column,
        fixes=_fixes([f.rule for f in found]),
        details=DETAILS.get(name, {}),
        context=context,
    )
    problems: list[Problem] = []
    if name == "vector features":
        codes = [f for f in found if f.rule == "code in crosswalk" and f.row is not None]
        found = [f for f in found if f not in codes]
        problems += _unmapped_parcels(table, codes, context)
    return problems + [row_problem(f, table, words) for f in found]


def _unmapped_parcels(table: pl.DataFrame, found: Sequence[Failure], context: Mapping[str, str]) -> list[Problem]:
    """One problem per layer and code the crosswalk lacks, with its parcel count and first parcels."""
    groups: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for failure in found:
        assert failure.row is not None
        row = table.row(failure.row, named=True)
        count, examples = groups.get((str(row["layer"]), str(row["code"]).strip()), (0, []))
        groups[(str(row["layer"]), str(row["code"]).strip())] = (count + row["parcels"], [*examples, row["examples"]])
    code_name = context.get("code_name", "code")
    fix = fill(FIXES["code in crosswalk"], context) or FIXES["code in crosswalk"]
    return [
        Problem(
            layer,
            "code in crosswalk",
            f"{code_name} {code} of {count} parcel(s) (parcel {_first(examples, count)}) is missing from "
            f"{context.get('crosswalk', 'the crosswalk')}",
            fix,
        )
        for (layer, code), (count, examples) in sorted(groups.items())
    ]


def _first(examples: Sequence[str], count: int, shown: int = 5) -> str:
    """The first feature ids of several rows' example lists, ascending, and an ellipsis when there are more."""
    fids = sorted({int(fid) for text in examples for fid in text.split(", ") if fid})[:shown]
    return ", ".join(str(fid) for fid in fids) + (", ..." if count > len(fids) else "")
