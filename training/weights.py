"""Offline weights: find the file a weight enum would download, load it into the encoder, or say where to put it.

Nothing is fetched: the file is looked up by the name the enum's URL ends with, first in a configured directory,
then in torch hub's checkpoints directory (`$TORCH_HOME/hub/checkpoints`), where `torch.hub` itself would cache it.
An entry without a weight file (`scratch`) looks for nothing: its random init is the design, not a fallback.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from curation.core.errors import Problem, ProblemsError
from curation.core.io import sha256_file
from training.backbones import Backbone


class WeightsError(ProblemsError):
    """A weight file is missing or does not fit the encoder."""


@dataclass(frozen=True)
class Provenance:
    """Where the encoder's weights came from; recorded with every run's metrics."""

    weights: str  # "pretrained" or "random"
    enum: str  # the registry's weight enum (`random` for an entry without one: random init by design)
    file: str | None  # the file name loaded (None: random init)
    sha256: str | None  # of the file loaded

    def as_dict(self) -> dict[str, str | None]:
        """JSON-ready form."""
        return {"weights": self.weights, "enum": self.enum, "file": self.file, "sha256": self.sha256}


def hub_checkpoints() -> Path:
    """Torch hub's checkpoints directory (honours $TORCH_HOME), where `resnet50(weights=...)` looks too."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def search_dirs(weights_dir: Path | None) -> list[Path]:
    """Directories searched for weight files, in order."""
    return [*([weights_dir] if weights_dir is not None else []), hub_checkpoints()]


def find_weights(backbone: Backbone, weights_dir: Path | None) -> Path | None:
    """The weight file of `backbone` if one of the search directories has it."""
    for folder in search_dirs(weights_dir):
        candidate = folder / backbone.file_name
        if candidate.is_file():
            return candidate
    return None


def missing_weights_error(backbone: Backbone, weights_dir: Path | None) -> WeightsError:
    """The error for a weight file found nowhere: names the file, where it was looked for and where to put it."""
    where = " or ".join(str(folder) for folder in search_dirs(weights_dir))
    return WeightsError(
        f"no weights for backbone {backbone.name!r}",
        [
            Problem(
                backbone.file_name,
                "pretrained weights available offline",
                f"not found in {where}",
                f"download {backbone.url} (the file {backbone.weights} fetches) into {search_dirs(weights_dir)[0]}, "
                "or set train.allow_random_init: true to train from random init",
            )
        ],
    )


def encoder_state(path: Path, backbone: Backbone) -> dict[str, torch.Tensor]:
    """The encoder's tensors from a weight file (weights_only), without the classifier head."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which and what to do
        raise WeightsError(
            "unreadable weight file",
            [Problem(str(path), "a torch state dict", f"{type(exc).__name__}: {exc}", f"re-download {backbone.url}")],
        ) from exc
    if isinstance(raw, dict) and "state_dict" in raw and isinstance(raw["state_dict"], dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict):
        raise WeightsError(
            "unreadable weight file",
            [Problem(str(path), "a torch state dict", f"got {type(raw).__name__}", f"re-download {backbone.url}")],
        )
    return {key: value for key, value in raw.items() if not key.startswith("fc.")}


def adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A first-convolution kernel for `in_channels` bands from one trained on fewer or more (smp's rule).

    Channels are repeated cyclically and rescaled by (trained channels / new channels), which keeps the activation
    scale of a constant input (exactly so when the new count is a multiple of the old): smp's rule, and how the
    study fed 13 bands to an ImageNet encoder.
    """
    trained = weight.shape[1]
    if trained == in_channels:
        return weight
    index = torch.arange(in_channels) % trained
    return weight[:, index] * (trained / in_channels)


def load_encoder(encoder: torch.nn.Module, path: Path, backbone: Backbone) -> Provenance:
    """Load the weight file into an smp ResNet-50 encoder; key mismatches are an error naming the keys."""
    state = encoder_state(path, backbone)
    if "conv1.weight" in state:
        state["conv1.weight"] = adapt_first_conv(state["conv1.weight"], backbone.in_channels)
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {keys[:3]}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if keys
        )
        raise WeightsError(
            "weight file does not fit the encoder",
            [Problem(str(path), "ResNet-50 state dict with timm/torchvision key names", detail, f"use {backbone.url}")],
        )
    encoder.load_state_dict(state, strict=True)
    return Provenance("pretrained", backbone.weights, path.name, sha256_file(path))


Loader = Callable[[torch.nn.Module, Path, Backbone], Provenance]
"""Fills a module from a found weight file: `load_encoder` for a U-Net's encoder, `satlas_model.load_satlas`."""


def init_encoder(
    encoder: torch.nn.Module,
    backbone: Backbone,
    weights_dir: Path | None,
    allow_random_init: bool,
    load: Loader = load_encoder,
) -> Provenance:
    """Pretrained weights when the file is there; random init only when the run allows it (and says so).

    An entry without a weight file (`scratch`) never looks for one and needs no permission: random is its design.
    """
    if not backbone.pretrained:
        return Provenance("random", backbone.weights, None, None)
    path = find_weights(backbone, weights_dir)
    if path is not None:
        return load(encoder, path, backbone)
    if not allow_random_init:
        raise missing_weights_error(backbone, weights_dir)
    return Provenance("random", backbone.weights, None, None)


def tensor_digest(module: torch.nn.Module, parameters_only: bool = False) -> str:
    """sha256 over a module's state (names, shapes, bytes): proves a rebuilt frozen encoder equals the trained one."""
    digest = hashlib.sha256()
    tensors = dict(module.named_parameters()) if parameters_only else module.state_dict()
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
