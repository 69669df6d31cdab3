"""Croissant JSON-LD of a release (`croissant.json`), and the checks that read it back through mlcroissant.

Croissant (https://mlcommons.org/croissant/) is what dataset hubs and ML loaders read to find the files of a
dataset and the records inside them. The release's description points at its own files by relative path
(`contentUrl: manifest.parquet`): the JSON-LD stays valid wherever the release folder is copied or `dvc import`-ed,
and mlcroissant resolves those paths against the folder holding croissant.json.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlcroissant as mlc
import polars as pl
from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

from curation.core.io import atomic_write_text, sha256_file
from curation.core.schemas import class_column
from curation.publish.info import CLASS_COUNTS, CROISSANT, MANIFEST, SUBSETS, ReleaseInfo

CROISSANT_VERSION = "http://mlcommons.org/croissant/1.1"
PARQUET = "application/x-parquet"  # mlcroissant's name for Parquet (mlc.EncodingFormat.PARQUET)
CSV = "text/csv"
TIFF = "image/tiff"
CLASS_COUNT_COLUMNS = ("source", "split", "size", "class", "pixels", "chips")
KEYWORDS = ("crop type", "agriculture", "Sentinel-2", "semantic segmentation", "benchmark", "remote sensing")

FILE_DESCRIPTIONS = {
    MANIFEST: "One row per released chip: source, region, year, CRS and bounds, WGS84 centre, pixels per class, "
    "file paths relative to chips/.",
    CLASS_COUNTS: "Pixels of each class, and chips holding any of it, per source and released subset.",
    SUBSETS: "Subset membership: one row per chip and subset (split train or test, training-set size).",
}
COLUMN_DESCRIPTIONS = {
    "chip_id": "Chip identifier, unique within its source (the file stem of its image and label).",
    "source": "Label source (registry name, e.g. cdl, eurocrops).",
    "region": "Region the source covers.",
    "continent": "Continent of the source.",
    "year": "Label year.",
    "lon": "Chip centre longitude (WGS84, degrees).",
    "lat": "Chip centre latitude (WGS84, degrees).",
    "dominant": "Class holding the most pixels of the chip.",
    "image_path": "Image GeoTIFF, relative to the release's chips/ folder.",
    "label_path": "Label GeoTIFF (class ids), relative to the release's chips/ folder.",
    "split": "train or test.",
    "size": "Nominal subset size in chips per source (a training size, or the test set's size for split test).",
    "class": "Target class name.",
    "pixels": "Pixels of the class in the subset's chips.",
    "chips": "Chips of the subset holding at least one pixel of the class.",
}


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the deprecations mlcroissant 1.1 triggers in rdflib and pandas: they say nothing about the release."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def spdx_licence(licence: str) -> str | None:
    """The canonical SPDX identifier of a licence, or None when it is not a single SPDX licence.

    STAC's `license` takes an SPDX identifier or `other`, and Croissant recommends an SPDX URL, so both writers need
    to know whether the configured licence is one. Expressions (`MIT OR Apache-2.0`) and `LicenseRef-` names are
    not single known licences: they are reported as None (STAC's pattern forbids the spaces anyway).
    """
    try:
        canonical = str(canonicalize_license_expression(licence))
    except InvalidLicenseExpression:
        return None
    if " " in canonical or canonical.startswith("LicenseRef-"):
        return None
    return canonical


def full_description(info: ReleaseInfo) -> str:
    """The release description, with a warning when the chips are the generated demo world rather than real data."""
    if info.synthetic is None:
        return info.description
    return f"{info.description} Synthetic data: the chips and labels are the generated demo world, not observations."


def _cite_as(info: ReleaseInfo) -> str:
    """A BibTeX entry for the release (braces stripped from the text, so the entry always parses)."""

    def clean(text: str) -> str:
        return " ".join(text.replace("{", "").replace("}", "").split())

    sources = "; ".join(clean(s.citation) for s in info.sources)
    lines = [
        f"@misc{{cropharmony_{info.version.replace('.', '_').replace('-', '_').replace('+', '_')},",
        f"  title = {{{clean(info.title)}}},",
        f"  version = {{{info.version}}},",
        f"  year = {{{info.date[:4]}}},",
        *([f"  howpublished = {{\\url{{{info.url}}}}},"] if info.url else []),
        f"  note = {{Harmonized from: {sources}}}",
        "}",
    ]
    return "\n".join(lines)


def _data_type(dtype: pl.DataType) -> Any:  # noqa: ANN401 - an rdflib URIRef (mlcroissant has no type hints)
    """The Croissant data type of a column, from the file's own schema (so declared types always match the data)."""
    if dtype.is_integer():
        return mlc.DataType.INTEGER
    if dtype.is_float():
        return mlc.DataType.FLOAT
    if dtype == pl.Boolean:
        return mlc.DataType.BOOL
    return mlc.DataType.TEXT


def _record_set(
    ctx: Any,  # noqa: ANN401 - mlc.Context
    record_set: str,
    file_id: str,
    schema: pl.Schema,
    columns: list[str],
    description: str,
) -> Any:  # noqa: ANN401 - mlc.RecordSet
    """A record set reading `columns` of one file object, each field typed from the file's schema."""
    fields = [
        mlc.Field(
            ctx=ctx,
            id=f"{record_set}/{column}",
            name=column,
            description=COLUMN_DESCRIPTIONS.get(column, _count_description(column)),
            data_types=[_data_type(schema[column])],
            source=mlc.Source(ctx=ctx, file_object=file_id, extract=mlc.Extract(ctx=ctx, column=column)),
        )
        for column in columns
    ]
    return mlc.RecordSet(ctx=ctx, id=record_set, name=record_set, description=description, fields=fields)


def _count_description(column: str) -> str:
    return f"Pixels of class {column.removeprefix('px_')} in the chip's label."


def croissant_jsonld(release: Path, info: ReleaseInfo) -> dict[str, Any]:
    """The Croissant JSON-LD of a release folder as a dict (write_croissant writes it).

    Raises:
        mlcroissant.ValidationError: when mlcroissant refuses the description it is given (a bug here, not bad data).
    """
    ctx = mlc.Context(conforms_to=CROISSANT_VERSION)  # one context: every node's issues end up in one place
    files = {MANIFEST: PARQUET, CLASS_COUNTS: CSV, SUBSETS: PARQUET}
    distribution: list[Any] = [
        mlc.FileObject(
            ctx=ctx,
            id=Path(name).name,
            name=Path(name).name,
            description=FILE_DESCRIPTIONS[name],
            content_url=name,
            encoding_formats=[fmt],
            sha256=sha256_file(release / name),
        )
        for name, fmt in files.items()
    ]
    distribution += [
        mlc.FileSet(
            ctx=ctx,
            id=f"{kind}-chips",
            name=f"{kind}-chips",
            description=description,
            includes=[f"chips/*/{kind}s/*.tif"],
            encoding_formats=[TIFF],
        )
        for kind, description in (
            ("image", f"Image chips: GeoTIFF, {len(info.bands)} bands ({', '.join(info.bands)}) in the chip's CRS."),
            (
                "label",
                "Label chips: single-band GeoTIFF of class ids on the image's grid; "
                + ", ".join(f"{i} = {n}" for i, n in zip(info.class_ids, info.class_names, strict=True))
                + ".",
            ),
        )
    ]
    manifest = pl.read_parquet_schema(release / MANIFEST)
    counts = pl.read_csv(release / CLASS_COUNTS).schema  # small: read whole, so types are inferred from all rows
    subsets = pl.read_parquet_schema(release / SUBSETS)
    chip_columns = ["chip_id", "source", "region", "continent", "year", "lon", "lat"]
    chip_columns += [class_column(n) for n in info.class_names] + ["dominant", "image_path", "label_path"]
    record_sets = [
        _record_set(
            ctx,
            "class_counts",
            Path(CLASS_COUNTS).name,
            pl.Schema(counts),
            list(CLASS_COUNT_COLUMNS),
            FILE_DESCRIPTIONS[CLASS_COUNTS],
        ),
        _record_set(ctx, "chips", Path(MANIFEST).name, pl.Schema(manifest), chip_columns, FILE_DESCRIPTIONS[MANIFEST]),
        _record_set(
            ctx,
            "subsets",
            Path(SUBSETS).name,
            pl.Schema(subsets),
            ["chip_id", "source", "split", "size"],
            FILE_DESCRIPTIONS[SUBSETS],
        ),
    ]
    licence = spdx_licence(info.licence)
    metadata = mlc.Metadata(
        ctx=ctx,
        name=info.title,
        description=full_description(info),
        version=info.version,
        date_published=info.date,
        license=[f"https://spdx.org/licenses/{licence}.html" if licence else info.licence],
        url=info.url,  # None: left out (optional in Croissant; a relative path is no URL)
        cite_as=_cite_as(info),
        creators=[mlc.Organization(ctx=ctx, name="cropharmony contributors", url=info.url)],
        keywords=[*KEYWORDS, *sorted({s.continent for s in info.sources})],
        distribution=distribution,
        record_sets=record_sets,
    )
    jsonld: dict[str, Any] = metadata.to_json()
    return jsonld


def write_croissant(release: Path, info: ReleaseInfo) -> Path:
    """Write `release/croissant.json` atomically and deterministically; returns its path.

    Keys are sorted and nothing time-dependent is written beyond `info.date`, so equal releases give equal bytes
    (SHA256SUMS and the published-version check compare bytes). The sha256 of each file object is computed from
    the files already in `release` (manifest.parquet, class_counts.csv, subsets/subsets.parquet): write them first.
    """
    path = release / CROISSANT
    text = json.dumps(croissant_jsonld(release, info), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(path, text)
    return path


def croissant_problems(path: Path, *, read_records: bool = True) -> list[str]:
    """What mlcroissant objects to in a Croissant file; [] when it accepts it.

    Static analysis is mlcroissant's own (what `mlcroissant validate` runs: JSON-LD parsing, mandatory properties,
    types, the structure and operation graphs). Its errors come prefixed `error:` and its warnings (recommended
    properties missing, a version not in MAJOR.MINOR.PATCH) `warning:`; both count, so [] means no issue at all.
    With `read_records`, every record set is then generated, which is where mlcroissant checks what static analysis
    cannot: that each file exists and matches its sha256, and that every value casts to its field's data type.
    """
    with _quiet():
        return _problems(path, read_records)


def _problems(path: Path, read_records: bool) -> list[str]:
    ctx = mlc.Context()
    metadata: Any = None
    dataset: Any = None
    try:
        metadata = mlc.Metadata.from_file(ctx=ctx, file=path)
        dataset = mlc.Dataset.from_metadata(metadata)
    except mlc.ValidationError:
        pass  # the issues are in ctx
    except Exception as error:  # unreadable JSON, a missing file: report, never raise
        return [f"error: {path}: cannot be read by mlcroissant: {type(error).__name__}: {error}"]
    problems = [f"error: {issue}" for issue in sorted(ctx.issues.errors)]
    problems += [f"warning: {issue}" for issue in sorted(ctx.issues.warnings)]
    if dataset is None or ctx.issues.errors or not read_records:
        return problems
    for record_set in metadata.record_sets:
        try:
            for _ in dataset.records(record_set.uuid):
                pass
        except Exception as error:  # mlcroissant raises plain exceptions while generating records
            problems.append(f"error: record set {record_set.uuid}: {_chain(error)}")
    return problems


def _chain(error: BaseException) -> str:
    """An exception with its causes: mlcroissant wraps the telling one (a hash mismatch) in a GenerationError."""
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(parts) < 4:
        parts.append(f"{type(current).__name__}: {' '.join(str(current).split())}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


def _plain(value: Any) -> Any:  # noqa: ANN401 - a record value: bytes, numpy scalar, str, int, float
    """Make a record value plain Python: mlcroissant yields text as bytes and numbers as numpy scalars."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if hasattr(value, "item"):
        return value.item()
    return value


def croissant_class_counts(path: Path) -> pl.DataFrame:
    """The `class_counts` record set read back through mlcroissant, with class_counts.csv's columns and types.

    Reading the counts through the metadata rather than the CSV is the proof that a Croissant consumer sees the
    same numbers the data card reports.
    """
    with _quiet():
        dataset = mlc.Dataset(jsonld=path)
        records = list(dataset.records("class_counts"))
    names = {
        field.uuid: field.name
        for record_set in dataset.metadata.record_sets
        if record_set.uuid == "class_counts"
        for field in record_set.fields
    }
    rows = [{names[key]: _plain(value) for key, value in record.items()} for record in records]
    schema = {"source": pl.String, "split": pl.String, "size": pl.Int64, "class": pl.String}
    schema |= {"pixels": pl.Int64, "chips": pl.Int64}
    return pl.DataFrame(rows, schema=schema)
