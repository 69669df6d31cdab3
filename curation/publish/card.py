"""The data card of a release (README.md): what the data are, where they come from, how balanced, how to cite.

The card is written from the release's own files (manifest, class counts, subsets, validation summary) and its
ReleaseInfo, so it cannot disagree with the data it describes. It is deterministic: the release date is its only
date and every table has a fixed order, so an unchanged release gives a byte-identical card (DVC and SHA256SUMS
rely on that).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from curation.core.io import atomic_write_text
from curation.publish.info import (
    CARD,
    CHIPS,
    CLASS_COUNTS,
    CROISSANT,
    CROSSWALKS,
    MANIFEST,
    RELEASE,
    STAC_DIR,
    SUBSETS,
    SUMS,
    VALIDATION,
    ReleaseInfo,
)

SUMMARY = f"{VALIDATION}/summary.json"
IDENTITY = ("source", "code", "name")  # the keys of a differences row that are not crosswalk sets
FILES = (
    (CARD, "this data card"),
    (SUMS, "sha256 of every other file (`sha256sum -c SHA256SUMS`)"),
    (RELEASE, "version, counts, fingerprints (crosswalks, chips, subsets) and every other file's sha256"),
    (CROISSANT, "Croissant JSON-LD metadata"),
    (f"{STAC_DIR}/", "STAC collection, one item per chip (label extension)"),
    (MANIFEST, "one row per chip: source, grid, bounds, per-class pixel counts, image and label paths"),
    (CLASS_COUNTS, "pixels of each class and chips holding it, per source and subset (the tables below)"),
    (f"{SUBSETS.split('/')[0]}/", "subset memberships (subsets.parquet) and the study's CSV lists"),
    (f"{CROSSWALKS}/", "the taxonomy and crosswalk CSVs used, and the comparison with the other sets"),
    (f"{VALIDATION}/", "the validate run: summary, one report per source, failure table"),
    (f"{CHIPS}/", "`<source>/images/<chip_id>.tif` (Sentinel-2) and `<source>/labels/<chip_id>.tif` (class ids)"),
)
VERSIONING = (
    "Versions are semantic, so a version number says whether results stay comparable: a changed crosswalk, a "
    "changed or removed chip, or a re-split (changed subset memberships) is a major version; added chips or "
    "subsets with nothing old changed are a minor version; fixed metadata (this card, descriptions) with identical "
    "data is a patch."
)


def cell(value: Any) -> str:  # noqa: ANN401 - any printable value
    """A table cell: pipes escaped and newlines flattened, so free text (citations, notes) cannot break a row."""
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """The lines of a Markdown table."""
    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows]


def years(values: Sequence[int]) -> str:
    """`2001-2021` for a consecutive run, else a list: the registry lists every year, which is too long to read."""
    ordered = sorted(values)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(map(str, ordered))


def ignore_name(info: ReleaseInfo) -> str:
    """The name of class id 0: the taxonomy is data, so the card does not assume it is called `ignore`."""
    return info.class_names[info.class_ids.index(0)] if 0 in info.class_ids else "ignore"


def _bibtex(info: ReleaseInfo) -> list[str]:
    """A BibTeX entry for the release: a version is cited, not the moving project."""
    fields = {"title": info.title, "version": info.version, "year": info.date[:4], "note": f"Released {info.date}"}
    fields |= {"url": info.url} if info.url else {}
    entry = [f"@misc{{cropharmony_{info.version.replace('.', '_')},"]
    entry += [f"  {key} = {{{value}}}," for key, value in fields.items()]
    return ["```bibtex", *entry, "}", "```"]


def _header(info: ReleaseInfo, manifest: pl.DataFrame) -> list[str]:
    """Title, synthetic banner, summary, citation, verification and import: what a user needs first."""
    lines = [f"# {info.title} {info.version}", ""]
    if info.synthetic is not None:
        world = info.synthetic
        lines += [
            f"> **Synthetic data.** The chips and labels of this release come from cropharmony's generated demo "
            f"world (seed {world.get('seed')}, {world.get('chips_per_source')} chips per source, "
            f"{world.get('chip_px')} x {world.get('chip_px')} px). They are not real observations: use them to try "
            "the toolkit, never to draw conclusions about crops.",
            "",
        ]
    url = info.url or "not public yet"
    lines += [
        "## Summary",
        "",
        info.description,
        "",
        f"- Version: {info.version}, released {info.date}",
        f"- Licence of the harmonized labels and metadata: {info.licence} (each source keeps its own, see Sources)",
        f"- URL: {url}",
        f"- Crosswalk set: `{info.crosswalk_set}`",
        f"- {manifest.height} chips from {manifest['source'].n_unique()} sources",
        f"- Chip size: {info.chip_px} x {info.chip_px} px at {info.resolution_m:g} m",
        f"- Band order: {', '.join(info.bands)}",
        "",
        "Cite:",
        "",
        *_bibtex(info),
        "",
        f"Verify the files, in this folder: `sha256sum -c {SUMS}`; with the toolkit, `cropharmony publish verify "
        f"{info.path}` also checks that no listed path leaves the folder and that release.json and the metadata "
        "agree with the files.",
        "",
        f"Import with DVC: `dvc import {info.url or '<repository url>'} {info.path} --rev {info.tag}`.",
    ]
    return lines


def _sources(info: ReleaseInfo, manifest: pl.DataFrame) -> list[str]:
    """Provenance per source, with the chips released from it."""
    released = dict(manifest.group_by("source").len().rows())
    rows: list[list[Any]] = []
    for s in info.sources:
        doi = f"[{s.doi}](https://doi.org/{s.doi})" if s.doi else "none"
        rows.append([s.name, s.title, f"{s.region} ({s.continent})", years(s.years), s.licence, s.citation, doi])
        rows[-1].append(released.get(s.name, 0))
    note = (
        f"Each source keeps its own licence: the {info.licence} of the harmonized labels does not replace it, and "
        "using a source's chips binds you to its licence and citation."
    )
    header = ["source", "title", "region", "years", "licence", "citation", "DOI", "chips"]
    return ["## Sources", "", note, "", *table(header, rows)]


def _classes(info: ReleaseInfo) -> list[str]:
    """The taxonomy, and what `ignore` and `other` mean (they differ from a plain land-cover reading)."""
    ignore = ignore_name(info)
    rows = [[i, n, f"`{c}`"] for i, n, c in zip(info.class_ids, info.class_names, info.class_colors, strict=True)]
    text = (
        f"Id 0 `{ignore}` marks pixels without a usable label: nodata, ambiguous codes (e.g. CDL double crops, "
        "clouds) and land outside declared parcels. It is not a land cover: losses and metrics skip it. `other` "
        "keeps its per-source meaning: in CDL it includes non-crop land (forest, water, developed); in EuroCrops "
        "it is only other declared crops, because land outside parcels is ignore."
    )
    return ["## Classes", "", *table(["id", "name", "colour"], rows), "", text]


def _crosswalks(info: ReleaseInfo) -> list[str]:
    """Decision rows of the crosswalk set used, and every code the other sets map differently."""
    lines = ["## Crosswalk decisions", "", f"Rows of the `{info.crosswalk_set}` set marked as decisions:", ""]
    if info.decisions:
        keys = ("source", "code", "name", "target", "note")
        lines += table(keys, [[d[k] for k in keys] for d in info.decisions])
    else:
        lines.append("No crosswalk row carries a decision note.")
    sets = sorted(
        {k for row in info.differences for k in row} - set(IDENTITY), key=lambda n: (n != info.crosswalk_set, n)
    )
    per_source = {s.name: 0 for s in info.sources}
    for row in info.differences:
        per_source[row["source"]] = per_source.get(row["source"], 0) + 1
    counts = ", ".join(f"{name} {n}" for name, n in per_source.items())
    others = ", ".join(f"`{name}`" for name in sets if name != info.crosswalk_set) or "the other sets"
    lines += ["", f"Codes {others} map differently from `{info.crosswalk_set}`, per source: {counts}.", ""]
    if info.differences:
        lines += table(
            [*IDENTITY, *sets], [[*(r[k] for k in IDENTITY), *(r.get(s, "") for s in sets)] for r in info.differences]
        )
    return lines


def _chip_counts(release: Path, counts: pl.DataFrame, manifest: pl.DataFrame) -> pl.DataFrame:
    """Chips per source and subset: from the subset memberships, else from pixels when chips share one size."""
    if (release / SUBSETS).is_file():
        return pl.read_parquet(release / SUBSETS).group_by("source", "split", "size").agg(subset_chips=pl.len())
    per_chip = manifest.group_by("source").agg(px=(pl.col("height") * pl.col("width")).unique())
    uniform = per_chip.filter(pl.col("px").list.len() == 1).with_columns(pl.col("px").list.first())
    totals = counts.group_by("source", "split", "size").agg(pl.col("pixels").sum())
    return totals.join(uniform, on="source").select("source", "split", "size", subset_chips=pl.col("pixels") // "px")


def _subset_rows(counts: pl.DataFrame, classes: Sequence[str]) -> list[list[Any]]:
    """One row per subset (train by size, then test): each class's percent of all the subset's pixels, and chips."""
    rows: list[list[Any]] = []
    for split, size in counts.select("split", "size").unique().sort(pl.col("split") != "train", "size").rows():
        part = counts.filter(pl.col("split") == split, pl.col("size") == size)
        pixels = dict(part.group_by("class").agg(pl.col("pixels").sum()).rows())
        total = sum(pixels.values())
        shares = [f"{100 * pixels.get(c, 0) / total:.1f}" if total else "n/a" for c in classes]
        chips = part.select("source", "subset_chips").unique()["subset_chips"]
        rows.append([f"{split} {size}", *shares, chips.sum() if chips.null_count() == 0 else "n/a"])
    return rows


def _balance(release: Path, info: ReleaseInfo, manifest: pl.DataFrame) -> list[str]:
    """Class shares per source and subset, and across sources per split, exactly as in class_counts.csv."""
    counts = pl.read_csv(release / CLASS_COUNTS, schema_overrides={"size": pl.Int64, "pixels": pl.Int64})
    chips = _chip_counts(release, counts, manifest)
    counts = counts.join(chips, on=["source", "split", "size"], how="left")
    header = ["subset", *(f"{c} %" for c in info.class_names), "chips"]
    lines = [
        "## Class balance",
        "",
        f"Percent of all pixels of each subset (`{ignore_name(info)}` included); chips: chips in the subset. "
        f"`{CLASS_COUNTS}` holds the pixel counts.",
    ]
    present = set(counts["source"].to_list())
    order = [s.name for s in info.sources if s.name in present]
    for source in [*order, *sorted(present - set(order))]:  # registry order, as in the Sources table
        lines += ["", f"### {source}", ""]
        lines += table(header, _subset_rows(counts.filter(pl.col("source") == source), info.class_names))
    for split in ("train", "test"):  # a release holds no `test_random` set (publish.stage._chosen leaves it out)
        part = counts.filter(pl.col("split") == split)
        if not part.is_empty():
            lines += ["", f"### All sources, {split}", "", *table(header, _subset_rows(part, info.class_names))]
    return lines


def _validation(summary: dict[str, Any]) -> list[str]:
    """The validate run's verdict per source."""
    rows = [
        [name, s["chips"], "yes" if s["errors"] == 0 else "no", s["errors"], s["warnings"]]
        for name, s in sorted(summary["sources"].items())
    ]
    verdict = "passed" if summary.get("ok") else "FAILED"
    head = f"The validate run {verdict} (crosswalk set `{summary.get('crosswalk_set')}`); reports in `{VALIDATION}/`."
    return ["## Validation", "", head, "", *table(["source", "chips", "ok", "errors", "warnings"], rows)]


def card_text(release: Path, info: ReleaseInfo) -> str:
    """The data card as Markdown, from the release folder's files and `info`."""
    manifest = pl.read_parquet(release / MANIFEST)
    summary: dict[str, Any] = json.loads((release / SUMMARY).read_text(encoding="utf-8"))
    lines = [
        *_header(info, manifest),
        "",
        *_sources(info, manifest),
        "",
        *_classes(info),
        "",
        *_crosswalks(info),
        "",
        *_balance(release, info, manifest),
        "",
        *_validation(summary),
        "",
        "## Files",
        "",
        *(f"- `{name}`: {what}" for name, what in FILES),
        "",
        "## Version and changelog",
        "",
        *(f"- {version}: {text}" for version, text in info.changelog),
        "",
        VERSIONING,
        "",
    ]
    return "\n".join(lines)


def write_card(release: Path, info: ReleaseInfo) -> Path:
    """Write `release/README.md` atomically (temporary file beside it, then rename); returns its path."""
    path = release / CARD
    atomic_write_text(path, card_text(release, info))
    return path
