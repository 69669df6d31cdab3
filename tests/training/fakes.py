"""Fakes for the training tests: weight files with the real key names, and a quiet thread setting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import timm
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: these nets are tiny, and OpenMP threads spinning on 2 shared cores cost 50x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fake_resnet50_state(in_chans: int, seed: int) -> dict[str, torch.Tensor]:
    """A ResNet-50 state dict with the real timm/torchvision key names and seeded random, well-scaled values."""
    with torch.device("meta"):  # only names and shapes: no init cost
        template = timm.create_model("resnet50", in_chans=in_chans, num_classes=1000).state_dict()
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, meta in template.items():
        shape = meta.shape
        if not meta.is_floating_point():  # num_batches_tracked
            state[key] = torch.full(shape, 100 + seed, dtype=meta.dtype)
        elif len(shape) == 4:  # convolutions: He-scaled so activations stay finite
            state[key] = torch.randn(shape, generator=generator) * (2 / shape[1:].numel()) ** 0.5
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith(".weight") and len(shape) == 1:  # BatchNorm scale
            state[key] = torch.rand(shape, generator=generator) * 0.5 + 0.5
        else:  # BatchNorm shift and mean, the fc head
            state[key] = torch.randn(shape, generator=generator) * 0.1
    return state
