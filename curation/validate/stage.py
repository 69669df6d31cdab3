"""Stage `validate`: every source's label product and image chips checked against Pandera schemas, lazily.

Facts are gathered first (raster headers, parcel attributes and geometry, image chip headers and then pixels in
strips, the native code histogram of every chip window), then each table is validated once with every failure
collected. Links under the source folders and unusable file names are errors; files nobody reads are warnings
(rule "unused file"). Reports go to `reports/validation/`: one JSON per source, `summary.json`, `failures.parquet`
(errors and warnings, the table the app shows) and `label_histograms.parquet` (pixels per native code of every
chip window: the app's view of the labels before harmonization). Any error stops the pipeline with a short summary
naming the files; warnings do not.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from curation.core.artifacts import FAILURES, HISTOGRAMS, VALIDATION_SUMMARY
from curation.core.errors import CropharmonyError, Problem, ProblemsError
from curation.core.fact_schemas import LABEL_HISTOGRAMS_SCHEMA
from curation.core.io import atomic_write_json, atomic_write_parquet, stage_output
from curation.core.parallel import run_tasks
from curation.core.params import load_section
from curation.core.registry import source_info
from curation.core.runner import run_stage
from curation.core.schemas import rows_frame
from curation.core.shared import SharedParams
from curation.inputs.chip_refs import ChipRef, SourceInput, by_source, scan_chips, source_inputs
from curation.inputs.facts import ChipFacts, ChipTask, chip_facts, crosswalk_set, problem_from
from curation.inputs.links import link_problems
from curation.inputs.unused import unused_inputs
from curation.sources import SOURCES
from curation.sources.vector import VectorLabelSource
from curation.validate.config import ValidateParams
from curation.validate.source import Found, as_row, validate_source

OTHER_INPUTS = "inputs"  # the failures table's source for rows under no source's folder (e.g. crosswalk files)
COLUMNS = ("severity", "source", "file", "rule", "detail", "fix")

SHOWN = 20  # problems listed in the stage's error message; the reports hold all of them


def find(shared: SharedParams) -> tuple[list[ChipRef], dict[str, Found], list[Problem]]:
    """Every source's chips and what listing them found; the unused inputs under no source's folder."""
    sources = source_inputs(shared)
    refs: list[ChipRef] = []
    found: dict[str, Found] = {}
    for source in sources:
        found[source.name] = listed = Found(errors=link_problems(source))
        try:
            listing = scan_chips(source)
        except CropharmonyError as exc:
            listed.errors.append(problem_from(exc, str(source.images or source.labels)))
            continue
        refs += listing.refs
        listed.errors += listing.errors
        listed.warnings += listing.unused
        listed.chip_years = {ref.year for ref in listing.refs}
    unused = by_source([w for f in found.values() for w in f.warnings] + unused_inputs(shared), sources)
    for name, listed in found.items():
        listed.warnings = unused.get(name, [])
    return refs, found, unused.get(None, [])


def run(shared: SharedParams, params: ValidateParams) -> dict[str, Any]:
    """Validate every source and write the reports folder atomically; returns the summary."""
    crosswalk_set(shared.legends_dir, shared.crosswalk_set)  # a broken crosswalk stops here, once
    refs, found, other = find(shared)
    tasks = [ChipTask(ref, shared.legends_dir, shared.crosswalk_set, shared.bands, shared.chip_px) for ref in refs]
    facts = _gather(tasks, shared)
    sources: dict[str, SourceInput] = {s.name: s for s in source_inputs(shared)}
    reports = {
        name: validate_source(sources[name], [f for f in facts if f.source == name], shared, params, listed)
        for name, listed in found.items()
    }
    rows = [row for report in reports.values() for kind in ("errors", "warnings") for row in report[kind]]
    rows += [as_row(p, OTHER_INPUTS, "warning") for p in other]
    table = (  # one row per distinct problem: a broken product file met by every chip is one failure, not one per chip
        pl.DataFrame(rows, schema={k: pl.String for k in COLUMNS}, orient="row")
        .unique(maintain_order=True)
        .sort("severity", "source", "file", "rule", "detail")
    )
    summary = {
        "ok": all(r["ok"] for r in reports.values()),
        "crosswalk_set": shared.crosswalk_set,
        "sources": {
            name: {"chips": r["chips"], "errors": len(r["errors"]), "warnings": len(r["warnings"])}
            for name, r in reports.items()
        },
        OTHER_INPUTS: {"warnings": len(other)},
    }
    histograms = rows_frame([row for f in facts for row in f.histogram], LABEL_HISTOGRAMS_SCHEMA)
    _write(params.out, reports, table, summary, histograms.sort("source", "chip_id", "code"))
    return summary | {"table": table}


def _gather(tasks: list[ChipTask], shared: SharedParams) -> list[ChipFacts]:
    """Every chip's facts, in the order of `tasks`.

    On a cluster, the parcel layers' indexes are built here while the workers read the other sources' chips, whose
    tasks go first: otherwise the first worker to meet a vector chip builds the index and every other worker waits
    on its lock. In-process (`synchronous`), the first read builds it, as before.
    """
    if shared.dask.scheduler == "synchronous" or not any(_is_vector(t) for t in tasks):
        return run_tasks(chip_facts, tasks, shared.dask, "validate")
    order = sorted(range(len(tasks)), key=lambda i: _is_vector(tasks[i]))  # stable: vector chips last, in order
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="layer-index") as pool:
        building = pool.submit(_index_layers, [t.ref for t in tasks if _is_vector(t)])
        done = run_tasks(chip_facts, [tasks[i] for i in order], shared.dask, "validate")
        building.result()  # a bug in the build stops the stage; input errors are reported by the reads
    facts: list[ChipFacts | None] = [None] * len(tasks)
    for i, fact in zip(order, done, strict=True):
        facts[i] = fact
    return [f for f in facts if f is not None]


def _is_vector(task: ChipTask) -> bool:
    return source_info(task.ref.source.name).kind == "vector"


def _index_layers(refs: list[ChipRef]) -> None:
    """Build (or find) the layer indexes of the vector sources the chips read; a reader error is left to the reads.

    The index is built under a file lock (`curation.sources.layer_index`), so a worker that reaches a vector chip
    before the build ends waits and then reads it; readers here are this thread's own, not the cached ones.
    """
    for source, year in dict.fromkeys((ref.source, ref.year) for ref in refs):
        try:
            product = SOURCES[source.name](source.labels, year=year)
            if isinstance(product, VectorLabelSource):
                product.index_layers()
        except CropharmonyError:
            continue  # the chips' reads and vector_rows report it, naming the file


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
    warnings = sum(s["warnings"] for s in summary["sources"].values()) + summary[OTHER_INPUTS]["warnings"]
    chips = sum(s["chips"] for s in summary["sources"].values())
    return f"validate: {chips} chips of {len(summary['sources'])} sources pass; {warnings} warning(s) in {params.out}"


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point."""
    run_stage("validate", _run, argv)


if __name__ == "__main__":
    main()
