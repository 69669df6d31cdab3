"""The study profile trains and evaluates as the study's code did (docs/study-fidelity.md, sections 2, 3, 6, 7, 9);
params.yaml keeps ours. Each value is the one the doc cites from the study's repository or its torchgeo fork."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.core.params import load_section
from curation.core.shared import SharedParams
from training.config import EvaluateParams, TrainParams
from training.plans import others_of

ROOT = Path(__file__).resolve().parents[2]
STUDY = ROOT / "profiles" / "study.yaml"
OURS = ROOT / "params.yaml"


@pytest.fixture(scope="module")
def study() -> tuple[TrainParams, EvaluateParams, SharedParams]:
    """The study profile's train, evaluate and shared sections, through the project's params loader."""
    return load_section(TrainParams, STUDY), load_section(EvaluateParams, STUDY), load_section(SharedParams, STUDY)


def test_ood_pool_is_every_training_chip_of_the_study_regions(
    study: tuple[TrainParams, EvaluateParams, SharedParams],
) -> None:
    """Whole pools of CDL, EuroCrops, NCCM, South Africa and South America Soybean (experiments/ood/*.yaml)."""
    train, _, shared = study
    assert train.others_size == "all"
    assert train.pixel_balance == "none"  # the balanced runs were an extra experiment, not the main table
    sources = list(shared.sources)
    assert others_of(train, "cdl", sources) == [
        "eurocrops", "nccm", "south_america_soybean", "south_africa_crop_type"
    ]  # fmt: skip
    assert "agrifieldnet" not in others_of(train, "nccm", sources)


def test_optimisation_as_the_study(study: tuple[TrainParams, EvaluateParams, SharedParams]) -> None:
    """Patience 1, draws with replacement, kornia's RandomResizedCrop(256, scale=(0.6, 1.0)), a random 10 %."""
    train, _, _ = study
    assert train.plateau_patience == 1
    assert train.sampling == "with_replacement"
    assert train.crop_px == 256
    assert train.crop_scale == (0.6, 1.0)
    assert train.crop_ratio == pytest.approx((3 / 4, 4 / 3))
    assert train.val_split == "random" and train.val_share == 0.1
    assert train.batch_size == 128 and train.lr == 0.001
    assert train.handover == "last"


def test_evaluation_as_the_study(study: tuple[TrainParams, EvaluateParams, SharedParams]) -> None:
    """The last epoch's weights, argmax over all six classes."""
    _, evaluate, _ = study
    assert evaluate.checkpoint == "last"
    assert evaluate.argmax_over_ignore is True


def test_ours_stay_the_default() -> None:
    """params.yaml: every other source, spatial blocks, a permutation per epoch, square crops, best weights."""
    train, evaluate = load_section(TrainParams, OURS), load_section(EvaluateParams, OURS)
    assert train.others == {"default": "all"} and isinstance(train.others_size, int)
    assert train.pixel_balance == "none" and train.handover == "best"
    assert (train.sampling, train.val_split, train.crop_ratio) == ("permutation", "blocks", (1.0, 1.0))
    assert evaluate.checkpoint == "best" and evaluate.argmax_over_ignore is False
