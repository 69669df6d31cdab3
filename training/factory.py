"""What `train` and `evaluate` both build: the device the chips live on and the task for a backbone name."""

from __future__ import annotations

from typing import Any

import torch

from curation.core.shared import SharedParams
from training.backbones import get_backbone
from training.config import TrainParams
from training.distributed import local_rank
from training.task import CropTask


def device_of(accelerator: str) -> torch.device:
    """Where the chips live: the GPU when Lightning will train there (under DDP, this rank's own GPU)."""
    if accelerator in ("gpu", "auto") and torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def task_factory(params: TrainParams, shared: SharedParams, num_classes: int) -> Any:  # noqa: ANN401 - a closure
    """Backbone name -> a freshly built CropTask under these params.

    `model.frozen_encoder` freezes pretrained encoders only: `scratch`, random by design, trains as a whole (a frozen
    random encoder is what a pretrained entry without its file falls back to, not a baseline).
    """

    def build(name: str) -> CropTask:
        spec = get_backbone(name, params.model.imagenet_input, params.model.satlas_architecture)
        return CropTask(
            backbone_spec=spec,
            file_bands=tuple(shared.bands),
            num_classes=num_classes,
            decoder_channels=params.model.decoder_channels,
            encoder_depth=params.model.encoder_depth,
            frozen_encoder=params.model.frozen_encoder and spec.pretrained,  # scratch has nothing to keep: all trains
            frozen_batchnorm=params.model.frozen_batchnorm,
            lr=params.lr,
            weight_decay=params.weight_decay,
            patience=params.plateau_patience,
            weights_dir=params.weights_dir,
            allow_random_init=params.allow_random_init,
            channels_last=params.channels_last,
        )

    return build
