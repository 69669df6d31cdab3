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
CHIP_CONFUSION = "chip_confusion.parquet"  # per evaluated entry and gathered (report): the bootstrap's counts
INTERVALS = "intervals.parquet"  # report: mean, std and interval over seeds and test chips per cell
COMPARISONS = "comparisons.parquet"  # report: the study's comparisons, paired
SPLIT_BIAS = "split_bias.parquet"  # evaluate, report: id runs on the blocked and on the random test set
BALANCE_EFFECTS = "balance.parquet"  # report: each class-balance strategy against base, AA and per-class recall
RUN_RECORD = "run.json"  # per trained run
RUNS_INDEX = "runs.json"  # per trained entry
EVAL_INDEX = "entry.json"  # per evaluated entry: the runs it holds


@dataclass(frozen=True)
class Artifact:
    """A path and the stage that writes it (named in messages when the path is missing)."""

    path: Path
    stage: str


class _Out:
    """A catalogue entry read from params `<section>.<key>` (written by `stage`, the section's stage by default)."""

    def __init__(self, section: str, key: str = "out", stage: str | None = None, doc: str = "") -> None:
        self.section, self.key, self.stage, self.__doc__ = section, key, stage or section, doc

    def __get__(self, catalogue: Artifacts | None, owner: type | None = None) -> Artifact:
        if catalogue is None:  # on the class (help(), inspect): there is no project to read
            raise AttributeError(f"{self.section}.{self.key}: ask a catalogue (Artifacts.load(params))")
        return Artifact(catalogue.path_of(self.section, self.key), self.stage)


class _Inside:
    """A catalogue entry inside another entry's folder (a file name the stage owns)."""

    def __init__(self, folder: str, name: str, doc: str = "") -> None:
        self.folder, self.name, self.__doc__ = folder, name, doc

    def __get__(self, catalogue: Artifacts | None, owner: type | None = None) -> Artifact:
        if catalogue is None:
            raise AttributeError(f"{self.folder}/{self.name}: ask a catalogue (Artifacts.load(params))")
        parent: Artifact = getattr(catalogue, self.folder)
        return Artifact(parent.path / self.name, parent.stage)


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

    def path_of(self, section: str, key: str = "out") -> Path:
        """The path params `<section>.<key>` names (a read the running stage must declare)."""
        check_declared(section, key)
        body = self._raw.get(section)
        value = body.get(key) if isinstance(body, Mapping) else None
        if not isinstance(value, str) or not value:
            raise ParamsError(
                f"params '{section}.{key}' is missing",
                [Problem(str(self.params), "artifact path", f"'{section}.{key}'", f"add '{section}.{key}: <path>'")],
            )
        return self.root / value

    @property
    def raw_root(self) -> Path:
        """The raw products and image chips the stages read (`shared.raw_root`)."""
        return self.path_of("shared", "raw_root")

    demo_world = _Out("demo", doc="The synthetic world the demo stage writes.")
    crosswalks_report = _Out("crosswalks", doc="The crosswalk sets, validated and compared with the active one.")
    validation = _Out("validate", doc="The validation reports folder.")
    chips = _Out("chips", doc="The chips folder: `<source>/{images,labels}/` and the manifest.")
    manifest = _Inside("chips", MANIFEST, doc="One row per chip.")
    chips_report = _Out("chips", "report", doc="Chips per source and chips left out.")
    subsets = _Out("subsets", doc="The subsets folder.")
    subsets_table = _Inside("subsets", SUBSETS_TABLE, doc="Every subset: chip_id, source, split, size.")
    subsets_report = _Out("subsets", "report", doc="Sets per source, classes they could not hold.")
    runs = _Out("train", doc="Trained runs, one folder per matrix entry.")
    evals = _Out("evaluate", doc="Evaluations, one folder per matrix entry.")
    metrics = _Out("report", doc="The transfer table, its summary and plots.")
    releases = _Out("publish", doc="Published versions of the dataset.")

    def validation_file(self, name: str) -> Artifact:
        """A file of the validation reports (`VALIDATION_SUMMARY`, `FAILURES`, `HISTOGRAMS`, `<source>.json`)."""
        return Artifact(self.validation.path / name, "validate")

    def metrics_file(self, name: str) -> Artifact:
        """A file of the report (`TRANSFER`, `CONFUSION`, `SUMMARY`)."""
        return Artifact(self.metrics.path / name, "report")
