"""The backbones registry: each backbone reads the right bands, in the right order, with the right scaling."""

from __future__ import annotations

import importlib
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import torch
import torchvision.transforms.v2 as T
from packaging.licenses import canonicalize_license_expression

from curation.core.errors import ParamsError
from training.backbones import (
    BACKBONES,
    MATRIX_BACKBONES,
    RANDOM,
    SSL4EO_S2_MEAN,
    SSL4EO_S2_STD,
    Backbone,
    Normalizer,
    get_backbone,
)

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


def canonical(band: str) -> str:
    """torchgeo's band names (`B1`, `B8a`) in the chips' spelling (`B01`, `B8A`)."""
    band = band.upper()
    return f"B0{band[1]}" if len(band) == 2 else band


def enum_of(backbone: Backbone) -> Any:  # noqa: ANN401 - a torchgeo or torchvision WeightsEnum member
    """The weight enum a registry entry names (`module:Enum.MEMBER`)."""
    module, member = backbone.weights.split(":")
    enum_name, value = member.split(".")
    return getattr(getattr(importlib.import_module(module), enum_name), value)


TORCHGEO = [name for name, b in BACKBONES.items() if b.weights.startswith("torchgeo.models:")]
# Entries whose scaling departs from the transforms torchgeo attaches to their enum, and why.
SCALING_DEPARTS = {
    "satlas": "torchgeo divides RGB by 255 for 8-bit TCI images; raw L1C reflectance takes Satlas's own 3558",
}


def test_new_sentinel2_weights_are_registered() -> None:
    """Every Sentinel-2 ResNet-50 of torchgeo 0.8.1 the issue names is one registry entry."""
    members = {b.weights.rsplit(".", 1)[-1] for name, b in BACKBONES.items() if name in TORCHGEO}
    assert members >= {
        "SENTINEL2_ALL_MOCO",
        "SENTINEL2_SI_MS_SATLAS",
        "SENTINEL2_ALL_DINO",
        "SENTINEL2_ALL_DECUR",
        "SENTINEL2_ALL_SOFTCON",
        "SENTINEL2_ALL_CLOSP",
        "SENTINEL2_ALL_SECO_ECO",
    }


@pytest.mark.parametrize("name", TORCHGEO)
def test_bands_match_torchgeo_weight_metadata(name: str) -> None:
    """The registry's band order and channel count are the ones torchgeo documents for each weight."""
    backbone, enum = BACKBONES[name], enum_of(BACKBONES[name])
    assert [canonical(band) for band in enum.meta["bands"]] == list(backbone.bands)
    assert enum.meta["in_chans"] == backbone.pretrained_channels == backbone.in_channels
    assert enum.meta["model"] == "resnet50"


@pytest.mark.parametrize("name", [name for name in TORCHGEO if name not in SCALING_DEPARTS])
def test_scaling_matches_torchgeo_transforms(name: str) -> None:
    """The normalizer equals the Normalize steps of the enum's own transforms (resize and crops aside)."""
    backbone, enum = BACKBONES[name], enum_of(BACKBONES[name])
    chips = coded_chips(FILE_BANDS, torch.float32)
    expected = chips[:, backbone.band_indices(FILE_BANDS)].clone()
    steps = [step for step in enum.transforms if isinstance(step, T.Normalize)]
    assert steps, "the enum's transforms normalize"
    assert all(isinstance(step, (T.Normalize, T.Resize, T.CenterCrop)) for step in enum.transforms)
    for step in steps:
        expected = step(expected)
    torch.testing.assert_close(backbone.normalizer(FILE_BANDS)(chips), expected, rtol=1e-6, atol=1e-6)
    assert not backbone.clamp


def test_departures_from_torchgeo_scaling_are_known() -> None:
    """An entry listed as departing from torchgeo's transforms really does (the list cannot go stale)."""
    for name in SCALING_DEPARTS:
        backbone, enum = BACKBONES[name], enum_of(BACKBONES[name])
        chips = coded_chips(FILE_BANDS, torch.float32)
        expected = chips[:, backbone.band_indices(FILE_BANDS)].clone()
        for step in enum.transforms:
            expected = step(expected) if isinstance(step, T.Normalize) else expected
        assert not torch.allclose(backbone.normalizer(FILE_BANDS)(chips), expected)


def test_seco_eco_reads_twelve_bands() -> None:
    """SSL4Eco's SeCo drops B10 (cirrus): 12 bands, B8A after B08, x/10000."""
    backbone = BACKBONES["secoeco"]
    assert backbone.bands == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
    assert backbone.band_indices(FILE_BANDS) == [0, 1, 2, 3, 4, 5, 6, 7, 12, 8, 10, 11]
    out = backbone.normalizer(FILE_BANDS)(coded_chips(FILE_BANDS, torch.uint16))
    expected = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.13, 0.09, 0.11, 0.12]
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor(expected), rtol=1e-6, atol=1e-7)


def test_softcon_standardizes_per_band() -> None:
    """SoftCon's input is raw reflectance standardized with SSL4EO-S12's per-band mean and std."""
    backbone = BACKBONES["softcon"]
    out = backbone.normalizer(FILE_BANDS)(coded_chips(FILE_BANDS, torch.uint16))[0, :, 0, 0]
    raw = torch.tensor(SSL4EO_RAW, dtype=torch.float32)
    expected = (raw - torch.tensor(SSL4EO_S2_MEAN)) / torch.tensor(SSL4EO_S2_STD)
    torch.testing.assert_close(out, expected)
    assert out[10] == pytest.approx((1000 - 22.0) / 47.5)  # B10's tiny statistics: the cirrus band stays in


def test_scratch_is_random_by_design() -> None:
    """`scratch` has no weight file, enum or licence; it reads the study's 13 bands x/10000 like ssl4eo."""
    scratch = BACKBONES["scratch"]
    assert not scratch.pretrained
    assert (scratch.weights, scratch.url, scratch.licence, scratch.pretrained_channels) == (RANDOM, None, None, None)
    assert scratch.architecture == "unet"
    ssl4eo = BACKBONES["ssl4eo"]
    assert (scratch.bands, scratch.divisor, scratch.mean, scratch.std, scratch.clamp) == (
        ssl4eo.bands,
        ssl4eo.divisor,
        ssl4eo.mean,
        ssl4eo.std,
        ssl4eo.clamp,
    )
    with pytest.raises(ValueError, match="no weight file"):
        _ = scratch.file_name
    assert get_backbone("scratch") is scratch


# The licence of each weight file: torchgeo's weights table (docs/api/weights/sentinel2.csv), CLOSP's from its repo.
LICENCES = {
    "ssl4eo": "CC-BY-4.0",
    "dino": "CC-BY-4.0",
    "softcon": "CC-BY-4.0",
    "decur": "Apache-2.0",
    "closp": "Apache-2.0",
    "secoeco": "MIT",
    "satlas": "ODC-By-1.0",
    "satlas_fpn": "ODC-By-1.0",
    "imagenet": "BSD-3-Clause",
    "imagenet_rgb": "BSD-3-Clause",
}


@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_weight_file_has_an_spdx_licence(name: str) -> None:
    """A pretrained entry names its weights' licence as a canonical SPDX id; `scratch` has none to name."""
    backbone = BACKBONES[name]
    if not backbone.pretrained:
        assert backbone.licence is None
        return
    assert backbone.licence is not None
    assert str(canonicalize_license_expression(backbone.licence)) == backbone.licence
    assert backbone.licence == LICENCES[name]


@pytest.mark.parametrize("name", [name for name, b in BACKBONES.items() if b.pretrained])
def test_urls_and_file_names(name: str) -> None:
    """URLs are the enums' own (SatlasPretrain's aside); the offline file name is the URL's basename."""
    backbone = BACKBONES[name]
    if name != "satlas_fpn":  # its enum is satlaspretrain_models' (test_satlas_model)
        assert backbone.url == enum_of(backbone).url
    assert backbone.url is not None
    assert backbone.file_name == PurePosixPath(urlsplit(backbone.url).path).name


def test_file_names_and_channels() -> None:
    """The offline file names the existing entries resolve to, and every entry's channel counts."""
    assert BACKBONES["ssl4eo"].file_name == "resnet50_sentinel2_all_moco-df8b932e.pth"
    assert BACKBONES["satlas"].file_name == "sentinel2_resnet50_si_ms-1f454cc6.pth"
    assert BACKBONES["imagenet"].file_name == "resnet50-0676ba61.pth"
    assert BACKBONES["secoeco"].file_name == "resnet50_sentinel2_all_seco_eco-90ec322f.pth"
    channels = {name: (b.in_channels, b.pretrained_channels) for name, b in BACKBONES.items()}
    assert channels == {
        "ssl4eo": (13, 13),
        "satlas": (9, 9),
        "satlas_fpn": (9, 9),
        "imagenet": (13, 3),
        "imagenet_rgb": (3, 3),
        "dino": (13, 13),
        "decur": (13, 13),
        "softcon": (13, 13),
        "closp": (13, 13),
        "secoeco": (12, 12),
        "scratch": (13, None),
    }


@pytest.mark.parametrize("name", [n for n, b in BACKBONES.items() if n != "satlas_fpn" and b.pretrained])
def test_weights_string_names_the_enum(name: str) -> None:
    """`module:Enum.MEMBER` resolves to the enum whose URL the registry carries (satlas_fpn: test_satlas_model)."""
    assert enum_of(BACKBONES[name]).url == BACKBONES[name].url


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
    assert get_backbone("satlas", "all_bands", "satlas_fpn") is BACKBONES["satlas_fpn"]
    assert {b.name: b.architecture for b in BACKBONES.values()} == {
        "ssl4eo": "unet",
        "satlas": "unet",
        "satlas_fpn": "satlas_fpn",
        "imagenet": "unet",
        "imagenet_rgb": "unet",
        "dino": "unet",
        "decur": "unet",
        "softcon": "unet",
        "closp": "unet",
        "secoeco": "unet",
        "scratch": "unet",
    }
    assert MATRIX_BACKBONES == (
        "ssl4eo",
        "satlas",
        "imagenet",
        "dino",
        "decur",
        "softcon",
        "closp",
        "secoeco",
        "scratch",
        "spectral",
    )


def test_matrix_names_are_the_registry_less_variants() -> None:
    """A new entry is a matrix name automatically; the two variants are reached through their params only."""
    assert set(MATRIX_BACKBONES) == set(BACKBONES) - {"imagenet_rgb", "satlas_fpn"} | {"spectral"}
    for name in MATRIX_BACKBONES[:-1]:  # the last, spectral, is no ResNet (tests/training/test_registry_task.py)
        assert get_backbone(name) is BACKBONES[name]
        assert "-" not in name and "_" not in name  # run ids join names with `-`, entry folders with `_`
    with pytest.raises(ParamsError, match="did you mean 'softcon'"):
        get_backbone("softcom")


def test_unknown_backbone_hints() -> None:
    """A typo gets a did-you-mean hint; anything else gets the list of names."""
    with pytest.raises(ParamsError, match="unknown backbone") as typo:
        get_backbone("ssl4e0")
    assert "did you mean 'ssl4eo'?" in str(typo.value)
    with pytest.raises(ParamsError) as other:
        get_backbone("vit")
    assert "did you mean" not in str(other.value)
    assert str(MATRIX_BACKBONES) in str(other.value)


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
