"""Label source readers, one module each; the registry that names them is data (`registry.csv`).

`SOURCES` maps a registered name to its reader class and imports a reader only when it is asked for, so code
that needs the names (params, the CLI, the app) loads no reader and none of rasterio or pyogrio through them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from curation.core.errors import SourceError, closest
from curation.core.registry import SourceInfo, load_registry, registry_path, registry_rows
from curation.sources.base import ChipGrid, LabelSource

__all__ = ["SOURCES", "ChipGrid", "LabelSource", "SourceError", "SourceInfo", "get_source", "registry_rows"]


def _kind_base(kind: str) -> type:
    """The base class a reader of registry `kind` must extend: the kind decides which stage code handles it."""
    from curation.sources.chip_product import ChipProductSource  # deferred, like the readers themselves
    from curation.sources.raster import RasterLabelSource
    from curation.sources.vector import VectorLabelSource

    return {"raster": RasterLabelSource, "vector": VectorLabelSource, "chips": ChipProductSource}[kind]


def get_source(name: str) -> type[LabelSource]:
    """The reader class of a source name (imported on first use), with the closest name suggested on a typo."""
    registry = load_registry()
    if name not in registry:
        raise SourceError(f"source '{name}'", "known source", "not in the registry", closest(name, list(registry)))
    info = registry[name]
    module, _, attribute = info.reader.partition(":")
    try:
        reader = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise SourceError(
            registry_path(), "reader importable", f"source '{name}': {info.reader}: {exc}",
            "name the reader as module:Class of an importable module",
        ) from exc  # fmt: skip
    base = _kind_base(info.kind)
    if not (isinstance(reader, type) and issubclass(reader, base) and issubclass(reader, LabelSource)):
        raise SourceError(
            registry_path(), f"a {info.kind} reader is a {base.__name__}", f"source '{name}': {info.reader}",
            f"point the row at a subclass of {base.__module__}.{base.__name__}, or correct its kind",
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
