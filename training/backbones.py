"""The backbones registry: which weights, which bands in which order, and how to scale them.

Band selection and scaling live here and nowhere else, so a call site cannot feed a backbone the wrong bands.
Scaling is one per-band affine map plus an optional clamp: `(x / divisor - mean) / std`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

import torch

from curation.core.errors import ParamsError, Problem

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SSL4EO_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
SATLAS_BANDS = ("B04", "B03", "B02", "B05", "B06", "B07", "B08", "B11", "B12")
RGB_BANDS = ("B04", "B03", "B02")


@dataclass(frozen=True)
class Backbone:
    """One pretrained ResNet-50 and the input it was trained on."""

    name: str
    weights: str  # the weight enum, `module:Enum.MEMBER`
    url: str  # what the enum would download; its basename is the file looked up offline
    bands: tuple[str, ...]  # in the order the first convolution expects
    divisor: tuple[float, ...]  # per band
    mean: tuple[float, ...]  # per band, after division
    std: tuple[float, ...]
    clamp: bool  # clamp to [0, 1] after division (before mean/std)
    pretrained_channels: int  # input channels of the weight file's first convolution

    @property
    def file_name(self) -> str:
        """The weight file's name in a torch hub checkpoints directory."""
        return self.url.rsplit("/", 1)[-1]

    @property
    def in_channels(self) -> int:
        """Input channels of the model (the first convolution is adapted when it differs from the weights')."""
        return len(self.bands)

    def band_indices(self, file_bands: tuple[str, ...]) -> list[int]:
        """Positions of this backbone's bands in the chips' band order (params `shared.bands`)."""
        missing = [band for band in self.bands if band not in file_bands]
        if missing:
            raise ParamsError(
                f"backbone {self.name!r} cannot read these chips",
                [
                    Problem(
                        "params.yaml",
                        "chips carry the backbone's bands",
                        f"shared.bands lacks {missing}",
                        f"list every band of {list(self.bands)} in shared.bands",
                    )
                ],
            )
        return [file_bands.index(band) for band in self.bands]

    def normalizer(self, file_bands: tuple[str, ...], device: torch.device | str = "cpu") -> Normalizer:
        """The band selection and scaling as one module, on `device`."""
        return Normalizer(self, file_bands).to(device)


class Normalizer(torch.nn.Module):
    """uint16 chips in file band order -> float input of one backbone (select, divide, clamp, standardize)."""

    index: torch.Tensor
    divisor: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, backbone: Backbone, file_bands: tuple[str, ...]) -> None:
        super().__init__()
        self.clamp = backbone.clamp
        self.register_buffer("index", torch.tensor(backbone.band_indices(file_bands)), persistent=False)
        for name in ("divisor", "mean", "std"):
            values = torch.tensor(getattr(backbone, name), dtype=torch.float32).view(1, -1, 1, 1)
            self.register_buffer(name, values, persistent=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """[B, bands, H, W] integer chips -> [B, backbone bands, H, W] float32."""
        x = chips.index_select(1, self.index).float() / self.divisor
        if self.clamp:
            x = x.clamp(0.0, 1.0)
        return (x - self.mean) / self.std


def _uniform(value: float, bands: int) -> tuple[float, ...]:
    return (value,) * bands


def _study_13_bands() -> dict[str, Any]:
    """The 13 bands scaled x/10000 and left unnormalized: SSL4EO-S12's input, and the study's for ImageNet."""
    return {
        "bands": SSL4EO_BANDS,
        "divisor": _uniform(10000.0, 13),
        "mean": _uniform(0.0, 13),
        "std": _uniform(1.0, 13),
        "clamp": False,
    }


def _build() -> dict[str, Backbone]:
    ssl4eo = Backbone(
        name="ssl4eo",
        weights="torchgeo.models:ResNet50_Weights.SENTINEL2_ALL_MOCO",
        url="https://hf.co/torchgeo/resnet50_sentinel2_all_moco/resolve/"
        "da4f3c9dbe09272eb902f3b37f46635fa4726879/resnet50_sentinel2_all_moco-df8b932e.pth",
        pretrained_channels=13,
        **_study_13_bands(),
    )
    satlas = Backbone(
        name="satlas",
        weights="torchgeo.models:ResNet50_Weights.SENTINEL2_SI_MS_SATLAS",
        url="https://hf.co/torchgeo/satlas/resolve/"
        "081d6607431bf36bdb59c223777cbb267131b8f2/sentinel2_resnet50_si_ms-1f454cc6.pth",
        bands=SATLAS_BANDS,
        divisor=(3558.0, 3558.0, 3558.0, *_uniform(8160.0, 6)),
        mean=_uniform(0.0, 9),
        std=_uniform(1.0, 9),
        clamp=True,
        pretrained_channels=9,
    )
    imagenet_url = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    imagenet = Backbone(
        name="imagenet",
        weights="torchvision.models:ResNet50_Weights.IMAGENET1K_V1",
        url=imagenet_url,
        pretrained_channels=3,
        **_study_13_bands(),
    )
    imagenet_rgb = Backbone(
        name="imagenet_rgb",
        weights="torchvision.models:ResNet50_Weights.IMAGENET1K_V1",
        url=imagenet_url,
        bands=RGB_BANDS,
        divisor=_uniform(3558.0, 3),  # reflectance to [0, 1] like an 8-bit photo (Satlas's RGB scale), then ImageNet
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        clamp=True,
        pretrained_channels=3,
    )
    return {b.name: b for b in (ssl4eo, satlas, imagenet, imagenet_rgb)}


BACKBONES: dict[str, Backbone] = _build()
MATRIX_BACKBONES = ("ssl4eo", "satlas", "imagenet")  # `imagenet_rgb` is `imagenet` under model.imagenet_input: rgb


def get_backbone(name: str, imagenet_input: str = "all_bands") -> Backbone:
    """The registry entry of a matrix backbone name (imagenet follows `model.imagenet_input`)."""
    if name not in MATRIX_BACKBONES:
        close = difflib.get_close_matches(name, MATRIX_BACKBONES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ParamsError(
            "unknown backbone",
            [Problem("params.yaml", "backbone in the registry", repr(name), f"{hint}use one of {MATRIX_BACKBONES}")],
        )
    if name == "imagenet" and imagenet_input == "rgb":
        return BACKBONES["imagenet_rgb"]
    return BACKBONES[name]
