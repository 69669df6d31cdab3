"""The study's Satlas model: SatlasPretrain's ResNet-50, its pretrained FPN and upsampling, a two-convolution head.

The study (its torchgeo fork, `torchgeo/trainers/segmentation_satlas.py`) built `satlaspretrain_models`'
`Weights().get_pretrained_model("Sentinel2_Resnet50_SI_MS", fpn=True)` and put a head on the upsampled map. That
call downloads the weight file; here the same parts are built from the package's own classes and filled from the
offline file by the package's own prefix rules, so the model is the study's and nothing is fetched. As in the
package, the backbone and the FPN are pretrained and the upsampling module starts from random init.
"""

from __future__ import annotations

from pathlib import Path

import torch
from satlaspretrain_models.models import FPN, ResnetBackbone, Upsample
from satlaspretrain_models.utils import adjust_state_dict_prefix

from curation.core.errors import Problem
from curation.core.io import sha256_file
from training.backbones import Backbone
from training.weights import Provenance, WeightsError, encoder_state

FEATURES = 128  # channels of SatlasPretrain's FPN and upsampled map
UNUSED = "resnet.fc."  # torchvision's classifier in SatlasPretrain's backbone: in the file, never in the forward


class SatlasFPN(torch.nn.Module):
    """Backbone (`encoder`, the part a frozen run freezes) -> FPN -> upsampling to 1x -> head -> logits.

    Parts are created in the package's order (backbone, FPN, upsampling, then the study's head), so a seed gives the
    study's random init. The backbone's unused classifier is dropped: an unfrozen multi-GPU run would otherwise
    stop on parameters that get no gradient.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.encoder = ResnetBackbone(in_channels, arch="resnet50")
        self.fpn = FPN(self.encoder.out_channels)
        self.upsample = Upsample(self.fpn.out_channels)
        self.head = torch.nn.Sequential(
            torch.nn.Conv2d(FEATURES, FEATURES, 3, padding=1),
            torch.nn.ReLU(inplace=True),
            torch.nn.Conv2d(FEATURES, num_classes, 3, padding=1),
        )
        self.encoder.resnet.fc = torch.nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 9, H, W] normalized input (sides divisible by 32) -> [B, classes, H, W] logits."""
        features: list[torch.Tensor] = self.upsample(self.fpn(self.encoder(x)))
        logits: torch.Tensor = self.head(features[0])  # the upsampled map; the rest are the FPN's levels
        return logits


def satlas_parts(raw: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The file's backbone and FPN tensors under the parts' own key names (the package's prefix rules)."""
    backbone = adjust_state_dict_prefix(raw, "backbone", "backbone.", 0)
    return {
        "encoder": {k: v for k, v in backbone.items() if not k.startswith(UNUSED)},
        "fpn": adjust_state_dict_prefix(raw, "fpn", "intermediates.0.", 0),
    }


def load_satlas(model: torch.nn.Module, path: Path, backbone: Backbone) -> Provenance:
    """Fill a SatlasFPN's backbone and FPN from the SatlasPretrain file; mismatched keys name the file and keys."""
    parts = satlas_parts(encoder_state(path, backbone))
    problems = []
    for name, state in parts.items():
        expected = getattr(model, name).state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
        detail = "; ".join(
            f"{label}: {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        if detail:
            problems.append(
                Problem(
                    str(path),
                    f"SatlasPretrain {backbone.weights.split(':')[-1]} file with `{name}` tensors",
                    f"{name}: {detail}",
                    f"use {backbone.url}",
                )
            )
    if problems:
        raise WeightsError("weight file does not fit the SatlasPretrain model", problems)
    for name, state in parts.items():
        getattr(model, name).load_state_dict(state, strict=True)
    return Provenance("pretrained", backbone.weights, path.name, sha256_file(path))
