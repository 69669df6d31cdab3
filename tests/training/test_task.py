"""CropTask: a frozen encoder really stays frozen, padding, the ignore class, and lean digest-checked checkpoints."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from training.backbones import get_backbone
from training.task import CropTask
from training.weights import WeightsError, tensor_digest

from .fakes import fake_resnet50_state, one_thread  # noqa: F401 - one_thread is an autouse fixture
from .world import BANDS as FILE_BANDS

CLASSES = 6


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two weights folders holding the SSL4EO file under its real name, with different values ("a" and "b")."""
    folders = {}
    for seed, name in enumerate(("a", "b")):
        folders[name] = tmp_path_factory.mktemp(f"weights_{name}")
        torch.save(fake_resnet50_state(13, seed), folders[name] / get_backbone("ssl4eo").file_name)
    return folders


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real torch hub cache: only the files these tests write are found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def make_task(
    weights_dir: Path | None, frozen: bool = True, allow_random_init: bool = False, batchnorm: str = "eval"
) -> CropTask:
    """A small-decoder U-Net on the SSL4EO backbone reading chips in FILE_BANDS order."""
    return CropTask(
        backbone_spec=get_backbone("ssl4eo"),
        file_bands=FILE_BANDS,
        num_classes=CLASSES,
        decoder_channels=(16, 16, 16, 16, 16),
        frozen_encoder=frozen,
        frozen_batchnorm=batchnorm,  # type: ignore[arg-type]
        weights_dir=weights_dir,
        allow_random_init=allow_random_init,
    )


def batch(seed: int, side: int = 32) -> dict[str, torch.Tensor]:
    """Reflectance-like chips (0..5000) and labels 0..5 (0 = ignore)."""
    generator = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(4, 13, side, side, generator=generator) * 5000,
        "mask": torch.randint(0, CLASSES, (4, side, side), generator=generator),
    }


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer, cloned."""
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def one_step(task: CropTask, data: dict[str, torch.Tensor]) -> torch.Tensor:
    """One real optimizer step through training_step (its self.log without a trainer only warns)."""
    optimizer = task.configure_optimizers()["optimizer"]
    optimizer.zero_grad()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*self\.log\(\)")
        loss: torch.Tensor = task.training_step(data, 0)
    loss.backward()
    optimizer.step()
    return loss


def test_frozen_encoder_does_not_move(weights: dict[str, Path]) -> None:
    """Train mode and one AdamW step: encoder parameters AND BatchNorm statistics unchanged, the decoder moved."""
    task = make_task(weights["a"])
    assert task.provenance.weights == "pretrained"
    task.train()
    assert task.training and task.model.decoder.training
    assert not any(m.training for m in task.model.encoder.modules())
    assert not any(p.requires_grad for p in task.model.encoder.parameters())
    optimizer = task.configure_optimizers()["optimizer"]
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimized.isdisjoint(id(p) for p in task.model.encoder.parameters())
    assert optimized == {id(p) for p in task.parameters() if p.requires_grad}

    encoder_before, decoder_before = snapshot(task.model.encoder), snapshot(task.model.decoder)
    loss = one_step(task, batch(0))
    assert torch.isfinite(loss)
    for key, value in task.model.encoder.state_dict().items():
        assert torch.equal(value, encoder_before[key]), key
    assert task.model.encoder.bn1.num_batches_tracked.item() == 100  # the file's value, not 101
    assert all(p.grad is None for p in task.model.encoder.parameters())
    changed = [k for k, v in task.model.decoder.state_dict().items() if not torch.equal(v, decoder_before[k])]
    assert any(key.endswith("conv1.0.weight") for key in changed)

    task.eval()
    task.train()  # toggling keeps the encoder in eval mode
    assert not task.model.encoder.training
    torch.nn.Module.train(task, True)  # what torchgeo's freeze_backbone alone leaves: BatchNorm in train mode
    with torch.no_grad():
        task(batch(1)["image"])
    assert not torch.equal(task.model.encoder.bn1.running_mean, encoder_before["bn1.running_mean"])


def test_study_batchnorm_keeps_training_in_a_frozen_encoder(weights: dict[str, Path]) -> None:
    """frozen_batchnorm=train (the study's): no gradients, weights unchanged, but BatchNorm statistics drift."""
    task = make_task(weights["a"], batchnorm="train")
    assert task.hparams["frozen_batchnorm"] == "train"
    task.train()
    assert task.model.encoder.training and task.model.encoder.bn1.training
    assert not any(p.requires_grad for p in task.model.encoder.parameters())
    before = snapshot(task.model.encoder)
    one_step(task, batch(0))
    after = task.model.encoder.state_dict()
    assert torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert torch.equal(after["bn1.weight"], before["bn1.weight"])
    assert not torch.equal(after["bn1.running_mean"], before["bn1.running_mean"])
    assert after["bn1.num_batches_tracked"].item() == 101
    assert all(p.grad is None for p in task.model.encoder.parameters())
    task.eval()
    assert not any(m.training for m in task.model.encoder.modules())  # evaluation uses the drifted statistics
    assert "encoder.bn1.running_mean" in task.trainable_state() and "encoder.conv1.weight" not in task.trainable_state()


def test_unfrozen_encoder_moves(weights: dict[str, Path]) -> None:
    """Contrast: without freezing, one step changes encoder weights and BatchNorm statistics."""
    task = make_task(weights["a"], frozen=False)
    task.train()
    assert task.model.encoder.training
    before = snapshot(task.model.encoder)
    one_step(task, batch(0))
    after = task.model.encoder.state_dict()
    assert not torch.equal(after["conv1.weight"], before["conv1.weight"])
    assert not torch.equal(after["bn1.running_mean"], before["bn1.running_mean"])
    assert after["bn1.num_batches_tracked"].item() == 101
    assert "encoder.conv1.weight" in task.trainable_state()  # an unfrozen encoder travels in checkpoints


@pytest.fixture(scope="module")
def saved(weights: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[CropTask, Path]:
    """A frozen task after one step (decoder moved) with shifted encoder BatchNorm statistics, and its checkpoint."""
    task = make_task(weights["a"])
    task.train()
    one_step(task, batch(2))
    task.model.encoder.layer2[0].bn1.running_mean += 0.5  # statistics a calibration would have set
    task.eval()
    path = tmp_path_factory.mktemp("checkpoint") / "best.pt"
    task.save_checkpoint(path, {"epoch": 3, "val_loss": 0.25})
    return task, path


def test_forward_pads_then_crops(saved: tuple[CropTask, Path]) -> None:
    """40x40 chips: normalized, reflect-padded to 64, run, cropped back to 40x40; 32x32 runs unpadded."""
    task, _ = saved
    image = batch(3, side=40)["image"]
    with torch.no_grad():
        logits = task(image)
        padded = F.pad(task.normalize(image), (0, 24, 0, 24), mode="reflect")
        assert padded.shape[-2:] == (64, 64)
        reference = task.model(padded)[..., :40, :40]
        small = batch(4)["image"]
        unpadded = task.model(task.normalize(small))
        small_logits = task(small)
    assert logits.shape == (4, CLASSES, 40, 40)
    assert torch.equal(logits, reference)
    assert torch.equal(small_logits, unpadded)


def test_predict_classes_never_ignore(saved: tuple[CropTask, Path]) -> None:
    """Even where class 0 has by far the highest logit, the prediction is the best real class."""
    task, _ = saved
    image = batch(5)["image"]
    bias = task.model.segmentation_head[0].bias
    original = bias.detach().clone()
    try:
        with torch.no_grad():
            bias[0] = 1e4
            logits = task(image)
        assert (logits.argmax(dim=1) == 0).all()
        predicted = task.predict_classes(image)  # with autograd on, as a caller may do
        assert predicted.shape == (4, 32, 32)
        assert predicted.dtype == torch.long
        assert predicted.min().item() >= 1
        assert torch.equal(predicted, logits[:, 1:].argmax(dim=1) + 1)
        assert len(predicted.unique()) > 1
    finally:
        with torch.no_grad():
            bias.copy_(original)


def test_checkpoint_holds_only_what_training_changes(saved: tuple[CropTask, Path]) -> None:
    """No frozen encoder parameters, but its BatchNorm buffers, the decoder, the digest and the meta."""
    task, path = saved
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert set(payload) == {"state", "encoder_digest", "meta"}
    assert payload["meta"] == {"epoch": 3, "val_loss": 0.25}
    assert payload["encoder_digest"] == tensor_digest(task.model.encoder, parameters_only=True)
    state = payload["state"]
    encoder_params = {f"encoder.{name}" for name, _ in task.model.encoder.named_parameters()}
    assert "encoder.conv1.weight" not in state
    assert encoder_params.isdisjoint(state)
    for key in ("encoder.bn1.running_mean", "encoder.layer2.0.bn1.running_mean", "encoder.layer4.2.bn3.running_var"):
        assert torch.equal(state[key], task.model.state_dict()[key]), key
    assert state["encoder.bn1.num_batches_tracked"].item() == 100
    model_keys = set(task.model.state_dict())
    assert set(state) == model_keys - encoder_params
    full_bytes = sum(t.numel() * t.element_size() for t in task.model.state_dict().values())
    assert full_bytes > 90e6  # the ResNet-50 encoder
    assert path.stat().st_size < full_bytes / 20


def test_checkpoint_round_trip(weights: dict[str, Path], saved: tuple[CropTask, Path]) -> None:
    """A freshly built task on the same weight file loads the checkpoint and gives identical logits."""
    task, path = saved
    fresh = make_task(weights["a"]).eval()
    image = batch(6)["image"]
    with torch.no_grad():
        expected = task(image)
        assert not torch.equal(fresh(image), expected)  # fresh decoder and statistics differ
        meta = fresh.load_checkpoint(path)
        assert torch.equal(fresh(image), expected)
    assert meta == {"epoch": 3, "val_loss": 0.25}
    assert tensor_digest(fresh.model) == tensor_digest(task.model)


def test_checkpoint_on_another_encoder_is_refused(weights: dict[str, Path], saved: tuple[CropTask, Path]) -> None:
    """A task built on a different weight file cannot take the checkpoint: the encoder digest differs."""
    _, path = saved
    other = make_task(weights["b"])
    before = tensor_digest(other.model)
    with pytest.raises(WeightsError, match="checkpoint was trained on another encoder") as caught:
        other.load_checkpoint(path)
    assert "encoder digest differs (pretrained weights now)" in str(caught.value)
    assert str(path) in str(caught.value)
    assert tensor_digest(other.model) == before  # nothing loaded


def test_calibrate_statistics_on_random_init(tmp_path: Path) -> None:
    """Random init, frozen: calibration sets BatchNorm statistics to the batches' averages, parameters untouched."""
    task = make_task(tmp_path / "no_weights", allow_random_init=True)
    assert task.provenance.weights == "random"
    encoder = task.model.encoder
    assert torch.equal(encoder.bn1.running_mean, torch.zeros(64))
    params_before = tensor_digest(encoder, parameters_only=True)
    batches = [batch(7), batch(8)]
    task.train()
    task.calibrate_statistics(batches)
    assert tensor_digest(encoder, parameters_only=True) == params_before
    with torch.no_grad():
        means = [encoder.conv1(task.normalize(b["image"])).mean(dim=(0, 2, 3)) for b in batches]
    torch.testing.assert_close(encoder.bn1.running_mean, (means[0] + means[1]) / 2, rtol=1e-4, atol=1e-6)
    assert not torch.equal(encoder.layer4[2].bn3.running_var, torch.ones_like(encoder.layer4[2].bn3.running_var))
    assert encoder.bn1.num_batches_tracked.item() == 2
    norms: list[Any] = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert {m.momentum for m in norms} == {0.1}
    assert task.training and not encoder.training  # back to a frozen encoder in a training task


def test_a_shallow_unet_loads_the_whole_weight_file_and_keeps_only_its_stages(
    weights: dict[str, Path], tmp_path: Path
) -> None:
    """encoder_depth 3: the full ResNet-50 file loads (strictly), then layer3 and layer4 are gone from the model,
    its digest and its checkpoints; a scratch checkpoint is small, and a depth-5 checkpoint does not load into it."""
    spec = get_backbone("ssl4eo")
    shallow = CropTask(
        spec, FILE_BANDS, CLASSES, decoder_channels=(16, 16, 16), encoder_depth=3, weights_dir=weights["a"]
    )
    assert shallow.provenance.weights == "pretrained"
    names = {name.split(".")[0] for name, _ in shallow.model.encoder.named_parameters()}
    assert names == {"conv1", "bn1", "layer1", "layer2"}
    full = fake_resnet50_state(13, 0)
    assert torch.equal(shallow.model.encoder.layer2[0].conv1.weight, full["layer2.0.conv1.weight"])
    assert shallow(batch(0)["image"]).shape == (4, CLASSES, 32, 32)
    deep = make_task(weights["a"])
    assert shallow.encoder_digest() != deep.encoder_digest()
    deep.save_checkpoint(tmp_path / "deep.pt", {})
    with pytest.raises(WeightsError, match="another encoder"):
        shallow.load_checkpoint(tmp_path / "deep.pt")
    torch.manual_seed(0)
    scratch = CropTask(
        get_backbone("scratch"), FILE_BANDS, CLASSES, (16, 16, 16), encoder_depth=3, frozen_encoder=False
    )
    scratch.save_checkpoint(tmp_path / "scratch.pt", {})
    assert (tmp_path / "scratch.pt").stat().st_size < 8e6  # every layer it trains: 1.5 M parameters, not 23.5 M
    torch.manual_seed(1)
    again = CropTask(get_backbone("scratch"), FILE_BANDS, CLASSES, (16, 16, 16), encoder_depth=3, frozen_encoder=False)
    again.load_checkpoint(tmp_path / "scratch.pt")
    image = batch(1)["image"]
    assert torch.equal(again.eval()(image), scratch.eval()(image))


def test_the_encoder_digest_is_hashed_again_only_after_a_change(weights: dict[str, Path]) -> None:
    """The digest is cached per state of the parameters: a changed parameter gives the new digest at once."""
    task = make_task(weights["a"], frozen=False)
    first = task.encoder_digest()
    assert task.encoder_digest() == first == tensor_digest(task.model.encoder, parameters_only=True)
    one_step(task, batch(0))
    assert task.encoder_digest() != first
    assert task.encoder_digest() == tensor_digest(task.model.encoder, parameters_only=True)
    task.double()  # swaps every parameter's data without an in-place change
    assert task.encoder_digest() == tensor_digest(task.model.encoder, parameters_only=True)
