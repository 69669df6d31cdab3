"""The backbones registry: each backbone reads the right bands, in the right order, with the right scaling."""

from __future__ import annotations

import importlib
from pathlib import PurePosixPath

import pytest
import torch
import torchgeo.models
import torchvision.models

from curation.core.errors import ParamsError
from training.backbones import BACKBONES, MATRIX_BACKBONES, Normalizer, get_backbone

from .world import BANDS as FILE_BANDS

# params `shared.bands`: the chips' band order (B8A last)
SATURATED = 60000  # above every divisor: shows whether a backbone clamps

# Band i of the file (0-based) holds 100 * (i + 1): B01 100, ..., B12 1200, B8A 1300.
SSL4EO_RAW = (100, 200, 300, 400, 500, 600, 700, 800, 1300, 900, 1000, 1100, 1200)  # B01..B08, B8A, B09..B12
SATLAS_RAW = (400, 300, 200, 500, 600, 700, 800, 1100, 1200)  # B04, B03, B02, B05, B06, B07, B08, B11, B12

# Channel-by-channel values of pixel 0 (the band-coded value) and pixel 1 (SATURATED).
EXPECTED = {
    "ssl4eo": (
        [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.13, 0.09, 0.10, 0.11, 0.12],
        [6.0] * 13,  # no clamp
    ),
    "satlas": (
        [400 / 3558, 300 / 3558, 200 / 3558, 500 / 8160, 600 / 8160, 700 / 8160, 800 / 8160, 1100 / 8160, 1200 / 8160],
        [1.0] * 9,  # clamped
    ),
    "imagenet": (  # the study: all 13 bands as SSL4EO reads them
        [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.13, 0.09, 0.10, 0.11, 0.12],
        [6.0] * 13,
    ),
    "imagenet_rgb": (
        [
            (400 / 3558 - 0.485) / 0.229,
            (300 / 3558 - 0.456) / 0.224,
            (200 / 3558 - 0.406) / 0.225,
        ],
        [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225],
    ),
}


def coded_chips(file_bands: tuple[str, ...], dtype: torch.dtype) -> torch.Tensor:
    """[1, bands, 1, 2]: pixel 0 of band b holds 100 * (its position in FILE_BANDS + 1), pixel 1 holds SATURATED."""
    coded = torch.tensor([100.0 * (FILE_BANDS.index(band) + 1) for band in file_bands])
    chips = torch.stack([coded, torch.full_like(coded, SATURATED)], dim=-1)
    return chips.view(1, len(file_bands), 1, 2).to(dtype)


@pytest.mark.parametrize("dtype", [torch.uint16, torch.int32, torch.float32])
@pytest.mark.parametrize("name", ["ssl4eo", "satlas", "imagenet", "imagenet_rgb"])
def test_normalizer_values_per_channel(name: str, dtype: torch.dtype) -> None:
    """Every output channel holds its band's value, divided, clamped (or not) and standardized."""
    out = BACKBONES[name].normalizer(FILE_BANDS)(coded_chips(FILE_BANDS, dtype))
    first, saturated = EXPECTED[name]
    assert out.dtype == torch.float32
    assert out.shape == (1, len(first), 1, 2)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor(first), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(out[0, :, 0, 1], torch.tensor(saturated), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["ssl4eo", "satlas", "imagenet_rgb"])
def test_normalizer_follows_the_file_order(name: str) -> None:
    """Chips written in another band order give the same input: selection is by name, not position."""
    shuffled = tuple(reversed(FILE_BANDS))
    backbone = BACKBONES[name]
    reordered = backbone.normalizer(shuffled)(coded_chips(shuffled, torch.float32))
    assert torch.equal(reordered, backbone.normalizer(FILE_BANDS)(coded_chips(FILE_BANDS, torch.float32)))


def test_band_indices() -> None:
    """Positions in the chips' band order, in the order each first convolution expects."""
    assert BACKBONES["ssl4eo"].band_indices(FILE_BANDS) == [0, 1, 2, 3, 4, 5, 6, 7, 12, 8, 9, 10, 11]
    assert BACKBONES["satlas"].band_indices(FILE_BANDS) == [3, 2, 1, 4, 5, 6, 7, 10, 11]
    assert BACKBONES["imagenet"].band_indices(FILE_BANDS) == [0, 1, 2, 3, 4, 5, 6, 7, 12, 8, 9, 10, 11]
    assert BACKBONES["imagenet_rgb"].band_indices(FILE_BANDS) == [3, 2, 1]
    raw = coded_chips(FILE_BANDS, torch.float32)[0, :, 0, 0]
    assert tuple(raw[BACKBONES["ssl4eo"].band_indices(FILE_BANDS)].int().tolist()) == SSL4EO_RAW
    assert tuple(raw[BACKBONES["satlas"].band_indices(FILE_BANDS)].int().tolist()) == SATLAS_RAW


def test_bands_match_torchgeo_weight_metadata() -> None:
    """The registry's band order is the one torchgeo documents for each weight."""
    moco = torchgeo.models.ResNet50_Weights.SENTINEL2_ALL_MOCO.meta["bands"]
    assert [b.upper() if len(b) == 3 else f"B0{b[1]}" for b in moco] == list(BACKBONES["ssl4eo"].bands)
    satlas = torchgeo.models.ResNet50_Weights.SENTINEL2_SI_MS_SATLAS.meta["bands"]
    assert list(satlas) == list(BACKBONES["satlas"].bands)


def test_urls_file_names_and_channels() -> None:
    """URLs are the enums' own; the offline file name is the URL's basename; channel counts fit the weights."""
    moco = torchgeo.models.ResNet50_Weights.SENTINEL2_ALL_MOCO
    satlas = torchgeo.models.ResNet50_Weights.SENTINEL2_SI_MS_SATLAS
    imagenet = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
    expected = {"ssl4eo": moco, "satlas": satlas, "imagenet": imagenet, "imagenet_rgb": imagenet}
    for name, enum in expected.items():
        backbone = BACKBONES[name]
        assert backbone.url == enum.url
        assert backbone.file_name == PurePosixPath(enum.url).name
    assert BACKBONES["ssl4eo"].file_name == "resnet50_sentinel2_all_moco-df8b932e.pth"
    assert BACKBONES["satlas"].file_name == "sentinel2_resnet50_si_ms-1f454cc6.pth"
    assert BACKBONES["imagenet"].file_name == "resnet50-0676ba61.pth"
    channels = {name: (b.in_channels, b.pretrained_channels) for name, b in BACKBONES.items()}
    assert channels == {"ssl4eo": (13, 13), "satlas": (9, 9), "imagenet": (13, 3), "imagenet_rgb": (3, 3)}
    assert moco.meta["in_chans"] == 13
    assert satlas.meta["in_chans"] == 9


@pytest.mark.parametrize("name", list(BACKBONES))
def test_weights_string_names_the_enum(name: str) -> None:
    """`module:Enum.MEMBER` resolves to the enum whose URL the registry carries."""
    backbone = BACKBONES[name]
    module, member = backbone.weights.split(":")
    enum_name, value = member.split(".")
    enum = getattr(getattr(importlib.import_module(module), enum_name), value)
    assert enum.url == backbone.url


def test_per_band_tuples_have_one_value_per_band() -> None:
    """divisor, mean and std are as long as the band list (a short tuple would broadcast silently)."""
    for backbone in BACKBONES.values():
        assert len(backbone.divisor) == len(backbone.mean) == len(backbone.std) == len(backbone.bands)


def test_get_backbone() -> None:
    """Matrix names map to registry entries; imagenet_input only switches imagenet."""
    assert get_backbone("ssl4eo") is BACKBONES["ssl4eo"]
    assert get_backbone("satlas") is BACKBONES["satlas"]
    assert get_backbone("imagenet") is BACKBONES["imagenet"]
    assert get_backbone("imagenet", "all_bands") is BACKBONES["imagenet"]
    assert get_backbone("imagenet", "rgb") is BACKBONES["imagenet_rgb"]
    assert get_backbone("ssl4eo", "rgb") is BACKBONES["ssl4eo"]
    assert MATRIX_BACKBONES == ("ssl4eo", "satlas", "imagenet")


def test_unknown_backbone_hints() -> None:
    """A typo gets a did-you-mean hint; anything else gets the list of names."""
    with pytest.raises(ParamsError, match="unknown backbone") as typo:
        get_backbone("ssl4e0")
    assert "did you mean 'ssl4eo'?" in str(typo.value)
    with pytest.raises(ParamsError) as other:
        get_backbone("vit")
    assert "did you mean" not in str(other.value)
    assert "('ssl4eo', 'satlas', 'imagenet')" in str(other.value)


@pytest.mark.parametrize(("name", "dropped"), [("satlas", "B11"), ("ssl4eo", "B8A"), ("imagenet_rgb", "B02")])
def test_chips_lacking_a_band(name: str, dropped: str) -> None:
    """Chips without one of the backbone's bands: a ParamsError naming that band, from indices and normalizer."""
    file_bands = tuple(band for band in FILE_BANDS if band != dropped)
    backbone = BACKBONES[name]
    with pytest.raises(ParamsError, match=f"shared.bands lacks \\['{dropped}'\\]"):
        backbone.band_indices(file_bands)
    with pytest.raises(ParamsError, match=dropped):
        backbone.normalizer(file_bands)


def test_normalizer_state_is_not_persistent() -> None:
    """Scaling lives in the registry, not in checkpoints: the normalizer's buffers are not saved."""
    normalizer = BACKBONES["satlas"].normalizer(FILE_BANDS)
    assert isinstance(normalizer, Normalizer)
    assert normalizer.state_dict() == {}
    assert normalizer.index.tolist() == [3, 2, 1, 4, 5, 6, 7, 10, 11]
