"""Offline weights: found by file name in a configured folder or torch hub's cache, loaded, adapted, or refused."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision.models

import training.weights as weights_module
from training.backbones import BACKBONES, RANDOM, Backbone
from training.satlas_model import SatlasFPN, load_satlas
from training.weights import (
    Loader,
    Provenance,
    WeightsError,
    adapt_first_conv,
    encoder_state,
    find_weights,
    hub_checkpoints,
    init_encoder,
    load_encoder,
    missing_weights_error,
    tensor_digest,
)

from .fakes import fake_resnet50_state, one_thread  # noqa: F401 - one_thread is an autouse fixture
from .test_satlas_model import fake_satlas_state


@pytest.fixture(scope="module")
def states() -> dict[str, dict[str, torch.Tensor]]:
    """One state per weight file, by backbone name (imagenet's file has 3 input channels)."""
    return {
        "ssl4eo": fake_resnet50_state(13, seed=0),
        "satlas": fake_resnet50_state(9, seed=1),
        "imagenet": fake_resnet50_state(3, seed=2),
    }


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, states: dict[str, dict[str, torch.Tensor]]) -> dict[str, Path]:
    """The states written once under each backbone's real file name; tests link them where they need them."""
    folder = tmp_path_factory.mktemp("weight_files")
    written = {}
    for name, state in states.items():
        written[name] = folder / BACKBONES[name].file_name
        torch.save(state, written[name])
    return written


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """$TORCH_HOME in a temp folder (so no real cache is read), no network; returns hub's checkpoints folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("weights must load without network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    return checkpoints


def link(source: Path, folder: Path) -> Path:
    """Put a weight file (by symlink, under its own name) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    target.symlink_to(source)
    return target


def encoder_of(backbone: Backbone) -> torch.nn.Module:
    """A fresh smp U-Net's ResNet-50 encoder for `backbone`'s input channels (decoder kept small)."""
    decoder = (16, 16, 16, 16, 16)
    unet = smp.Unet(
        "resnet50", encoder_weights=None, in_channels=backbone.in_channels, classes=6, decoder_channels=decoder
    )
    encoder: torch.nn.Module = unet.encoder
    return encoder


def sha256(path: Path) -> str:
    """Reference digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_torch_home_sets_hub_checkpoints(hub: Path, tmp_path: Path) -> None:
    """torch.hub.get_dir() follows $TORCH_HOME (no set_dir in play), so hub_checkpoints does too."""
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")
    assert hub_checkpoints() == hub


@pytest.mark.parametrize("name", ["ssl4eo", "satlas"])
def test_loads_pretrained_from_hub_cache(
    name: str, hub: Path, files: dict[str, Path], states: dict[str, dict[str, torch.Tensor]]
) -> None:
    """The file in torch hub's cache fills the encoder exactly (classifier dropped), with its provenance."""
    backbone = BACKBONES[name]
    link(files[name], hub)
    encoder = encoder_of(backbone)
    provenance = init_encoder(encoder, backbone, weights_dir=None, allow_random_init=False)
    digest = sha256(files[name])
    assert provenance == Provenance("pretrained", backbone.weights, backbone.file_name, digest)
    loaded = encoder.state_dict()
    expected = {key: value for key, value in states[name].items() if not key.startswith("fc.")}
    assert set(loaded) == set(expected)
    assert len(loaded) == 318  # 320 timm keys less fc.weight and fc.bias
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key
    assert int(loaded["layer4.2.bn3.num_batches_tracked"]) == states[name]["bn1.num_batches_tracked"].item()


def test_encoder_state_drops_head_and_unwraps(tmp_path: Path) -> None:
    """fc.* is dropped, a file without it is fine, and {"state_dict": ...} (Lightning style) is read through."""
    backbone = BACKBONES["ssl4eo"]
    plain = {"conv1.weight": torch.ones(2), "fc.weight": torch.zeros(3), "fc.bias": torch.zeros(1)}
    for name, payload in {
        "plain.pth": plain,
        "headless.pth": {"conv1.weight": torch.ones(2)},
        "wrapped.pth": {"state_dict": plain, "epoch": 3},
    }.items():
        torch.save(payload, tmp_path / name)
        state = encoder_state(tmp_path / name, backbone)
        assert list(state) == ["conv1.weight"], name
        assert torch.equal(state["conv1.weight"], torch.ones(2)), name


@pytest.mark.parametrize("name", ["imagenet", "imagenet_rgb"])
def test_imagenet_first_conv_adapted(
    name: str, hub: Path, files: dict[str, Path], states: dict[str, dict[str, torch.Tensor]]
) -> None:
    """A 3-channel ImageNet file on 13 bands: channel i is file channel i % 3 times 3/13; on RGB it is unchanged."""
    backbone = BACKBONES[name]
    link(files["imagenet"], hub)
    encoder = encoder_of(backbone)
    provenance = init_encoder(encoder, backbone, None, False)
    assert provenance.file == "resnet50-0676ba61.pth"
    assert provenance.sha256 == sha256(files["imagenet"])
    trained = states["imagenet"]["conv1.weight"]
    conv1 = encoder.state_dict()["conv1.weight"]
    assert conv1.shape == (64, backbone.in_channels, 7, 7)
    for channel in range(backbone.in_channels):
        scale = 3 / backbone.in_channels
        expected = trained[:, channel % 3] * scale if scale != 1 else trained[:, channel]
        assert torch.equal(conv1[:, channel], expected), channel
    assert torch.equal(encoder.state_dict()["layer1.0.conv1.weight"], states["imagenet"]["layer1.0.conv1.weight"])


def test_adapt_first_conv_small() -> None:
    """smp's rule on a tiny kernel: cyclic repeat and rescale; identity at equal channels; truncation when fewer."""
    weight = torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    assert adapt_first_conv(weight, 5).flatten().tolist() == pytest.approx([0.6, 1.2, 1.8, 0.6, 1.2])
    assert adapt_first_conv(weight, 3) is weight
    assert adapt_first_conv(weight, 2).flatten().tolist() == pytest.approx([1.5, 3.0])


def test_weights_dir_wins_over_hub(tmp_path: Path, hub: Path, files: dict[str, Path]) -> None:
    """A file in the configured folder is loaded before the one in torch hub's cache (here a corrupt one)."""
    backbone = BACKBONES["ssl4eo"]
    (hub / backbone.file_name).write_bytes(b"not a checkpoint")
    configured = link(files["ssl4eo"], tmp_path / "weights").parent
    assert find_weights(backbone, configured) == configured / backbone.file_name
    provenance = init_encoder(encoder_of(backbone), backbone, configured, False)
    assert provenance.sha256 == sha256(files["ssl4eo"])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_weights(backbone, empty) == hub / backbone.file_name  # falls back to the hub cache
    assert find_weights(BACKBONES["satlas"], configured) is None


def test_file_name_drops_the_url_query(hub: Path) -> None:
    """SatlasPretrain's URL ends in `?download=true`: the file is looked up under the path's basename."""
    backbone = BACKBONES["satlas_fpn"]
    assert str(backbone.url).endswith("sentinel2_resnet50_si_ms.pth?download=true")
    assert backbone.file_name == "sentinel2_resnet50_si_ms.pth"
    assert find_weights(backbone, None) is None
    (hub / backbone.file_name).write_bytes(b"")
    assert find_weights(backbone, None) == hub / "sentinel2_resnet50_si_ms.pth"


def test_missing_file_names_file_folders_and_fix(tmp_path: Path, hub: Path) -> None:
    """No file anywhere: the error names the file, every folder searched, the URL and allow_random_init."""
    backbone = BACKBONES["satlas"]
    configured = tmp_path / "weights"
    with pytest.raises(WeightsError, match="no weights for backbone 'satlas'") as caught:
        init_encoder(torch.nn.Conv2d(9, 2, 1), backbone, configured, allow_random_init=False)
    message = str(caught.value)
    for part in (backbone.file_name, str(configured), str(hub), str(backbone.url), "allow_random_init"):
        assert part in message, part
    assert f"not found in {configured} or {hub}" in message
    assert f"into {configured}," in message  # where to put it: the configured folder first
    assert str(missing_weights_error(backbone, None)).count(str(hub)) == 2  # searched there, and put it there


def test_random_init_when_allowed(hub: Path) -> None:
    """allow_random_init: random provenance, no error, encoder untouched."""
    backbone = BACKBONES["ssl4eo"]
    encoder = torch.nn.Conv2d(13, 2, 1)
    before = tensor_digest(encoder)
    provenance = init_encoder(encoder, backbone, None, allow_random_init=True)
    assert provenance == Provenance("random", backbone.weights, None, None)
    assert provenance.as_dict() == {"weights": "random", "enum": backbone.weights, "file": None, "sha256": None}
    assert tensor_digest(encoder) == before


def fake_file_state(backbone: Backbone) -> dict[str, torch.Tensor]:
    """A state dict with the key layout of the entry's weight file, seeded by the entry's name."""
    seed = sum(backbone.name.encode())
    if backbone.architecture == "satlas_fpn":
        return fake_satlas_state(seed)
    assert backbone.pretrained_channels is not None
    return fake_resnet50_state(backbone.pretrained_channels, seed)


def model_of(backbone: Backbone) -> tuple[torch.nn.Module, Loader]:
    """What the entry's weight file fills and the loader that fills it, as CropTask.configure_models picks them."""
    if backbone.architecture == "satlas_fpn":
        return SatlasFPN(backbone.in_channels, 6), load_satlas
    return encoder_of(backbone), load_encoder


@pytest.mark.parametrize("where", ["hub", "weights_dir"])
@pytest.mark.parametrize("name", [name for name, b in BACKBONES.items() if b.pretrained])
def test_every_entry_loads_offline(name: str, where: str, hub: Path, tmp_path: Path) -> None:
    """Each registry entry: a file with its keys under its name, in either folder, fills its model with no network."""
    backbone = BACKBONES[name]
    state = fake_file_state(backbone)
    folder = hub if where == "hub" else tmp_path / "weights"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / backbone.file_name
    torch.save(state, path)
    model, load = model_of(backbone)
    weights_dir = None if where == "hub" else folder
    provenance = init_encoder(model, backbone, weights_dir, allow_random_init=False, load=load)
    assert provenance == Provenance("pretrained", backbone.weights, backbone.file_name, sha256(path))
    assert backbone.licence is not None  # what a result row of this file will name (the registry's, by entry)
    if backbone.architecture == "unet":
        loaded = model.state_dict()
        assert set(loaded) == {key for key in state if not key.startswith("fc.")}
        assert torch.equal(loaded["layer4.2.conv3.weight"], state["layer4.2.conv3.weight"])
        conv1 = adapt_first_conv(state["conv1.weight"], backbone.in_channels)
        assert torch.equal(loaded["conv1.weight"], conv1)
    else:
        loaded = model.state_dict()  # the file's `backbone.` is SatlasFPN's `encoder.`
        assert torch.equal(loaded["encoder.resnet.conv1.weight"], state["backbone.resnet.conv1.weight"])


@pytest.mark.parametrize("name", [name for name, b in BACKBONES.items() if b.pretrained])
def test_every_entry_names_its_missing_file(name: str, hub: Path) -> None:
    """Each entry's missing file is a named error, unless the run allows random init (then recorded as random)."""
    backbone = BACKBONES[name]
    model, load = model_of(backbone)
    with pytest.raises(WeightsError, match=f"no weights for backbone {name!r}") as caught:
        init_encoder(model, backbone, None, allow_random_init=False, load=load)
    assert backbone.file_name in str(caught.value)
    provenance = init_encoder(model, backbone, None, allow_random_init=True, load=load)
    assert provenance == Provenance("random", backbone.weights, None, None)


def test_scratch_never_looks_for_a_file(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`scratch`: random init by design, with allow_random_init off, no lookup, and a file of any name ignored."""
    backbone = BACKBONES["scratch"]
    for entry in BACKBONES.values():  # every other entry's file is there: none of them is scratch's
        if entry.pretrained:
            (hub / entry.file_name).write_bytes(b"")

    def no_lookup(*args: object) -> None:
        raise AssertionError("scratch must not look for a weight file")

    monkeypatch.setattr(weights_module, "find_weights", no_lookup)
    encoder = encoder_of(backbone)
    before = tensor_digest(encoder)
    provenance = init_encoder(encoder, backbone, hub, allow_random_init=False)
    assert provenance == Provenance("random", RANDOM, None, None)
    assert provenance.as_dict()["weights"] == "random" and provenance.as_dict()["enum"] == "random"
    assert tensor_digest(encoder) == before


def test_wrong_keys_and_shapes(hub: Path, states: dict[str, dict[str, torch.Tensor]]) -> None:
    """Missing, unexpected and wrongly shaped keys are named, and the encoder is left as it was."""
    backbone = BACKBONES["ssl4eo"]
    broken = dict(states["ssl4eo"])
    del broken["layer4.2.bn3.running_var"]
    broken["head.weight"] = torch.zeros(2)
    broken["bn1.weight"] = torch.ones(32)
    path = hub / backbone.file_name
    torch.save(broken, path)
    encoder = encoder_of(backbone)
    before = tensor_digest(encoder)
    with pytest.raises(WeightsError, match="does not fit the encoder") as caught:
        init_encoder(encoder, backbone, None, False)
    message = str(caught.value)
    assert "missing: ['layer4.2.bn3.running_var']" in message
    assert "unexpected: ['head.weight']" in message
    assert "wrong shape: ['bn1.weight']" in message
    assert str(path) in message
    assert tensor_digest(encoder) == before


def test_prefixed_keys_are_refused(hub: Path, states: dict[str, dict[str, torch.Tensor]]) -> None:
    """A file whose keys carry a prefix (e.g. a whole-model checkpoint) is refused, listing a few keys."""
    backbone = BACKBONES["ssl4eo"]
    some = ("conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean")
    torch.save({f"backbone.{key}": states["ssl4eo"][key] for key in some}, hub / backbone.file_name)
    with pytest.raises(WeightsError) as caught:
        init_encoder(encoder_of(backbone), backbone, None, False)
    message = str(caught.value)
    assert "missing: ['bn1.bias', 'bn1.num_batches_tracked', 'bn1.running_mean'] ..." in message
    assert "unexpected: ['backbone.bn1.bias', 'backbone.bn1.running_mean', 'backbone.bn1.weight'] ..." in message


def test_corrupt_file_is_unreadable(hub: Path) -> None:
    """Random bytes under the right name: 'unreadable', naming the path and the URL to re-download."""
    backbone = BACKBONES["ssl4eo"]
    path = hub / backbone.file_name
    path.write_bytes(
        torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).byte().numpy().tobytes()
    )
    with pytest.raises(WeightsError, match="unreadable weight file") as caught:
        init_encoder(torch.nn.Conv2d(13, 2, 1), backbone, None, False)
    assert str(path) in str(caught.value)
    assert f"re-download {backbone.url}" in str(caught.value)


def test_file_that_is_not_a_dict_is_unreadable(hub: Path) -> None:
    """A readable file holding something other than a state dict is refused too."""
    backbone = BACKBONES["satlas"]
    torch.save([torch.zeros(1)], hub / backbone.file_name)
    with pytest.raises(WeightsError, match="unreadable weight file") as caught:
        init_encoder(torch.nn.Conv2d(9, 2, 1), backbone, None, False)
    assert "got list" in str(caught.value)


def test_torchvision_reads_the_same_cache(
    hub: Path, files: dict[str, Path], states: dict[str, dict[str, torch.Tensor]]
) -> None:
    """torchvision's own loader finds the file by the same name in the same folder, offline."""
    link(files["imagenet"], hub)
    model = torchvision.models.resnet50(weights=torchvision.models.ResNet50_Weights.IMAGENET1K_V1)
    state = model.state_dict()
    assert torch.equal(state["conv1.weight"], states["imagenet"]["conv1.weight"])
    assert torch.equal(state["fc.weight"], states["imagenet"]["fc.weight"])


def test_tensor_digest() -> None:
    """The digest sees every tensor byte; parameters_only ignores BatchNorm statistics."""
    norm = torch.nn.BatchNorm2d(3)
    full, params = tensor_digest(norm), tensor_digest(norm, parameters_only=True)
    norm.running_mean += 1
    assert tensor_digest(norm) != full
    assert tensor_digest(norm, parameters_only=True) == params
    with torch.no_grad():
        norm.weight[0] = 2.0
    assert tensor_digest(norm, parameters_only=True) != params
    same = torch.nn.BatchNorm2d(3)
    same.load_state_dict(norm.state_dict())
    assert tensor_digest(same) == tensor_digest(norm)
