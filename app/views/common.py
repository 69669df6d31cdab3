"""What every page shares: the project root, cached artifact readers, the missing-artifact message, the demo banner.

Readers are cached with `st.cache_data` keyed on the file's path and its modification stamp, so a page rerun
costs a dictionary lookup, and a stage that rewrites an artifact is picked up on the next rerun. An artifact that
exists but cannot be read (truncated, overwritten) is an `st.error` naming the file and the stage to re-run: where
the page needs it the page stops there (`guard`), where it can do without it the rest still renders (`optional`,
`attempt`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import streamlit as st

from app.artifacts import (
    ROOT_ENV,
    Artifacts,
    CorruptArtifact,
    MissingArtifact,
    demo_world,
    read_json,
    read_parquet,
    stamp,
)
from curation.core.errors import CropharmonyError
from curation.core.legends import CrosswalkSet, load_set

T = TypeVar("T")


def project_root() -> Path:
    """`--root DIR` after `--` on the streamlit command line, else $CROPHARMONY_ROOT, else the working directory."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--root", type=Path)
    known, _ = parser.parse_known_args(sys.argv[1:])
    if known.root is not None:
        return Path(known.root).resolve()
    return Path(os.environ.get(ROOT_ENV) or Path.cwd()).resolve()


@st.cache_resource(show_spinner=False)
def _artifacts(root: str, params_stamp: int) -> Artifacts:
    return Artifacts.from_root(Path(root))


def artifacts() -> Artifacts:
    """The project's artifact paths; a broken params.yaml is shown, not raised."""
    root = project_root()
    try:
        return _artifacts(str(root), stamp(root / "params.yaml"))
    except CropharmonyError as exc:
        st.error(f"Cannot read the project at `{root}`: {exc}")
        st.stop()
        raise  # st.stop raises; this keeps type checkers informed


@st.cache_data(show_spinner=False, max_entries=32)
def _parquet(path: str, stage: str, key: int) -> pl.DataFrame:
    return read_parquet(Path(path), stage)


@st.cache_data(show_spinner=False, max_entries=32)
def _json(path: str, stage: str, key: int) -> Any:  # noqa: ANN401 - JSON
    return read_json(Path(path), stage)


def table(spec: tuple[Path, str]) -> pl.DataFrame:
    """A Parquet artifact, cached; raises MissingArtifact (see `guard`)."""
    path, stage = spec
    return _parquet(str(path), stage, stamp(path))


def document(spec: tuple[Path, str]) -> Any:  # noqa: ANN401 - JSON
    """A JSON artifact, cached; raises MissingArtifact (see `guard`)."""
    path, stage = spec
    return _json(str(path), stage, stamp(path))


def corrupt(exc: CorruptArtifact) -> None:
    """Show an unreadable artifact: the file, what went wrong, the stage to re-run."""
    st.error(str(exc), icon=":material/broken_image:")


def absent(spec: tuple[Path, str]) -> bool:
    """The artifact does not exist (rather than existing and failing to read): the pages' "run stage X" notes."""
    return not spec[0].is_file()


def optional(spec: tuple[Path, str]) -> pl.DataFrame | None:
    """A Parquet artifact a page can do without (subsets for the balance page, say); unreadable: shown, then None."""
    try:
        return table(spec)
    except MissingArtifact:
        return None
    except CorruptArtifact as exc:
        corrupt(exc)
        return None


def optional_document(spec: tuple[Path, str]) -> Any:  # noqa: ANN401 - JSON
    """A JSON artifact a page can do without, or None; unreadable: shown, then None."""
    try:
        return document(spec)
    except MissingArtifact:
        return None
    except CorruptArtifact as exc:
        corrupt(exc)
        return None


def attempt(load: Callable[[], T]) -> T | None:
    """Run a loader the page needs one of several: missing or unreadable is shown and gives None, the page goes on."""
    try:
        return load()
    except MissingArtifact as exc:
        st.warning(str(exc), icon=":material/pending_actions:")
    except CorruptArtifact as exc:
        corrupt(exc)
    return None


def guard(load: Callable[[], T]) -> T:
    """Run a loader; a missing or unreadable artifact becomes a message naming the stage to run, and the page stops."""
    try:
        return load()
    except MissingArtifact as exc:
        st.warning(str(exc), icon=":material/pending_actions:")
        st.stop()
        raise  # st.stop raises; this keeps type checkers informed
    except CorruptArtifact as exc:
        corrupt(exc)
        st.stop()
        raise


@st.cache_resource(show_spinner=False)
def _crosswalk_set(legends_dir: str, name: str, key: int) -> CrosswalkSet:
    return load_set(Path(legends_dir), name)


def crosswalk_set(project: Artifacts, name: str | None = None) -> CrosswalkSet:
    """A validated crosswalk set (the active one by default); an invalid one is shown with its problems."""
    name = name or project.crosswalk_set
    key = max((stamp(p) for p in project.legends_dir.rglob("*.csv")), default=0)
    try:
        return _crosswalk_set(str(project.legends_dir), name, key)
    except CropharmonyError as exc:
        st.error(f"Crosswalk set `{name}` is invalid: {exc}. Run `uv run cropharmony legends check`.")
        st.stop()
        raise


def class_names(project: Artifacts) -> list[str]:
    """Class names of the active taxonomy, ignore first."""
    return list(crosswalk_set(project).taxonomy.names)


def class_colors(project: Artifacts) -> dict[str, str]:
    """Class name -> its colour in target.csv."""
    taxonomy = crosswalk_set(project).taxonomy
    return dict(zip(taxonomy.names, taxonomy.colors, strict=True))


def demo_banner(project: Artifacts) -> None:
    """Say plainly when the artifacts come from the synthetic demo world (an unreadable marker is shown instead)."""
    try:
        world = demo_world(project)
    except CorruptArtifact as exc:
        corrupt(exc)
        return
    if world is not None:
        st.warning(
            f"**Synthetic data.** These artifacts come from the generated demo world (seed {world.get('seed')}, "
            f"{world.get('chips_per_source')} chips of {world.get('chip_px')} px per source), not from real "
            "crop-label products. Numbers show how the toolkit works, not how the models transfer.",
            icon=":material/science:",
        )


def set_names(project: Artifacts) -> list[str]:
    """The crosswalk sets of the project: the active one first, then `toolkit` and every other set folder by name."""
    folders = sorted(p.name for p in project.legends_dir.iterdir() if p.is_dir() and any(p.glob("*.csv")))
    names = [project.crosswalk_set, "toolkit", *folders]
    return list(dict.fromkeys(names))


GALLERY = "views/chips.py"


def open_gallery(source: str | None = None, subset: str | None = None, contains: str | None = None) -> None:
    """Switch to the chip gallery filtered by source, subset and class (its query parameters)."""
    params = {"source": source, "subset": subset, "contains": contains}
    st.switch_page(GALLERY, query_params={k: v for k, v in params.items() if v})


def open_chip(chip_id: str, source: str | None = None) -> None:
    """Switch to the chip gallery with one chip's detail open."""
    st.switch_page(GALLERY, query_params={k: v for k, v in {"chip": chip_id, "source": source}.items() if v})


def picked(state: Any, name: str) -> dict[str, Any] | None:  # noqa: ANN401 - Streamlit's selection state
    """The first point of chart selection `name` in a chart's selection state, or None."""
    try:
        points = state["selection"][name]
    except (KeyError, TypeError):
        return None
    return dict(points[0]) if points else None


def picked_row(state: Any) -> int | None:  # noqa: ANN401 - Streamlit's selection state
    """The row position selected in a dataframe's selection state, or None."""
    try:
        rows = state["selection"]["rows"]
    except (KeyError, TypeError):
        return None
    return int(rows[0]) if rows else None
