"""One source's report: its gathered facts checked against every schema, plus the warnings no schema holds.

Errors stop the pipeline; warnings (a high ignore or nodata share, parcels without a code, invalid geometries the
reader repairs, files nobody reads) are listed and do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandera.polars as pa
import polars as pl

from curation.core.errors import Problem
from curation.core.fact_schemas import (
    LABEL_HISTOGRAMS_SCHEMA,
    RASTER_PRODUCTS_SCHEMA,
    VECTOR_FEATURES_SCHEMA,
    VECTOR_LAYERS_SCHEMA,
    image_chips_schema,
)
from curation.core.registry import source_info
from curation.core.schemas import rows_frame
from curation.core.shared import SharedParams
from curation.inputs.chip_refs import SourceInput
from curation.inputs.facts import ChipFacts, crosswalk_set, raster_rows, vector_rows
from curation.sources import LabelSource, get_source
from curation.sources.vector import VectorLabelSource
from curation.validate.config import ValidateParams
from curation.validate.words import table_problems


@dataclass
class Found:
    """What listing a source gave besides its chips: errors (bad names, links) and warnings (unused files)."""

    chip_years: set[int] = field(default_factory=set)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def validate_source(
    source: SourceInput, chips: list[ChipFacts], shared: SharedParams, params: ValidateParams, found: Found
) -> dict[str, Any]:
    """Check one source's gathered facts against every schema; the source's report."""
    name = source.name
    crosswalks = crosswalk_set(shared.legends_dir, shared.crosswalk_set)
    crosswalk, names = crosswalks[name], crosswalks.taxonomy.names
    errors = list(found.errors)
    context = {"crosswalk": crosswalk.path, "source": name, "shared_bands": ",".join(shared.bands)}
    context |= _words(get_source(name))
    tables: dict[str, pl.DataFrame] = {}
    kind = source_info(name).kind
    if kind == "raster":
        rows, problems = raster_rows(source, crosswalk, names, found.chip_years)
        errors += problems
        tables["raster products"] = rows_frame(rows, RASTER_PRODUCTS_SCHEMA)
        errors += table_problems("raster products", tables["raster products"], RASTER_PRODUCTS_SCHEMA, "file", context)
    elif kind == "vector":
        layers, features, problems = vector_rows(source, crosswalk, names)
        errors += problems
        tables["vector layers"] = rows_frame(layers, VECTOR_LAYERS_SCHEMA)
        tables["vector features"] = rows_frame(features, VECTOR_FEATURES_SCHEMA)
        errors += table_problems("vector layers", tables["vector layers"], VECTOR_LAYERS_SCHEMA, "layer", context)
        errors += table_problems("vector features", tables["vector features"], VECTOR_FEATURES_SCHEMA, "layer", context)
    image_schema = image_chips_schema(shared.bands, shared.chip_px, shared.resolution_m)
    images = [c.image for c in chips if c.image is not None]
    tables["image chips"] = rows_frame(images, image_schema)
    errors += table_problems("image chips", tables["image chips"], image_schema, "file", context)
    histograms = [row for c in chips for row in c.histogram]
    tables["label windows"] = rows_frame(histograms, LABEL_HISTOGRAMS_SCHEMA)
    files = {c.chip_id: row["file"] for c in chips if (row := c.image) is not None}
    labels = tables["label windows"].with_columns(
        file=pl.col("chip_id").replace_strict(files, default=str(source.labels))
    )
    label_schema = LABEL_HISTOGRAMS_SCHEMA.add_columns({"file": pa.Column(pl.String)})
    errors += table_problems("label windows", labels, label_schema, "file", context)
    errors += [p for c in chips for p in c.problems]
    warnings = _share_warnings(chips, files, str(source.labels), params)
    warnings += _missing_code_warnings(tables.get("vector features"), context)
    warnings += _geometry_warnings(tables.get("vector layers"))
    warnings += [w for c in chips for w in c.warnings]  # reader warnings per chip (pixels outside the labels)
    warnings += found.warnings
    return {
        "source": name,
        "crosswalk_set": shared.crosswalk_set,
        "chips": len(chips),
        "rows_checked": {table: _checked(df) for table, df in sorted(tables.items())},
        "errors": [as_row(p, name, "error") for p in dict.fromkeys(errors)],  # each distinct problem once
        "warnings": [as_row(p, name, "warning") for p in dict.fromkeys(warnings)],
        "ok": not errors,
    }


def _checked(table: pl.DataFrame) -> int:
    """What a fact table checked: its rows, or the parcels its rows count (one row per layer, code and emptiness)."""
    return int(table["parcels"].sum()) if "parcels" in table.columns else table.height


def _words(reader: type[LabelSource]) -> dict[str, str]:
    return reader.words() if issubclass(reader, VectorLabelSource) else {}


def _share_warnings(
    chips: list[ChipFacts], files: dict[str, str], labels: str, params: ValidateParams
) -> list[Problem]:
    """Chips mostly ignore in their labels, or mostly without data in their image (all of it is an error)."""
    warnings = [
        Problem(
            files.get(c.chip_id, labels),
            "ignore share",
            f"chip {c.chip_id}: {c.ignore_share:.0%} of its label pixels are ignore "
            f"(above {params.max_ignore_share:.0%})",
            "review the chip or its crosswalk rows; training and metrics skip ignore pixels",
        )
        for c in chips
        if c.ignore_share is not None and c.ignore_share > params.max_ignore_share
    ]
    for chip in chips:
        share = None if chip.image is None else chip.image["nodata_share"]
        if share is not None and params.max_nodata_share < share < 1.0:
            warnings.append(
                Problem(
                    files.get(chip.chip_id, labels),
                    "nodata share",
                    f"chip {chip.chip_id}: {share:.0%} of its pixels hold no data in any band "
                    f"(above validate.max_nodata_share {params.max_nodata_share:.0%})",
                    "review or remove the chip; chips labels those pixels ignore, so training skips them",
                )
            )
    return warnings


def _missing_code_warnings(features: pl.DataFrame | None, words: dict[str, str]) -> list[Problem]:
    """Parcels without a code are rasterized as ignore (crosswalk code 0): worth knowing, not an error."""
    if features is None or features.is_empty():
        return []
    missing = features.filter(pl.col("code").is_null()).group_by("layer").agg(pl.col("parcels").sum()).sort("layer")
    return [
        Problem(
            layer,
            "code present",
            f"{count} parcel(s) have no {words['code_column']} code and are read as code 0 (ignore)",
            f"add their {words['code_name']}s if they are crops",
        )
        for layer, count in missing.iter_rows()
    ]


def _geometry_warnings(layers: pl.DataFrame | None) -> list[Problem]:
    """Invalid parcel geometries, counted per layer: the reader repairs them (make_valid) when it rasterizes."""
    if layers is None or layers.is_empty():
        return []
    invalid = layers.filter(pl.col("invalid_geometries") > 0).sort("layer")
    return [
        Problem(
            layer,
            "valid geometry",
            f"{count} parcel(s) have an invalid geometry (e.g. self-crossing edges); validate and chips read them "
            "repaired with shapely.make_valid",
            "nothing needed to run; to fix the source, repair the layer (QGIS 'Fix geometries', or "
            "shapely.make_valid and save it again)",
        )
        for layer, count in invalid.select("layer", "invalid_geometries").iter_rows()
    ]


def as_row(problem: Problem, source: str, severity: str) -> dict[str, str]:
    """A problem as a row of the failures table."""
    return {
        "severity": severity,
        "source": source,
        "file": problem.file,
        "rule": problem.rule,
        "detail": problem.detail,
        "fix": problem.fix,
    }
