"""The study profile and the corrected one differ exactly in our corrections, and the fidelity doc names each.

Per-setting assertions of the study's values live beside the code they configure (`test_study_fidelity_*.py` in
tests/, tests/curation/ and tests/training/); this file checks the two profiles against each other, so a correction
cannot slip in (or out) without the doc and this list changing with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from curation.core.params import check_all

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "profiles" / "study.yaml"
CORRECTED = ROOT / "profiles" / "study-corrected.yaml"
DOC = ROOT / "docs" / "study-fidelity.md"

CORRECTIONS = {  # param path: (the study's value, ours)
    "shared.crosswalk_set": ("paper", "toolkit"),
    "train.handover": ("last", "best"),
    "train.model.frozen_batchnorm": ("train", "eval"),
    "train.plateau_patience": (1, 10),
    "train.seeds": ([0], [0, 1, 2]),
    "train.matrix.backbone": (
        ["ssl4eo", "satlas", "imagenet"],
        ["ssl4eo", "satlas", "imagenet", "scratch", "spectral"],
    ),
    "train.balance.strategies": (["base"], ["base", "loss-weights", "chip-sampler", "pixel-budget"]),
    "train.sampling": ("with_replacement", "permutation"),
    "train.val_split": ("random", "blocks"),
    "evaluate.checkpoint": ("last", "best"),
    "evaluate.argmax_over_ignore": (True, False),
}


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:  # noqa: ANN401 - any YAML value
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def _values(path: Path) -> dict[str, Any]:
    return _flat(yaml.safe_load(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("profile", [STUDY, CORRECTED], ids=lambda p: p.name)
def test_both_profiles_are_valid_params(profile: Path) -> None:
    assert len(check_all(profile)) == 10  # every section, every key: an unknown or missing one raises


def test_the_corrected_profile_differs_from_the_study_in_the_corrections_only() -> None:
    study, corrected = _values(STUDY), _values(CORRECTED)
    assert study.keys() == corrected.keys()
    differ = {key: (study[key], corrected[key]) for key in study if study[key] != corrected[key]}
    assert differ == CORRECTIONS


def test_every_correction_is_a_row_of_the_fidelity_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [path for path in CORRECTIONS if f"`{path}`" not in text and f"`{path.rsplit('.', 1)[-1]}`" not in text]
    assert missing == [], f"docs/study-fidelity.md names no row for {missing}"
    assert "<!--" not in text, "a section of docs/study-fidelity.md is still a placeholder"
