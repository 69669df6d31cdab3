"""Stage `validate`: every source's label product and image chips checked against Pandera schemas, lazily.

Facts are gathered first (raster headers, parcel attributes and geometry, image chip headers and pixels, the native
code histogram of every chip window), then each table is validated once with every failure collected. Reports go to
`reports/validation/`: one JSON per source, `summary.json`, `failures.parquet` (errors and warnings, the table
the app shows) and `label_histograms.parquet` (pixels per native code of every chip window: the app's view of the
labels before harmonization). Any error stops the pipeline with a short summary naming the files; warnings do not.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl

from curation.core.artifacts import FAILURES, HISTOGRAMS, VALIDATION_SUMMARY
from curation.core.errors import CropharmonyError, Problem, ProblemsError
from curation.core.fact_schemas import (
    LABEL_HISTOGRAMS_SCHEMA,
    RASTER_PRODUCTS_SCHEMA,
    VECTOR_FEATURES_SCHEMA,
    VECTOR_LAYERS_SCHEMA,
    image_chips_schema,
)
from curation.core.failures import Words, failures, row_problem
from curation.core.io import atomic_write_json, atomic_write_parquet, stage_output
from curation.core.parallel import run_tasks
from curation.core.params import load_section
from curation.core.registry import source_info
from curation.core.runner import run_stage
from curation.core.schemas import rows_frame
from curation.core.shared import SharedParams
from curation.inputs.chip_refs import ChipRef, list_chips, source_inputs
from curation.inputs.facts import (
    ChipFacts,
    ChipTask,
    chip_facts,
    crosswalk_set,
    problem_from,
    raster_rows,
    vector_rows,
)
from curation.sources import LabelSource, get_source
from curation.sources.vector import VectorLabelSource
from curation.validate.config import ValidateParams

SHOWN = 20  # problems listed in the stage's error message; the reports hold all of them

FIXES = {
    "13 bands": "write chips with the 13 Sentinel-2 bands in shared.bands order",
    "uint16": "write chips as uint16 L1C reflectance (digital numbers)",
    "CRS present": "write the file with its CRS (gdal_edit.py -a_srs EPSG:...)",
    "transform present": "write the chip with its geotransform",
    "no all-zero band": "re-export the chip: a band holding only zeros is missing data",
    "declared CRS": "use the product as published, or set shared.sources.{source}.label_crs to its real CRS",
    "nodata in crosswalk": "add the nodata value to {crosswalk} (target ignore)",
    "integer codes": "use the product's original integer-coded raster",
    "positive resolution": "fix the file's geotransform",
    "code in crosswalk": "add a row (code,name,target) for it to {crosswalk}; target ignore to leave it out",
    "integer code": "correct the parcel's {code_column} attribute to {a_code}",
    "valid geometry": "repair the parcel geometry (e.g. shapely.make_valid or QGIS 'Fix geometries')",
    "non-empty geometry": "drop the parcel or restore its geometry",
    "CRS known": "add the layer's .prj file (its national CRS)",
    "code column present": "use the {product} release files, which carry {code_column}",
    "non-empty layer": "re-download the layer",
}


DETAILS = {
    "code in crosswalk": "code {code} ({pixels} px) is missing from {crosswalk}",
    "declared CRS": "the product is in {crs} but params declare {declared_crs}",
    "nodata in crosswalk": "nodata value {nodata} is missing from {crosswalk}",
    "valid geometry": "parcel {feature} (code {code}) has an invalid geometry",
    "non-empty geometry": "parcel {feature} (code {code}) has an empty geometry",
    "integer code": "parcel {feature} has code {code!r}",
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


def _table_problems(
    table: pl.DataFrame, schema: pa.DataFrameSchema, file_column: str, context: dict[str, str]
) -> list[Problem]:
    found = failures(table, schema)
    words = Words(
        file="?",
        fix="see curation/core/fact_schemas.py",
        file_column=file_column,
        fixes=_fixes([f.rule for f in found]),
        details=DETAILS,
        context=context,
    )
    return [row_problem(f, table, words) for f in found]


def validate_source(
    name: str,
    chips: list[ChipFacts],
    shared: SharedParams,
    params: ValidateParams,
    product_problems: list[Problem],
) -> dict[str, Any]:
    """Check one source's gathered facts against every schema; the source's report."""
    source = next(s for s in source_inputs(shared) if s.name == name)
    crosswalks = crosswalk_set(shared.legends_dir, shared.crosswalk_set)
    crosswalk, names = crosswalks[name], crosswalks.taxonomy.names
    errors = list(product_problems)
    context = {"crosswalk": crosswalk.path, "source": name, **_words(get_source(name))}
    tables: dict[str, pl.DataFrame] = {}
    kind = source_info(name).kind
    if kind == "raster":
        rows, problems = raster_rows(source, crosswalk, names)
        errors += problems
        tables["raster products"] = rows_frame(rows, RASTER_PRODUCTS_SCHEMA)
        errors += _table_problems(tables["raster products"], RASTER_PRODUCTS_SCHEMA, "file", context)
    elif kind == "vector":
        layers, features, problems = vector_rows(source, crosswalk, names)
        errors += problems
        tables["vector layers"] = rows_frame(layers, VECTOR_LAYERS_SCHEMA)
        tables["vector features"] = rows_frame(features, VECTOR_FEATURES_SCHEMA)
        errors += _table_problems(tables["vector layers"], VECTOR_LAYERS_SCHEMA, "layer", context)
        errors += _table_problems(tables["vector features"], VECTOR_FEATURES_SCHEMA, "layer", context)
    image_schema = image_chips_schema(len(shared.bands), shared.chip_px, shared.resolution_m)
    images = [c.image for c in chips if c.image is not None]
    tables["image chips"] = rows_frame(images, image_schema)
    errors += _table_problems(tables["image chips"], image_schema, "file", context)
    histograms = [row for c in chips for row in c.histogram]
    tables["label windows"] = rows_frame(histograms, LABEL_HISTOGRAMS_SCHEMA)
    files = {c.chip_id: row["file"] for c in chips if (row := c.image) is not None}
    labels = tables["label windows"].with_columns(
        file=pl.col("chip_id").replace_strict(files, default=str(source.labels))
    )
    errors += _table_problems(
        labels, LABEL_HISTOGRAMS_SCHEMA.add_columns({"file": pa.Column(pl.String)}), "file", context
    )
    errors += [p for c in chips for p in c.problems]
    warnings = [
        Problem(
            files.get(c.chip_id, str(source.labels)),
            "ignore share",
            f"chip {c.chip_id}: {c.ignore_share:.0%} of its label pixels are ignore "
            f"(above {params.max_ignore_share:.0%})",
            "review the chip or its crosswalk rows; training and metrics skip ignore pixels",
        )
        for c in chips
        if c.ignore_share is not None and c.ignore_share > params.max_ignore_share
    ]
    warnings += _missing_code_warnings(tables.get("vector features"), context)
    return {
        "source": name,
        "crosswalk_set": shared.crosswalk_set,
        "chips": len(chips),
        "rows_checked": {table: df.height for table, df in sorted(tables.items())},
        "errors": [_as_row(p, name, "error") for p in errors],
        "warnings": [_as_row(p, name, "warning") for p in warnings],
        "ok": not errors,
    }


def _words(reader: type[LabelSource]) -> dict[str, str]:
    return reader.words() if issubclass(reader, VectorLabelSource) else {}


def _missing_code_warnings(features: pl.DataFrame | None, words: dict[str, str]) -> list[Problem]:
    """Parcels without a code are rasterized as ignore (crosswalk code 0): worth knowing, not an error."""
    if features is None or features.is_empty():
        return []
    missing = features.filter(pl.col("code").is_null()).group_by("layer").len().sort("layer")
    return [
        Problem(
            layer,
            "code present",
            f"{count} parcel(s) have no {words['code_column']} code and are read as code 0 (ignore)",
            f"add their {words['code_name']}s if they are crops",
        )
        for layer, count in missing.iter_rows()
    ]


def _as_row(problem: Problem, source: str, severity: str) -> dict[str, str]:
    return {
        "severity": severity,
        "source": source,
        "file": problem.file,
        "rule": problem.rule,
        "detail": problem.detail,
        "fix": problem.fix,
    }


def run(shared: SharedParams, params: ValidateParams) -> dict[str, Any]:
    """Validate every source and write the reports folder atomically; returns the summary."""
    crosswalk_set(shared.legends_dir, shared.crosswalk_set)  # a broken crosswalk stops here, once
    refs: list[ChipRef] = []
    listing: dict[str, list[Problem]] = {}
    for source in source_inputs(shared):
        try:
            found = list_chips(source)
        except CropharmonyError as exc:
            listing[source.name] = [problem_from(exc, str(source.images or source.labels))]
            continue
        listing[source.name] = []
        refs += found
    tasks = [ChipTask(ref, shared.legends_dir, shared.crosswalk_set, shared.bands) for ref in refs]
    facts = run_tasks(chip_facts, tasks, shared.dask, "validate")
    reports = {
        name: validate_source(name, [f for f in facts if f.source == name], shared, params, problems)
        for name, problems in listing.items()
    }
    rows = [row for report in reports.values() for kind in ("errors", "warnings") for row in report[kind]]
    table = pl.DataFrame(
        rows, schema={k: pl.String for k in ("severity", "source", "file", "rule", "detail", "fix")}, orient="row"
    ).sort("severity", "source", "file", "rule", "detail")
    summary = {
        "ok": all(r["ok"] for r in reports.values()),
        "crosswalk_set": shared.crosswalk_set,
        "sources": {
            name: {"chips": r["chips"], "errors": len(r["errors"]), "warnings": len(r["warnings"])}
            for name, r in reports.items()
        },
    }
    histograms = rows_frame([row for f in facts for row in f.histogram], LABEL_HISTOGRAMS_SCHEMA)
    _write(params.out, reports, table, summary, histograms.sort("source", "chip_id", "code"))
    return summary | {"table": table}


def _write(
    out: Path,
    reports: dict[str, dict[str, Any]],
    table: pl.DataFrame,
    summary: dict[str, Any],
    histograms: pl.DataFrame,
) -> None:
    with stage_output(out) as tmp:
        for name, report in reports.items():
            atomic_write_json(tmp / f"{name}.json", report)
        atomic_write_json(tmp / VALIDATION_SUMMARY, summary)
        atomic_write_parquet(tmp / FAILURES, table)
        atomic_write_parquet(tmp / HISTOGRAMS, histograms)


def check(shared: SharedParams, params: ValidateParams) -> dict[str, Any]:
    """Run validation; raise one error listing the failures (first few) when any rule is broken."""
    summary = run(shared, params)
    table: pl.DataFrame = summary.pop("table")
    errors = table.filter(pl.col("severity") == "error")
    if errors.height:
        problems = [
            Problem(r["file"], r["rule"], r["detail"], r["fix"]) for r in errors.head(SHOWN).iter_rows(named=True)
        ]
        more = f"; {errors.height - SHOWN} more" if errors.height > SHOWN else ""
        files = errors["file"].n_unique()
        raise ProblemsError(
            f"validation failed: {errors.height} error(s) in {files} file(s){more}; every failure is in "
            f"{params.out / FAILURES}",
            problems,
        )
    return summary


def _run(args: argparse.Namespace) -> str:
    shared = load_section(SharedParams, args.params)
    params = load_section(ValidateParams, args.params)
    summary = check(shared, params)
    warnings = sum(s["warnings"] for s in summary["sources"].values())
    chips = sum(s["chips"] for s in summary["sources"].values())
    return f"validate: {chips} chips of {len(summary['sources'])} sources pass; {warnings} warning(s) in {params.out}"


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point."""
    run_stage("validate", _run, argv)


if __name__ == "__main__":
    main()
