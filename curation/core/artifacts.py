"""The artifact catalogue: every path the pipeline writes or reads, from params.yaml, in one place.

Stages, the app and the tests ask the catalogue, never a literal: moving an output (say `chips.out`) moves every
reader of it with it. Each path is read from its params key when asked, so the stage runner can hold a stage to
the keys it declares. File names inside a stage's output folder are the stage's contract and live here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.core.errors import ParamsError, Problem
from curation.core.params import DEFAULT_PARAMS, check_declared, read_params

MANIFEST = "manifest.parquet"
SUBSETS_TABLE = "subsets.parquet"
SUBSET_LISTS = "lists"
LEAKAGE_AUDIT = "leakage_audit.json"
VALIDATION_SUMMARY = "summary.json"
FAILURES = "failures.parquet"
HISTOGRAMS = "label_histograms.parquet"
TRANSFER = "transfer.parquet"
CONFUSION = "confusion.parquet"  # per evaluated entry (evaluate) and gathered (report)
SUMMARY = "summary.json"
PLOTS = "plots"
HEATMAP_TABLE = "plots/transfer.csv"
CURVES_TABLE = "plots/learning_curves.csv"
EVAL_METRICS = "metrics.parquet"  # per evaluated entry
RUN_RECORD = "run.json"  # per trained run
RUNS_INDEX = "runs.json"  # per trained entry


@dataclass(frozen=True)
class Artifact:
    """A path and the stage that writes it (named in messages when the path is missing)."""

    path: Path
    stage: str


@dataclass(frozen=True)
class Artifacts:
    """The artifact paths of one project (relative to `root`, the folder the stages run in)."""

    params: Path = DEFAULT_PARAMS
    root: Path = Path()
    _raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, params: Path = DEFAULT_PARAMS, root: Path | None = None) -> Artifacts:
        """The catalogue of the project whose params file is `params` (paths resolved against `root`)."""
        return cls(params, Path() if root is None else root, read_params(params))

    @classmethod
    def of_project(cls, root: Path) -> Artifacts:
        """The catalogue of the project at `root` (its params.yaml)."""
        return cls.load(root / "params.yaml", root)

    def _path(self, section: str, key: str = "out") -> Path:
        check_declared(section, key)
        body = self._raw.get(section)
        value = body.get(key) if isinstance(body, Mapping) else None
        if not isinstance(value, str) or not value:
            raise ParamsError(
                f"params '{section}.{key}' is missing",
                [Problem(str(self.params), "artifact path", f"'{section}.{key}'", f"add '{section}.{key}: <path>'")],
            )
        return self.root / value

    # inputs
    @property
    def raw_root(self) -> Path:
        """The raw products and image chips the stages read (`shared.raw_root`)."""
        return self._path("shared", "raw_root")

    @property
    def demo_world(self) -> Artifact:
        """The synthetic world the demo stage writes."""
        return Artifact(self._path("demo"), "demo")

    # stage outputs
    @property
    def crosswalks_report(self) -> Artifact:
        """The crosswalk sets, validated and compared with the active one."""
        return Artifact(self._path("crosswalks"), "crosswalks")

    @property
    def validation(self) -> Artifact:
        """The validation reports folder."""
        return Artifact(self._path("validate"), "validate")

    def validation_file(self, name: str) -> Artifact:
        """A file of the validation reports (`VALIDATION_SUMMARY`, `FAILURES`, `HISTOGRAMS`, `<source>.json`)."""
        return Artifact(self.validation.path / name, "validate")

    @property
    def chips(self) -> Artifact:
        """The chips folder: `<source>/{images,labels}/` and the manifest."""
        return Artifact(self._path("chips"), "chips")

    @property
    def manifest(self) -> Artifact:
        """One row per chip."""
        return Artifact(self.chips.path / MANIFEST, "chips")

    @property
    def chips_report(self) -> Artifact:
        """Chips per source and chips left out."""
        return Artifact(self._path("chips", "report"), "chips")

    @property
    def subsets(self) -> Artifact:
        """The subsets folder."""
        return Artifact(self._path("subsets"), "subsets")

    @property
    def subsets_table(self) -> Artifact:
        """Every subset: chip_id, source, split, size."""
        return Artifact(self.subsets.path / SUBSETS_TABLE, "subsets")

    @property
    def subsets_report(self) -> Artifact:
        """Sets per source, classes they could not hold, the leakage verdict."""
        return Artifact(self._path("subsets", "report"), "subsets")

    @property
    def runs(self) -> Artifact:
        """Trained runs, one folder per matrix entry."""
        return Artifact(self._path("train"), "train")

    @property
    def evals(self) -> Artifact:
        """Evaluations, one folder per matrix entry."""
        return Artifact(self._path("evaluate"), "evaluate")

    @property
    def metrics(self) -> Artifact:
        """The transfer table, its summary and plots."""
        return Artifact(self._path("report"), "report")

    def metrics_file(self, name: str) -> Artifact:
        """A file of the report (`TRANSFER`, `CONFUSION`, `SUMMARY`)."""
        return Artifact(self.metrics.path / name, "report")

    @property
    def releases(self) -> Artifact:
        """Published versions of the dataset."""
        return Artifact(self._path("publish"), "publish")
