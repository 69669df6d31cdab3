"""Params for the training tests: the project's own sections, scaled down to the tiny world."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from curation.core.params import load_section
from curation.core.shared import SharedParams
from training.config import TrainParams

from .world import BANDS, SOURCES

ROOT = Path(__file__).resolve().parents[2]


def train_section(**changes: Any) -> dict[str, Any]:  # noqa: ANN401 - any params value
    """The project's `train` section for the tiny world (2 and 4 target chips, one epoch per phase)."""
    body = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    body.update(sizes=[2, 4], others_size=2, batch_size=4, crop_px=32, crop_scale=[0.5, 1.0], val_block_m=3000.0)
    body["targets"] = "all"  # every source of the tiny world (the demo trains for three)
    body["seeds"] = [0]  # tests of repeats list their own
    body["matrix"].update(protocol=["all"], backbone=["ssl4eo"], source=["all"], size=["all"])
    body["model"]["decoder_channels"] = [16] * body["model"]["encoder_depth"]
    body["balance"] = {"strategies": ["base"], "protocols": "all"}  # tests of strategies list their own
    for phases in body["protocols"].values():
        for phase in phases:
            phase["epochs"] = 1
    body.update(changes)
    return body


@pytest.fixture
def train_params() -> TrainParams:
    """Validated tiny train params."""
    return TrainParams.model_validate(train_section())


@pytest.fixture
def shared_params() -> SharedParams:
    """The project's shared params narrowed to the tiny world's sources (legends from the project)."""
    return tiny_shared()


def tiny_shared() -> SharedParams:
    """The project's shared params narrowed to the tiny world's sources (legends from the project)."""
    shared = load_section(SharedParams, ROOT / "params.yaml")
    return shared.model_copy(
        update={
            "bands": BANDS,
            "sources": {name: shared.sources[name] for name in SOURCES},
            "legends_dir": ROOT / shared.legends_dir,
        }
    )
