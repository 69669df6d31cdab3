"""`train.precision` and `train.channels_last`: the settings reach Lightning and the network, and change no result
beyond rounding."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import torch

from curation.core.artifacts import MANIFEST
from curation.core.shared import SharedParams
from training.backbones import get_backbone
from training.config import TrainParams
from training.data import load_bank
from training.factory import task_factory
from training.fit import Fitter, _Tracker, _trainer
from training.plans import plan_entry
from training.task import CropTask
from training.train import settings_of

from .conftest import train_section
from .world import BANDS, make_world


def unet(channels_last: bool) -> CropTask:
    """A small random-init U-Net, the same weights whatever its memory format."""
    torch.manual_seed(0)
    return CropTask(
        backbone_spec=get_backbone("scratch"),
        file_bands=BANDS,
        num_classes=6,
        decoder_channels=(16, 16, 16),
        encoder_depth=3,
        allow_random_init=True,
        channels_last=channels_last,
    ).eval()


def test_channels_last_lays_out_the_network_and_its_input_and_predicts_the_same() -> None:
    """NHWC convolutions are a memory layout, not another model: the same logits within float rounding."""
    nchw, nhwc = unet(False), unet(True)
    convs = [m for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    assert not unet(False).model.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    image = torch.rand(2, 13, 64, 64) * 5000
    with torch.no_grad():
        expected, got = nchw(image), nhwc(image)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_precision_reaches_lightning_and_a_bf16_fit_trains(tmp_path: Path, shared_params: SharedParams) -> None:
    """`bf16-mixed` on the CPU autocasts the steps (Lightning's plugin) and still gives finite losses."""
    params = TrainParams.model_validate(train_section(precision="bf16-mixed", channels_last=True, accelerator="cpu"))
    settings = settings_of(params)
    assert _trainer(settings, 1, _Tracker(0, "val_loss")).precision == "bf16-mixed"
    _, subsets = make_world(tmp_path)
    manifest = pl.read_parquet(tmp_path / MANIFEST)
    plan = plan_entry(params, list(shared_params.sources), subsets, manifest, ("id", "ssl4eo", "cdl", 4))[0]
    bank = load_bank(tmp_path, manifest, sorted(plan.chip_ids()))
    task, result = Fitter(task_factory(params, shared_params, 6), settings).fit(plan, bank)
    assert task.channels_last
    assert all(torch.isfinite(torch.tensor(row["train_loss"])) for row in result.history)


def test_precision_names_are_checked() -> None:
    """A precision Lightning does not know is a params error, not a failure after the chips are loaded."""
    with pytest.raises(ValueError, match="precision"):
        TrainParams.model_validate(train_section(precision="fp8"))
