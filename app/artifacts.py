"""Where the pipeline's artifacts are, which stage writes each, and readers that name that stage.

A missing artifact and one that cannot be read (a truncated Parquet or JSON file, say) both name the stage to run.

The app reads artifacts only. Paths come from the project's params.yaml through curation's artifact catalogue, so a
project that moved an output folder is still found. Nothing here imports streamlit, torch or the
training package: the views add caching on top.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from curation.core.artifacts import (
    BALANCE_EFFECTS,
    COMPARISONS,
    CONFUSION,
    FAILURES,
    HISTOGRAMS,
    INTERVALS,
    SPLIT_BIAS,
    TRANSFER,
    VALIDATION_SUMMARY,
    Artifact,
)
from curation.core.artifacts import Artifacts as Catalogue
from curation.core.io import DEMO_MARKER, demo_marker
from curation.core.params import load_named, load_section
from curation.core.shared import SharedParams

ROOT_ENV = "CROPHARMONY_ROOT"  # the project the app shows, when no `--root` is given


class MissingArtifact(Exception):
    """An artifact the page needs does not exist yet: the message says which stage writes it."""

    def __init__(self, path: Path, stage: str) -> None:
        self.path, self.stage = path, stage
        super().__init__(f"`{path}` is missing: it is written by stage `{stage}`. Run `uv run dvc repro {stage}`.")


class CorruptArtifact(Exception):
    """An artifact exists but cannot be read (truncated, overwritten): the message names it and the stage to re-run.

    `--force --single-item` re-runs that one stage even where DVC would not see the damage (a copied project).
    """

    def __init__(self, path: Path, stage: str, error: BaseException) -> None:
        self.path, self.stage = path, stage
        first = (str(error).strip().splitlines() or [""])[0][:200]
        super().__init__(
            f"`{path}` cannot be read ({type(error).__name__}: {first}). It is written by stage `{stage}`: re-run it "
            f"with `uv run dvc repro --force --single-item {stage}`."
        )


@dataclass(frozen=True)
class Artifacts:
    """The artifacts of one project, resolved against its root through curation's catalogue."""

    root: Path
    catalogue: Catalogue
    legends_dir: Path
    crosswalk_set: str
    bands: tuple[str, ...]
    raw_root: Path
    min_class_share: float
    sources: tuple[str, ...] = ()  # in params order (`shared.sources`): every page lists sources in this order

    @classmethod
    def from_root(cls, root: Path) -> Artifacts:
        """Read the project's params.yaml (typed sections, loaded by name: no stage or training import)."""
        params = root / "params.yaml"
        shared = load_section(SharedParams, params, whole_file=False)
        catalogue = Catalogue.of_project(root)
        return cls(
            root=root,
            catalogue=catalogue,
            legends_dir=root / shared.legends_dir,
            crosswalk_set=shared.crosswalk_set,
            bands=shared.bands,
            raw_root=catalogue.raw_root,
            min_class_share=float(load_named("subsets", params).model_dump()["min_class_share"]),
            sources=tuple(shared.sources),
        )

    # Each artifact with the stage that writes it.
    def manifest(self) -> tuple[Path, str]:
        """The chips' manifest."""
        return _pair(self.catalogue.manifest)

    def subset_lists(self) -> tuple[Path, str]:
        """Every subset: chip_id, source, split, size."""
        return _pair(self.catalogue.subsets_table)

    def failures(self) -> tuple[Path, str]:
        """Errors and warnings of the last validation."""
        return _pair(self.catalogue.validation_file(FAILURES))

    def validation_summary(self) -> tuple[Path, str]:
        """Chips, errors and warnings per source."""
        return _pair(self.catalogue.validation_file(VALIDATION_SUMMARY))

    def histograms(self) -> tuple[Path, str]:
        """Pixels per native code of every chip window."""
        return _pair(self.catalogue.validation_file(HISTOGRAMS))

    def crosswalks_report(self) -> tuple[Path, str]:
        """The crosswalk sets compared with the active one."""
        return _pair(self.catalogue.crosswalks_report)

    def transfer(self) -> tuple[Path, str]:
        """The tidy transfer table."""
        return _pair(self.catalogue.metrics_file(TRANSFER))

    def confusion(self) -> tuple[Path, str]:
        """Pixels per (run, test source, target class, predicted class): the confusion matrices."""
        return _pair(self.catalogue.metrics_file(CONFUSION))

    def intervals(self) -> tuple[Path, str]:
        """Mean, standard deviation and bootstrap interval per cell, over seeds and test chips."""
        return _pair(self.catalogue.metrics_file(INTERVALS))

    def comparisons(self) -> tuple[Path, str]:
        """The study's comparisons, paired, with intervals of the difference and p-values."""
        return _pair(self.catalogue.metrics_file(COMPARISONS))

    def balance_effects(self) -> tuple[Path, str]:
        """Each class-balance strategy against base: AA and per-class recall, paired."""
        return _pair(self.catalogue.metrics_file(BALANCE_EFFECTS))

    def split_bias(self) -> tuple[Path, str]:
        """Every id model on its source's random test set beside the blocked one."""
        return _pair(self.catalogue.metrics_file(SPLIT_BIAS))

    @property
    def validation(self) -> Path:
        """The validation reports folder."""
        return self.catalogue.validation.path

    @property
    def chips(self) -> Path:
        """The chips folder (image and label paths in the manifest are relative to it)."""
        return self.catalogue.chips.path


def _pair(artifact: Artifact) -> tuple[Path, str]:
    return artifact.path, artifact.stage


def stamp(path: Path) -> int:
    """A cache key that changes when a stage rewrites the file (0 when it is missing)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return 0
    return info.st_mtime_ns ^ info.st_size


def read_parquet(path: Path, stage: str) -> pl.DataFrame:
    """A Parquet artifact, or MissingArtifact / CorruptArtifact naming its stage."""
    if not path.is_file():
        raise MissingArtifact(path, stage)
    try:
        return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as error:
        raise CorruptArtifact(path, stage, error) from error


def read_json(path: Path, stage: str) -> Any:  # noqa: ANN401 - JSON
    """A JSON artifact, or MissingArtifact / CorruptArtifact naming its stage."""
    if not path.is_file():
        raise MissingArtifact(path, stage)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise CorruptArtifact(path, stage, error) from error


def demo_world(artifacts: Artifacts) -> dict[str, Any] | None:
    """The demo world's marker (seed, sizes) when the raw root is synthetic, else None (CorruptArtifact: unreadable)."""
    try:
        return demo_marker(artifacts.raw_root)
    except (OSError, ValueError) as error:
        raise CorruptArtifact(artifacts.raw_root / DEMO_MARKER, "demo", error) from error
