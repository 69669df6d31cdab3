"""Offline checks of a release's STAC catalogue: JSON schemas, the label extension's rules, counts read back.

`stac_problems` returns [] for a valid catalogue; `stac_class_counts` reads the per-class pixel counts back through
pystac, which the tests compare with the manifest.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pystac
from pystac.errors import ExtensionNotImplemented, STACValidationError
from pystac.validation import GetSchemaError, JsonSchemaSTACValidator

# pystac 1.15 deprecates its label extension (the extension is "pilot" and unmaintained), yet it is still the STAC way
# to publish the per-class counts of label rasters: import it without the warning.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The PySTAC Label Extension is deprecated", DeprecationWarning)
    from pystac.extensions.label import SCHEMA_URIS as LABEL_SCHEMA_URIS
    from pystac.extensions.label import LabelExtension, LabelType

from curation.publish.stac import LABEL_FIELDS, PROPERTY_KEY


def _read(path: Path, name: str, problems: list[str]) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        problems.append(f"{name}: cannot be read: {type(error).__name__}: {error}")
        return None
    if not isinstance(data, dict):
        problems.append(f"{name}: not a JSON object")
        return None
    return data


def _short(message: str, limit: int = 200) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _schema_problems(
    validator: JsonSchemaSTACValidator, data: dict[str, Any], kind: pystac.STACObjectType, name: str
) -> list[str]:
    """Core JSON schema (pystac's bundled copy, offline), then each declared extension's schema where one is local."""
    version = pystac.get_stac_version()
    if data.get("stac_version") != version:
        return [f"{name}: stac_version {data.get('stac_version')!r}: only STAC {version} schemas are bundled offline"]
    problems: list[str] = []
    checks: list[tuple[str, str | None]] = [("core schema", None)]
    extensions = data.get("stac_extensions")
    if isinstance(extensions, list):  # otherwise the core schema says what is wrong with it
        checks += [(f"extension {uri}", uri) for uri in extensions if isinstance(uri, str)]
    for what, extension in checks:
        uri = extension or validator.schema_uri_map.get_object_schema_uri(kind, version)
        if uri not in validator.schema_cache:  # never fetch: the schema hosts are unreachable here (and may change)
            if extension in LABEL_SCHEMA_URIS and kind == pystac.STACObjectType.ITEM:
                continue  # checked field by field in _label_problems
            problems.append(f"{name}: {what}: schema not available offline, not validated")
            continue
        try:
            if extension is None:
                validator.validate_core(data, kind, version, name)
            else:
                validator.validate_extension(data, kind, version, extension, name)
        except STACValidationError as error:
            causes = error.source if isinstance(error.source, list) else [error]
            for cause in causes:
                where = "/".join(map(str, getattr(cause, "absolute_path", []))) or "(root)"
                problems.append(f"{name}: {what}: {where}: {_short(getattr(cause, 'message', str(cause)))}")
        except GetSchemaError as error:
            problems.append(f"{name}: {what}: {_short(str(error))}")
    return problems


def _is_int(value: Any) -> bool:  # noqa: ANN401 - a JSON value
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:  # noqa: ANN401 - a JSON value
    return isinstance(value, int | float) and not isinstance(value, bool)


def _label_problems(item: pystac.Item, name: str) -> list[str]:
    """The label extension v1.0.1's rules, checked through LabelExtension (its schema cannot be fetched offline)."""
    try:
        label = LabelExtension.ext(item)
    except ExtensionNotImplemented:
        return [f"{name}: label extension not declared in stac_extensions"]
    props = item.properties
    problems = [
        f"{name}: {key}: required, missing"
        for key in ("label:type", "label:description", "label:properties")
        if key not in props
    ]
    problems += [
        f"{name}: {key}: not a label extension field"
        for key in sorted(props)
        if key.startswith("label:") and key.removeprefix("label:") not in LABEL_FIELDS
    ]
    kind: LabelType | None = None  # unknown: the checks that depend on raster or vector are skipped
    if "label:type" in props:
        try:
            kind = label.label_type
        except ValueError:
            problems.append(f"{name}: label:type: {props['label:type']!r} is not raster or vector")
    description = props.get("label:description")
    if "label:description" in props and not (isinstance(description, str) and description):
        problems.append(f"{name}: label:description: must be a non-empty string")
    label_properties = props.get("label:properties")
    if kind == LabelType.RASTER and label_properties is not None:
        problems.append(f"{name}: label:properties: must be null for raster labels")
    elif label_properties is not None and not (
        isinstance(label_properties, list) and label_properties and all(isinstance(p, str) for p in label_properties)
    ):
        problems.append(f"{name}: label:properties: must be null or a non-empty list of strings")
    for key in ("label:tasks", "label:methods"):
        if key in props and not (isinstance(props[key], list) and all(isinstance(v, str) for v in props[key])):
            problems.append(f"{name}: {key}: must be a list of strings")
    known, class_problems = _label_classes(label, kind, name)
    problems += class_problems + _label_overviews(label, known, name)
    if not any("labels" in (asset.roles or []) for asset in item.assets.values()):
        problems.append(f"{name}: assets: no asset with role labels")
    return problems


def _label_classes(label: LabelExtension, kind: LabelType | None, name: str) -> tuple[set[Any] | None, list[str]]:
    """The class values label:classes declares (None: no label:classes), and what is wrong with them."""
    raw = label.obj.properties.get("label:classes")
    if raw is None:
        return None, []
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        return None, [f"{name}: label:classes: must be a list of objects"]
    known: set[Any] = set()
    problems: list[str] = []
    for i, classes in enumerate(label.label_classes or []):
        where = f"{name}: label:classes[{i}]"
        entry = classes.to_dict()
        values = entry.get("classes")
        if "name" not in entry or "classes" not in entry:
            problems.append(f"{where}: needs name and classes")
        if isinstance(values, list) and (all(isinstance(v, str) for v in values) or all(map(_is_number, values))):
            known.update(values)
        else:
            problems.append(f"{where}.classes: must be a list of strings or of numbers")
        if kind == LabelType.RASTER and entry.get("name") is not None:
            problems.append(f"{where}.name: must be null for raster labels")
        if kind == LabelType.VECTOR and not (isinstance(entry.get("name"), str) and entry.get("name")):
            problems.append(f"{where}.name: must be a non-empty string for vector labels")
    return known, problems


def _label_overviews(label: LabelExtension, known: set[Any] | None, name: str) -> list[str]:
    """What is wrong with label:overviews: types, negative counts, count names that label:classes lacks."""
    raw = label.obj.properties.get("label:overviews")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(o, dict) for o in raw):
        return [f"{name}: label:overviews: must be a list of objects"]
    problems: list[str] = []
    for i, overview in enumerate(label.label_overviews or []):
        where = f"{name}: label:overviews[{i}]"
        entry = overview.to_dict()
        if not isinstance(entry.get("property_key"), str):
            problems.append(f"{where}.property_key: must be a string")
        counts, statistics = entry.get("counts"), entry.get("statistics")
        if counts is None and statistics is None:
            problems.append(f"{where}: needs counts or statistics")
        if counts is not None and not (isinstance(counts, list) and all(isinstance(c, dict) for c in counts)):
            problems.append(f"{where}.counts: must be a list of objects")
        elif counts is not None and known is None:
            problems.append(f"{where}.counts: class counts need label:classes to name the classes")
        elif counts is not None:
            for j, count in enumerate(overview.counts or []):
                problems += _count_problems(count.to_dict(), known or set(), f"{where}.counts[{j}]")
        if statistics is not None and not (
            isinstance(statistics, list)
            and all(
                isinstance(s, dict) and isinstance(s.get("name"), str) and _is_number(s.get("value"))
                for s in statistics
            )
        ):
            problems.append(f"{where}.statistics: must be a list of {{name: string, value: number}}")
    return problems


def _count_problems(count: dict[str, Any], known: set[Any], where: str) -> list[str]:
    problems: list[str] = []
    if not isinstance(count.get("name"), str):
        problems.append(f"{where}.name: must be a string")
    elif count["name"] not in known:
        problems.append(f"{where}.name: {count['name']!r} is not among label:classes")
    if not _is_int(count.get("count")):
        problems.append(f"{where}.count: must be an integer")
    elif count["count"] < 0:
        problems.append(f"{where}.count: {count['count']} is negative")
    return problems


def stac_problems(path: Path) -> list[str]:
    """What is wrong with a release's STAC catalogue (collection.json and every item it links); [] when valid.

    Offline by design: nothing is fetched, so the answer is the same with or without a network.

    - Core: the collection and each item are validated against the STAC core JSON schemas (v1.1.0) with pystac's
      JsonSchemaSTACValidator, which reads its bundled copies (pystac/validation/jsonschemas). An object of another
      stac_version is reported, since no schema for it is local.
    - Extensions: pystac bundles no extension schema and would fetch them from stac-extensions.github.io. A declared
      extension is validated by schema only if the validator already holds that schema; otherwise the label
      extension (on items) is checked field by field through pystac's LabelExtension, following the label v1.0.1
      schema: label:type (raster or vector), label:description (non-empty) and label:properties (null for raster)
      present; no unknown label:* field; label:classes entries with name (null for raster) and classes (all strings
      or all numbers); label:tasks/methods lists of strings; each overview with a string property_key and counts
      (integer, non-negative, names among label:classes) or statistics; an asset with role labels. Any other
      extension without a local schema is reported as not validated.
    - Structure: every item link resolves to a readable item, item ids are unique, items name the collection, and
      the image and label assets exist on disk.
    """
    problems: list[str] = []
    validator = JsonSchemaSTACValidator()
    collection = _read(path, path.name, problems)
    if collection is None:
        return problems
    problems += _schema_problems(validator, collection, pystac.STACObjectType.COLLECTION, path.name)
    seen: set[str] = set()
    links = collection.get("links")
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or link.get("rel") != "item":
            continue
        href = str(link.get("href", ""))
        name = os.path.normpath(href)
        data = _read(path.parent / href, name, problems)
        if data is None:
            continue
        problems += _schema_problems(validator, data, pystac.STACObjectType.ITEM, name)
        if data.get("id") in seen:
            problems.append(f"{name}: id {data.get('id')!r} is not unique")
        seen.add(str(data.get("id")))
        if data.get("collection") != collection.get("id"):
            problems.append(f"{name}: collection {data.get('collection')!r} is not {collection.get('id')!r}")
        try:
            item = pystac.Item.from_dict(data, href=str(path.parent / href), migrate=False)
        except Exception as error:  # pystac raises KeyError/TypeError/STACError on malformed items
            problems.append(f"{name}: pystac cannot read the item: {type(error).__name__}: {error}")
            continue
        problems += _label_problems(item, name)
        for key, asset in sorted(item.assets.items()):
            target = Path(asset.get_absolute_href() or "")
            if not target.is_file():
                problems.append(f"{name}: asset {key}: {asset.href} does not exist")
    return list(dict.fromkeys(problems))  # once each: jsonschema reports one error per failed allOf branch


def stac_class_counts(path: Path) -> pl.DataFrame:
    """Per-chip class counts read back through pystac: source, chip_id, class, count (one row per item and class).

    Reading through pystac's Collection and LabelExtension (not the JSON by hand) is the proof that a STAC client
    sees the manifest's pixel counts.
    """
    collection = pystac.Collection.from_file(str(path))
    rows: list[tuple[str, str, str, int]] = []
    for item in collection.get_items(recursive=True):
        for overview in LabelExtension.ext(item).label_overviews or []:
            if overview.property_key != PROPERTY_KEY:
                continue
            rows += [
                (item.properties["source"], item.properties["chip_id"], count.name, count.count)
                for count in overview.counts or []
            ]
    schema = {"source": pl.String, "chip_id": pl.String, "class": pl.String, "count": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")
