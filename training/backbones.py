"""The backbones registry: which weights, which bands in which order, and how to scale them.

Band selection and scaling live here and nowhere else, so a call site cannot feed a backbone the wrong bands.
Scaling is one per-band affine map plus an optional clamp: `(x / divisor - mean) / std`. An entry also says which
model its weight file fills (`architecture`), so a U-Net never loads the full SatlasPretrain file, nor the reverse,
and the weights' licence, which every result row carries. Adding a backbone is one entry in `_build`; `scratch` is the
entry with no weight file at all: a random-init baseline by design, never a fallback. `spectral`, the other
baseline, is a matrix name without an entry: no network, no bands to select (training/spectral.py).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import torch

from curation.core.errors import ParamsError, Problem

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SSL4EO_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
SATLAS_BANDS = ("B04", "B03", "B02", "B05", "B06", "B07", "B08", "B11", "B12")
RGB_BANDS = ("B04", "B03", "B02")
SECO_ECO_BANDS = tuple(band for band in SSL4EO_BANDS if band != "B10")  # SSL4Eco dropped the cirrus band
SATLAS_MODEL_ID = "Sentinel2_Resnet50_SI_MS"  # satlaspretrain_models' identifier, as the study loaded it
RANDOM = "random"  # the `weights` of an entry without a weight file: random init by design
# torchgeo's SSL4EO-S12 band statistics (raw reflectance), the input SoftCon's weights were trained on
SSL4EO_S2_MEAN = (1612.9, 1397.6, 1322.3, 1373.1, 1561.0, 2108.4, 2390.7, 2318.7, 2581.0, 837.7, 22.0, 2195.2, 1537.4)
SSL4EO_S2_STD = (791.0, 854.3, 878.7, 1144.9, 1127.5, 1164.2, 1276.0, 1249.5, 1345.9, 577.5, 47.5, 1340.0, 1142.9)


@dataclass(frozen=True)
class Backbone:
    """One ResNet-50, the input it was trained on, and where its weights come from (and under which licence)."""

    name: str
    weights: str  # the weight enum, `module:Enum.MEMBER`; RANDOM: no weight file, random init by design
    url: str | None  # what the enum would download; its basename is the file looked up offline (None: no file)
    licence: str | None  # of the weight file, as its publisher gives it (None: no weights, nothing licensed)
    bands: tuple[str, ...]  # in the order the first convolution expects
    divisor: tuple[float, ...]  # per band
    mean: tuple[float, ...]  # per band, after division
    std: tuple[float, ...]
    clamp: bool  # clamp to [0, 1] after division (before mean/std)
    pretrained_channels: int | None  # input channels of the weight file's first convolution (None: no file)
    architecture: Literal["unet", "satlas_fpn"] = "unet"  # the model the weight file fills

    @property
    def pretrained(self) -> bool:
        """Whether the entry has a weight file; `scratch` has none and never looks for one."""
        return self.url is not None

    @property
    def file_name(self) -> str:
        """The weight file's name in a torch hub checkpoints directory: the URL's basename, query dropped."""
        if self.url is None:
            raise ValueError(f"backbone {self.name!r} has no weight file: it starts from random init by design")
        return urlsplit(self.url).path.rsplit("/", 1)[-1]

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


def _torchgeo_s2(name: str, member: str, url: str, licence: str, **scaling: Any) -> Backbone:  # noqa: ANN401
    """A torchgeo Sentinel-2 ResNet-50 filling a U-Net encoder: the enum's URL, its bands, its scaling."""
    return Backbone(
        name=name,
        weights=f"torchgeo.models:ResNet50_Weights.{member}",
        url=url,
        licence=licence,
        pretrained_channels=len(scaling["bands"]),
        **scaling,
    )


def _build() -> dict[str, Backbone]:
    """The registry. Licences: torchgeo's weights table (docs/api/weights/sentinel2.csv), else the publisher's."""
    ssl4eo = _torchgeo_s2(
        "ssl4eo",
        "SENTINEL2_ALL_MOCO",
        "https://hf.co/torchgeo/resnet50_sentinel2_all_moco/resolve/"
        "da4f3c9dbe09272eb902f3b37f46635fa4726879/resnet50_sentinel2_all_moco-df8b932e.pth",
        "CC-BY-4.0",
        **_study_13_bands(),
    )
    dino = _torchgeo_s2(  # SSL4EO-S12, DINO: the same input as MoCo's
        "dino",
        "SENTINEL2_ALL_DINO",
        "https://hf.co/torchgeo/resnet50_sentinel2_all_dino/resolve/"
        "d7f14bf5530d70ac69d763e58e77e44dbecfec7c/resnet50_sentinel2_all_dino-d6c330e9.pth",
        "CC-BY-4.0",
        **_study_13_bands(),
    )
    decur = _torchgeo_s2(  # DeCUR on SSL4EO-S12's optical modality: x/10000 like SSL4EO
        "decur",
        "SENTINEL2_ALL_DECUR",
        "https://huggingface.co/torchgeo/decur/resolve/"
        "eba7ae5945d482a4319be046d34b552db5dd9950/rn50_ssl4eo-s12_ms_decur_ep100-fc6b09ff.pth",
        "Apache-2.0",
        **_study_13_bands(),
    )
    softcon = _torchgeo_s2(  # SoftCon: standardized per band with SSL4EO-S12's statistics, not x/10000
        "softcon",
        "SENTINEL2_ALL_SOFTCON",
        "https://huggingface.co/wangyi111/softcon/resolve/62ff465b2e7467dbfc70758ec1e9d08ab87fc46b/B13_rn50_softcon.pth",
        "CC-BY-4.0",
        bands=SSL4EO_BANDS,
        divisor=_uniform(1.0, 13),
        mean=SSL4EO_S2_MEAN,
        std=SSL4EO_S2_STD,
        clamp=False,
    )
    closp = _torchgeo_s2(  # CLOSP's optical encoder (CrisisLandMark); torchgeo lists no licence: the repo's
        "closp",
        "SENTINEL2_ALL_CLOSP",
        "https://huggingface.co/DarthReca/CLOSP-Visual/resolve/"
        "3bb8677c21dac56bea2dd7baa08d7871272db440/closp-rn_s2_encoder-183922a5.pth",
        "Apache-2.0",
        **_study_13_bands(),
    )
    secoeco = _torchgeo_s2(  # SSL4Eco's SeCo: 12 bands (no B10), x/10000
        "secoeco",
        "SENTINEL2_ALL_SECO_ECO",
        "https://hf.co/torchgeo/seco-eco/resolve/"
        "aea279ea46572cfca5876ac1f9d8d8595fcdeb3b/resnet50_sentinel2_all_seco_eco-90ec322f.pth",
        "MIT",
        bands=SECO_ECO_BANDS,
        divisor=_uniform(10000.0, 12),
        mean=_uniform(0.0, 12),
        std=_uniform(1.0, 12),
        clamp=False,
    )
    satlas = _torchgeo_s2(
        "satlas",
        "SENTINEL2_SI_MS_SATLAS",
        "https://hf.co/torchgeo/satlas/resolve/"
        "081d6607431bf36bdb59c223777cbb267131b8f2/sentinel2_resnet50_si_ms-1f454cc6.pth",
        "ODC-By-1.0",
        bands=SATLAS_BANDS,
        divisor=(3558.0, 3558.0, 3558.0, *_uniform(8160.0, 6)),  # raw L1C; torchgeo's /255 assumes 8-bit RGB
        mean=_uniform(0.0, 9),
        std=_uniform(1.0, 9),
        clamp=True,
    )
    satlas_fpn = Backbone(  # the same input, through SatlasPretrain's own model: backbone, FPN and upsampling
        name="satlas_fpn",
        weights=f"satlaspretrain_models:{SATLAS_MODEL_ID}",
        url="https://huggingface.co/allenai/satlas-pretrain/resolve/main/sentinel2_resnet50_si_ms.pth?download=true",
        licence="ODC-By-1.0",
        bands=SATLAS_BANDS,
        divisor=satlas.divisor,
        mean=satlas.mean,
        std=satlas.std,
        clamp=True,
        pretrained_channels=9,
        architecture="satlas_fpn",
    )
    imagenet_url = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
    imagenet_licence = "BSD-3-Clause"  # torchvision's; ImageNet's terms of access may bind its users too
    imagenet = Backbone(
        name="imagenet",
        weights="torchvision.models:ResNet50_Weights.IMAGENET1K_V1",
        url=imagenet_url,
        licence=imagenet_licence,
        pretrained_channels=3,
        **_study_13_bands(),
    )
    imagenet_rgb = Backbone(
        name="imagenet_rgb",
        weights="torchvision.models:ResNet50_Weights.IMAGENET1K_V1",
        url=imagenet_url,
        licence=imagenet_licence,
        bands=RGB_BANDS,
        divisor=_uniform(3558.0, 3),  # reflectance to [0, 1] like an 8-bit photo (Satlas's RGB scale), then ImageNet
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        clamp=True,
        pretrained_channels=3,
    )
    scratch = Backbone(  # the baseline: the same U-Net, random init, the study's 13-band input
        name="scratch",
        weights=RANDOM,
        url=None,
        licence=None,
        pretrained_channels=None,
        **_study_13_bands(),
    )
    entries = (ssl4eo, satlas, satlas_fpn, imagenet, imagenet_rgb, dino, decur, softcon, closp, secoeco, scratch)
    return {b.name: b for b in entries}


BACKBONES: dict[str, Backbone] = _build()
VARIANTS = {"imagenet_rgb": "imagenet", "satlas_fpn": "satlas"}  # entry -> the matrix name whose param selects it
# `imagenet_rgb` is `imagenet` under model.imagenet_input: rgb; `satlas_fpn` is `satlas` under
# model.satlas_architecture: satlas_fpn
SPECTRAL = "spectral"  # the per-pixel LightGBM baseline (training/spectral.py): a matrix name, not a ResNet
MATRIX_BACKBONES = (*(name for name in BACKBONES if name not in VARIANTS), SPECTRAL)  # train.matrix.backbone's names


def get_backbone(name: str, imagenet_input: str = "all_bands", satlas_architecture: str = "unet") -> Backbone:
    """The registry entry of a matrix backbone name (imagenet follows `imagenet_input`, satlas its architecture)."""
    if name not in MATRIX_BACKBONES:
        close = difflib.get_close_matches(name, MATRIX_BACKBONES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ParamsError(
            "unknown backbone",
            [Problem("params.yaml", "backbone in the registry", repr(name), f"{hint}use one of {MATRIX_BACKBONES}")],
        )
    if name == SPECTRAL:
        raise ValueError(f"{SPECTRAL!r} is the per-pixel baseline, not a ResNet: training.spectral builds it")
    if name == "imagenet" and imagenet_input == "rgb":
        return BACKBONES["imagenet_rgb"]
    if name == "satlas" and satlas_architecture == "satlas_fpn":
        return BACKBONES["satlas_fpn"]
    return BACKBONES[name]
