"""Label source readers, one module each; the registry that names them is data (`registry.csv`).

`SOURCES` maps a registered name to its reader class and imports a reader only when it is asked for, so code
that needs the names (params, the CLI, the app) loads no reader and none of rasterio or pyogrio through them.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator, Mapping

from curation.core.errors import SourceError
from curation.core.registry import SourceInfo, load_registry, registry_path, registry_rows
from curation.sources.base import ChipGrid, LabelSource

__all__ = ["SOURCES", "ChipGrid", "LabelSource", "SourceError", "SourceInfo", "get_source", "registry_rows"]


def get_source(name: str) -> type[LabelSource]:
    """The reader class of a source name (imported on first use), with the closest name suggested on a typo."""
    registry = load_registry()
    if name not in registry:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(registry)}"
        raise SourceError(f"source '{name}'", "known source", "not in the registry", hint)
    info = registry[name]
    module, _, attribute = info.reader.partition(":")
    try:
        reader = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise SourceError(
            registry_path(), "reader importable", f"source '{name}': {info.reader}: {exc}",
            "name the reader as module:Class of an importable module",
        ) from exc  # fmt: skip
    if not (isinstance(reader, type) and issubclass(reader, LabelSource)):
        raise SourceError(
            registry_path(), "reader is a LabelSource", f"source '{name}': {info.reader}",
            "point the row at a subclass of curation.sources.base.LabelSource",
        )  # fmt: skip
    return reader


class _Readers(Mapping[str, type[LabelSource]]):
    """Registered name -> reader class, resolved lazily."""

    def __getitem__(self, name: str) -> type[LabelSource]:
        if name not in load_registry():
            raise KeyError(name)
        return get_source(name)

    def __iter__(self) -> Iterator[str]:
        return iter(load_registry())

    def __len__(self) -> int:
        return len(load_registry())


SOURCES: Mapping[str, type[LabelSource]] = _Readers()
