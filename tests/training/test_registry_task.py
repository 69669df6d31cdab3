"""Registry entries as CropTask builds them: `scratch` trains offline with no permission to fall back, by design."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from curation.core.errors import ParamsError
from curation.core.shared import SharedParams
from training.backbones import BACKBONES, MATRIX_BACKBONES, RANDOM, SPECTRAL, get_backbone
from training.config import ALL, TrainParams
from training.factory import task_factory
from training.plans import _axis
from training.task import CropTask
from training.weights import WeightsError

from .fakes import one_thread  # noqa: F401 - one_thread is an autouse fixture
from .world import BANDS as FILE_BANDS

CLASSES = 6


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real torch hub cache: no weight file is found anywhere."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def make_task(name: str, allow_random_init: bool) -> CropTask:
    """A small-decoder task on a registry entry, reading chips in FILE_BANDS order."""
    return CropTask(
        backbone_spec=get_backbone(name),
        file_bands=FILE_BANDS,
        num_classes=CLASSES,
        decoder_channels=(16, 16, 16, 16, 16),
        allow_random_init=allow_random_init,
    )


def test_scratch_builds_without_permission_and_records_random() -> None:
    """`scratch` needs no allow_random_init: its run records weights random, enum random, no file."""
    task = make_task("scratch", allow_random_init=False)
    assert task.provenance.as_dict() == {"weights": "random", "enum": RANDOM, "file": None, "sha256": None}
    assert task.model.encoder.conv1.in_channels == 13  # the same U-Net shape as ssl4eo's
    chips = torch.randint(0, 10000, (2, len(FILE_BANDS), 32, 32), dtype=torch.int32)
    assert task.predict_classes(chips).shape == (2, 32, 32)


def test_scratch_shape_equals_ssl4eo_fallback() -> None:
    """The baseline is the same model as a pretrained entry's: every tensor name and shape match."""
    scratch = make_task("scratch", allow_random_init=False).model.state_dict()
    ssl4eo = make_task("ssl4eo", allow_random_init=True)
    assert ssl4eo.provenance.weights == "random" and ssl4eo.provenance.enum == BACKBONES["ssl4eo"].weights
    assert {k: v.shape for k, v in scratch.items()} == {k: v.shape for k, v in ssl4eo.model.state_dict().items()}


def test_new_entry_without_file_is_a_named_error() -> None:
    """A new pretrained entry's missing file stops the build, naming the file; a typo gets a hint."""
    with pytest.raises(WeightsError, match="no weights for backbone 'secoeco'") as caught:
        make_task("secoeco", allow_random_init=False)
    assert BACKBONES["secoeco"].file_name in str(caught.value)
    with pytest.raises(ParamsError, match="did you mean 'secoeco'"):
        make_task("seco_eco", allow_random_init=False)


@pytest.mark.parametrize("name", ["dino", "decur", "softcon", "closp", "secoeco", "scratch", "spectral"])
def test_matrix_axis_accepts_new_names(name: str) -> None:
    """`train.matrix.backbone` takes every new entry; `all` covers the whole registry; a typo gets a hint."""
    assert _axis(name, list(MATRIX_BACKBONES), "backbone") == [name]
    assert name in _axis(ALL, list(MATRIX_BACKBONES), "backbone")
    with pytest.raises(ParamsError, match=f"did you mean {name!r}"):
        _axis(name + "x", list(MATRIX_BACKBONES), "backbone")


def test_spectral_is_a_matrix_name_without_a_resnet() -> None:
    """`spectral` is listed beside the ResNets but has no registry entry: asking for its ResNet is an error."""
    assert MATRIX_BACKBONES[-1] == SPECTRAL and SPECTRAL not in BACKBONES
    with pytest.raises(ValueError, match="not a ResNet"):
        get_backbone(SPECTRAL)


def test_the_factory_freezes_pretrained_encoders_only(train_params: TrainParams, shared_params: SharedParams) -> None:
    """Under `model.frozen_encoder: true`, a pretrained entry (here fallen back to random) keeps its encoder frozen;
    `scratch` trains every layer: it has no pretrained features to keep."""
    assert train_params.model.frozen_encoder
    build = task_factory(train_params, shared_params, CLASSES)
    ssl4eo, scratch = build("ssl4eo"), build("scratch")
    assert ssl4eo.frozen and not scratch.frozen
    encoder = [p.requires_grad for name, p in scratch.model.named_parameters() if name.startswith("encoder.")]
    assert encoder and all(encoder)
    assert not any(p.requires_grad for name, p in ssl4eo.model.named_parameters() if name.startswith("encoder."))
