"""Where the pipeline's artifacts are, which stage writes each, and readers that name that stage when one is missing.

The app reads artifacts only. Paths come from the project's params.yaml (the curation sections, typed; `report.out`
as written), so a project that moved an output folder is still found. Nothing here imports streamlit, torch or the
training package: the views add caching on top.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from curation.io import demo_marker
from curation.params import ChipsParams, SharedParams, SubsetsParams, ValidateParams, load_section, read_params

ROOT_ENV = "CROPHARMONY_ROOT"  # the project the app shows, when no `--root` is given
REPORT_OUT = "metrics"  # report.out when params.yaml has no report section (a curation-only project)


class MissingArtifact(Exception):
    """An artifact the page needs does not exist yet: the message says which stage writes it."""

    def __init__(self, path: Path, stage: str) -> None:
        self.path, self.stage = path, stage
        super().__init__(f"`{path}` is missing: it is written by stage `{stage}`. Run `uv run dvc repro {stage}`.")


@dataclass(frozen=True)
class Artifacts:
    """The artifact paths of one project, resolved against its root."""

    root: Path
    legends_dir: Path
    crosswalk_set: str
    bands: tuple[str, ...]
    raw_root: Path
    validation: Path
    chips: Path
    subsets: Path
    metrics: Path
    min_class_share: float

    @classmethod
    def from_root(cls, root: Path) -> Artifacts:
        """Read the project's params.yaml (only the sections the app needs; no training import)."""
        params = root / "params.yaml"
        shared = load_section(SharedParams, params, whole_file=False)
        report = read_params(params).get("report") or {}
        return cls(
            root=root,
            legends_dir=root / shared.legends_dir,
            crosswalk_set=shared.crosswalk_set,
            bands=shared.bands,
            raw_root=root / shared.raw_root,
            validation=root / load_section(ValidateParams, params, whole_file=False).out,
            chips=root / load_section(ChipsParams, params, whole_file=False).out,
            subsets=root / (subsets := load_section(SubsetsParams, params, whole_file=False)).out,
            metrics=root / str(report.get("out", REPORT_OUT)),
            min_class_share=subsets.min_class_share,
        )

    # Each artifact with the stage that writes it.
    def manifest(self) -> tuple[Path, str]:
        """The chips' manifest."""
        return self.chips / "manifest.parquet", "chips"

    def subset_lists(self) -> tuple[Path, str]:
        """Every subset: chip_id, source, split, size."""
        return self.subsets / "subsets.parquet", "subsets"

    def failures(self) -> tuple[Path, str]:
        """Errors and warnings of the last validation."""
        return self.validation / "failures.parquet", "validate"

    def validation_summary(self) -> tuple[Path, str]:
        """Chips, errors and warnings per source."""
        return self.validation / "summary.json", "validate"

    def histograms(self) -> tuple[Path, str]:
        """Pixels per native code of every chip window."""
        return self.validation / "label_histograms.parquet", "validate"

    def crosswalks_report(self) -> tuple[Path, str]:
        """The crosswalk sets compared with the active one."""
        return self.root / "reports" / "crosswalks.json", "crosswalks"

    def transfer(self) -> tuple[Path, str]:
        """The tidy transfer table."""
        return self.metrics / "transfer.parquet", "report"


def stamp(path: Path) -> int:
    """A cache key that changes when a stage rewrites the file (0 when it is missing)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return 0
    return info.st_mtime_ns ^ info.st_size


def read_parquet(path: Path, stage: str) -> pl.DataFrame:
    """A Parquet artifact, or MissingArtifact naming its stage."""
    if not path.is_file():
        raise MissingArtifact(path, stage)
    return pl.read_parquet(path)


def read_json(path: Path, stage: str) -> Any:  # noqa: ANN401 - JSON
    """A JSON artifact, or MissingArtifact naming its stage."""
    if not path.is_file():
        raise MissingArtifact(path, stage)
    return json.loads(path.read_text(encoding="utf-8"))


def demo_world(artifacts: Artifacts) -> dict[str, Any] | None:
    """The demo world's marker (seed, sizes) when the raw root is synthetic, else None."""
    return demo_marker(artifacts.raw_root)
