"""The table of pipeline stages: the one place the CLI, the params registry and the lineage checks read.

Each row names the stage's module (`python -m <module>` runs it, as dvc.yaml does), the module that defines its
params section, and the params it reads, written as dvc.yaml lists them (`section` for a whole section,
`section.key` for one key). The stage runner refuses a read outside that list, and a test holds dvc.yaml to it.
Module paths are strings, so this table imports nothing of the stages.
"""

from __future__ import annotations

from dataclasses import dataclass

SHARED = "shared"  # the section every stage may read keys of besides its own


@dataclass(frozen=True)
class Stage:
    """One DVC stage: its entry module, its params section's module, and the params it reads."""

    name: str  # as in dvc.yaml and params.yaml
    module: str  # `python -m <module>`
    config: str  # registers the stage's params section
    params: tuple[str, ...]  # what it reads, as dvc.yaml lists it
    summary: str  # one line for --help
    matrix: bool = False  # runs once per `train.matrix` entry (--protocol, --backbone, --source, --size)

    @property
    def entry(self) -> str:
        """The module whose `main(argv)` runs the stage (a package's `stage` module)."""
        return self.module if self.module.startswith("training.") else f"{self.module}.stage"

    @property
    def command(self) -> str:
        """The stage's `cropharmony` command (`publish build` sits beside `publish push` and `verify`)."""
        return "publish build" if self.name == "publish" else self.name

    def reads(self, section: str, key: str | None = None) -> bool:
        """Whether the stage declares `section` (whole) or, for one key, `section.key`."""
        if section in self.params:
            return True
        if key is None:
            # A whole-section read: `shared` is read whole by every stage, which lists the keys its outputs follow.
            return section == SHARED and any(p.startswith(f"{SHARED}.") for p in self.params)
        return f"{section}.{key}" in self.params


CURATION_SHARED = (
    "shared.legends_dir",
    "shared.crosswalk_set",
    "shared.raw_root",
    "shared.chip_px",
    "shared.resolution_m",
    "shared.bands",
    "shared.sources",
)

TRAINING_SHARED = ("shared.legends_dir", "shared.crosswalk_set", "shared.bands", "shared.sources")
TRAINING_INPUTS = ("chips.out", "subsets.out")

STAGES: tuple[Stage, ...] = (
    Stage(
        "crosswalks",
        "curation.crosswalks",
        "curation.crosswalks.config",
        ("shared.legends_dir", "shared.crosswalk_set", "crosswalks"),
        "Validate every crosswalk set and compare each with the active one.",
    ),
    Stage(
        "demo",
        "curation.demo",
        "curation.demo.config",
        ("shared.legends_dir", "demo"),
        "Write the synthetic demo world: the six study sources in native layouts plus Sentinel-2 chips.",
    ),
    Stage(
        "validate",
        "curation.validate",
        "curation.validate.config",
        (*CURATION_SHARED, "validate"),
        "Check every source's label product and image chips against their schemas.",
    ),
    Stage(
        "chips",
        "curation.chips",
        "curation.chips.config",
        (*CURATION_SHARED, "chips", "validate.out"),
        "Cut a harmonized label chip on every image chip's grid and write the manifest.",
    ),
    Stage(
        "subsets",
        "curation.subsets",
        "curation.subsets.config",
        ("shared.legends_dir", "shared.crosswalk_set", "shared.sources", "subsets", "chips.out"),
        "Size-normalized, stratified, spatially blocked train and test sets per source.",
    ),
    Stage(
        "train",
        "training.train",
        "training.config",
        (*TRAINING_SHARED, "train", *TRAINING_INPUTS),
        "Fine-tune backbones under the protocols for one matrix entry.",
        matrix=True,
    ),
    Stage(
        "evaluate",
        "training.evaluate",
        "training.config",
        (*TRAINING_SHARED, "train", "evaluate", *TRAINING_INPUTS),
        "Every model of one matrix entry on every source's whole test set.",
        matrix=True,
    ),
    Stage(
        "report",
        "training.report",
        "training.config",
        ("shared.legends_dir", "report", "evaluate.out"),
        "The tidy transfer table, DVC metrics and plots.",
    ),
    Stage(
        "publish",
        "curation.publish",
        "curation.publish.config",
        (*CURATION_SHARED, "publish", "chips.out", "subsets.out", "validate.out", "crosswalks.out"),
        "A versioned release: data, card, Croissant and STAC metadata, SHA256SUMS.",
    ),
)

BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
SECTION_NAMES: tuple[str, ...] = (SHARED, *BY_NAME)
"""Every top-level section of params.yaml: `shared` and one per stage."""
