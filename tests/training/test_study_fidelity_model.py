"""The study profile builds the study's model (docs/study-fidelity.md, sections 1 and 7); params.yaml keeps ours."""

from __future__ import annotations

from pathlib import Path

from curation.core.params import load_section
from training.backbones import BACKBONES, SATLAS_MODEL_ID, get_backbone
from training.config import TrainParams

ROOT = Path(__file__).resolve().parents[2]


def train_of(name: str) -> TrainParams:
    """The validated `train` section of a params file, through the project's loader."""
    return load_section(TrainParams, ROOT / name)


def test_study_profile_model_settings() -> None:
    """Satlas through SatlasPretrain's FPN model, frozen backbone, BatchNorm kept in training mode."""
    model = train_of("profiles/study.yaml").model
    assert model.satlas_architecture == "satlas_fpn"  # torchgeo fork: torchgeo/trainers/segmentation_satlas.py
    assert model.frozen_batchnorm == "train"  # freeze_backbone only sets requires_grad (torchgeo/trainers/)
    assert model.frozen_encoder is True  # experiments/*/..._frozen.yaml: freeze_backbone: True
    spec = get_backbone("satlas", model.imagenet_input, model.satlas_architecture)
    assert spec is BACKBONES["satlas_fpn"]
    assert SATLAS_MODEL_ID == "Sentinel2_Resnet50_SI_MS"  # the identifier the study passed
    assert spec.weights == f"satlaspretrain_models:{SATLAS_MODEL_ID}"
    assert spec.bands == ("B04", "B03", "B02", "B05", "B06", "B07", "B08", "B11", "B12")  # the study's yaml order
    assert spec.divisor == (3558.0,) * 3 + (8160.0,) * 6 and spec.clamp  # its Satlas datamodules
    assert "satlas" in train_of("profiles/study.yaml").matrix.backbone


def test_ours_in_params_and_scale() -> None:
    for name in ("params.yaml", "profiles/scale.yaml"):
        model = train_of(name).model
        assert model.satlas_architecture == "unet", name
        assert model.frozen_batchnorm == "eval", name
