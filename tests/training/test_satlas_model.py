"""The study's Satlas model: built offline from a SatlasPretrain file exactly as the package would, frozen as the study.

Weight files are written here: a state dict with the SatlasPretrain file's key layout (`backbone.resnet.*`,
`intermediates.0.fpn.*` and the upsampling `intermediates.1.*` the package never loads), seeded values.
"""

from __future__ import annotations

import socket
import warnings
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
from satlaspretrain_models import Backbone as SatlasArch
from satlaspretrain_models import Model
from satlaspretrain_models.utils import SatlasPretrain_weights

from curation.core.shared import SharedParams
from training.backbones import BACKBONES, SATLAS_MODEL_ID, get_backbone
from training.config import TrainParams
from training.factory import task_factory
from training.satlas_model import SatlasFPN, satlas_parts
from training.task import CheckpointError, CropTask
from training.weights import WeightsError, tensor_digest

from .fakes import fake_resnet50_state, one_thread  # noqa: F401 - one_thread is an autouse fixture
from .world import BANDS as FILE_BANDS

CLASSES = 6
SPEC = BACKBONES["satlas_fpn"]


def _value(key: str, meta: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A well-scaled seeded value for one tensor of the file (BatchNorm-like, He-scaled convolutions)."""
    shape = meta.shape
    if not meta.is_floating_point():  # num_batches_tracked
        return torch.full(shape, 100, dtype=meta.dtype)
    if len(shape) == 4:
        return torch.randn(shape, generator=generator) * (2 / shape[1:].numel()) ** 0.5
    if key.endswith("running_var"):
        return torch.rand(shape, generator=generator) + 0.5
    if key.endswith(".weight") and len(shape) == 1:
        return torch.rand(shape, generator=generator) * 0.5 + 0.5
    return torch.randn(shape, generator=generator) * 0.1


def fake_satlas_state(seed: int) -> dict[str, torch.Tensor]:
    """The SatlasPretrain Sentinel2_Resnet50_SI_MS file's layout: backbone, FPN, upsampling and a head."""
    with torch.device("meta"):
        template = Model(num_channels=9, multi_image=False, backbone=SatlasArch.RESNET50, fpn=True)
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for prefix, module in (
        ("backbone.", template.backbone),
        ("intermediates.0.", template.fpn),
        ("intermediates.1.", template.upsample),
    ):
        for key, meta in module.state_dict().items():
            state[prefix + key] = _value(key, meta, generator)
    state["heads.0.layers.0.0.weight"] = torch.randn(2, 128, 3, 3, generator=generator)  # pretraining heads
    return state


@pytest.fixture(scope="module")
def satlas_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake SatlasPretrain file under its real name in a weights folder."""
    path = tmp_path_factory.mktemp("satlas_weights") / SPEC.file_name
    torch.save(fake_satlas_state(seed=3), path)
    return path


@pytest.fixture(autouse=True)
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real torch hub cache and no network: what loads, loads from the files these tests write."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("weights must load without network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def make_task(
    weights_dir: Path | None, frozen: bool = True, batchnorm: str = "eval", allow_random_init: bool = False
) -> CropTask:
    return CropTask(
        backbone_spec=SPEC,
        file_bands=FILE_BANDS,
        num_classes=CLASSES,
        frozen_encoder=frozen,
        frozen_batchnorm=batchnorm,  # type: ignore[arg-type]
        weights_dir=weights_dir,
        allow_random_init=allow_random_init,
    )


def batch(seed: int, side: int = 32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "image": torch.rand(2, 13, side, side, generator=generator) * 5000,
        "mask": torch.randint(0, CLASSES, (2, side, side), generator=generator),
    }


def one_step(task: CropTask, data: dict[str, torch.Tensor]) -> None:
    optimizer = task.configure_optimizers()["optimizer"]
    optimizer.zero_grad()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*self\.log\(\)")
        task.training_step(data, 0).backward()
    optimizer.step()


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def test_registry_entry_is_the_packages_model() -> None:
    """URL, channels and kind come from satlaspretrain_models; the offline name drops the URL's query."""
    info = SatlasPretrain_weights[SATLAS_MODEL_ID]
    assert SPEC.url == info["url"]
    assert SPEC.file_name == "sentinel2_resnet50_si_ms.pth"
    assert (info["num_channels"], info["multi_image"], info["backbone"]) == (9, False, SatlasArch.RESNET50)
    assert SPEC.in_channels == SPEC.pretrained_channels == 9
    assert SPEC.weights == "satlaspretrain_models:Sentinel2_Resnet50_SI_MS"
    assert SPEC.architecture == "satlas_fpn"
    satlas = BACKBONES["satlas"]  # the same input as torchgeo's Satlas backbone (the study's datamodules)
    assert (SPEC.bands, SPEC.divisor, SPEC.mean, SPEC.std, SPEC.clamp) == (
        satlas.bands,
        satlas.divisor,
        satlas.mean,
        satlas.std,
        satlas.clamp,
    )
    assert SPEC.file_name != satlas.file_name


def test_satlas_architecture_only_switches_satlas() -> None:
    assert get_backbone("satlas", satlas_architecture="satlas_fpn") is SPEC
    assert get_backbone("satlas", satlas_architecture="unet") is BACKBONES["satlas"]
    assert get_backbone("ssl4eo", satlas_architecture="satlas_fpn") is BACKBONES["ssl4eo"]
    assert get_backbone("imagenet", "rgb", "satlas_fpn") is BACKBONES["imagenet_rgb"]


def test_loads_what_the_package_loads(satlas_file: Path) -> None:
    """Backbone and FPN equal the package's own Model filled from the same file; its forward + head equals ours."""
    task = make_task(satlas_file.parent).eval()
    assert isinstance(task.model, SatlasFPN)
    assert task.provenance.weights == "pretrained"
    assert task.provenance.file == "sentinel2_resnet50_si_ms.pth"
    raw = torch.load(satlas_file, weights_only=True)
    study = Model(num_channels=9, multi_image=False, backbone=SatlasArch.RESNET50, fpn=True, weights=raw).eval()
    assert study.fpn is not None
    ours_encoder = task.model.encoder.state_dict()
    study_encoder = {k: v for k, v in study.backbone.state_dict().items() if not k.startswith("resnet.fc.")}
    assert ours_encoder.keys() == study_encoder.keys()
    assert all(torch.equal(ours_encoder[k], study_encoder[k]) for k in ours_encoder)
    study_fpn = study.fpn.state_dict()
    assert all(torch.equal(v, study_fpn[k]) for k, v in task.model.fpn.state_dict().items())
    # the package leaves the upsampling at random init, whatever the file holds
    file_upsample = {k.removeprefix("intermediates.1."): v for k, v in raw.items() if k.startswith("intermediates.1.")}
    assert not torch.equal(task.model.upsample.state_dict()["layers.0.0.weight"], file_upsample["layers.0.0.weight"])
    study.upsample.load_state_dict(task.model.upsample.state_dict())
    image = batch(0)["image"]
    with torch.no_grad():
        x = task.normalize(image)
        expected = task.model.head(study(x)[0])
        logits = task(image)
    assert logits.shape == (2, CLASSES, 32, 32)
    assert torch.allclose(logits, expected, atol=1e-5)


def test_satlas_parts_follow_the_package_prefix_rules() -> None:
    raw = fake_satlas_state(seed=0)
    parts = satlas_parts(raw)
    assert set(parts) == {"encoder", "fpn"}
    assert "resnet.conv1.weight" in parts["encoder"]
    assert not any(k.startswith("resnet.fc.") for k in parts["encoder"])
    assert "fpn.inner_blocks.0.0.weight" in parts["fpn"]
    assert not any("layers." in k or "heads" in k for part in parts.values() for k in part)


def test_forward_pads_odd_sides(satlas_file: Path) -> None:
    task = make_task(satlas_file.parent).eval()
    with torch.no_grad():
        logits = task(batch(1, side=40)["image"])
    assert logits.shape == (2, CLASSES, 40, 40)
    assert torch.isfinite(logits).all()


def test_missing_file_names_it_or_starts_random(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="no weights for backbone 'satlas_fpn'") as missing:
        make_task(tmp_path)
    text = str(missing.value)
    assert "sentinel2_resnet50_si_ms.pth" in text and str(tmp_path) in text
    assert "allow_random_init" in text
    task = make_task(tmp_path, allow_random_init=True)
    assert task.provenance.as_dict() == {
        "weights": "random",
        "enum": "satlaspretrain_models:Sentinel2_Resnet50_SI_MS",
        "file": None,
        "sha256": None,
    }


def test_a_backbone_only_file_is_refused(tmp_path: Path) -> None:
    """torchgeo's backbone-only Satlas file (no FPN) under the full model's name: an error naming file and keys."""
    torch.save(fake_resnet50_state(9, seed=0), tmp_path / SPEC.file_name)
    with pytest.raises(WeightsError, match="does not fit the SatlasPretrain model") as refused:
        make_task(tmp_path)
    text = str(refused.value)
    assert SPEC.file_name in text
    assert "encoder: missing" in text and "fpn: missing" in text


def test_frozen_freezes_only_the_backbone(satlas_file: Path) -> None:
    """The study froze `model.backbone`: FPN, upsampling and head train; the backbone and its statistics stay."""
    task = make_task(satlas_file.parent)
    task.train()
    assert not any(m.training for m in task.model.encoder.modules())
    assert task.model.fpn.training and task.model.head.training
    frozen = {id(p) for p in task.model.encoder.parameters()}
    assert not any(p.requires_grad for p in task.model.encoder.parameters())
    assert all(p.requires_grad for p in task.parameters() if id(p) not in frozen)
    before = {name: snapshot(getattr(task.model, name)) for name in ("encoder", "fpn", "upsample", "head")}
    one_step(task, batch(2))
    for name in ("fpn", "upsample", "head"):
        after = getattr(task.model, name).state_dict()
        assert any(not torch.equal(v, before[name][k]) for k, v in after.items()), name
    assert all(torch.equal(v, before["encoder"][k]) for k, v in task.model.encoder.state_dict().items())


def test_study_batchnorm_moves_statistics_not_weights(satlas_file: Path) -> None:
    task = make_task(satlas_file.parent, batchnorm="train")
    task.train()
    assert task.model.encoder.training
    before = snapshot(task.model.encoder)
    one_step(task, batch(3))
    after = task.model.encoder.state_dict()
    assert torch.equal(after["resnet.conv1.weight"], before["resnet.conv1.weight"])
    assert not torch.equal(after["resnet.bn1.running_mean"], before["resnet.bn1.running_mean"])
    assert after["resnet.bn1.num_batches_tracked"].item() == 101
    task.eval()
    assert not task.model.encoder.training


def test_checkpoint_round_trip_and_foreign_model(satlas_file: Path, tmp_path: Path) -> None:
    """A frozen Satlas run's checkpoint omits the backbone's parameters, reloads exactly, and fits no U-Net."""
    task = make_task(satlas_file.parent, batchnorm="train")
    task.train()
    one_step(task, batch(4))
    task.eval()
    path = tmp_path / "best.pt"
    task.save_checkpoint(path, {"epoch": 1})
    state = torch.load(path, weights_only=True)["state"]
    assert "encoder.resnet.conv1.weight" not in state
    assert "encoder.resnet.bn1.running_mean" in state  # drifted statistics travel
    assert "fpn.fpn.inner_blocks.0.0.weight" in state and "head.2.weight" in state
    fresh = make_task(satlas_file.parent, batchnorm="train").eval()
    assert fresh.load_checkpoint(path) == {"epoch": 1}
    image = batch(5)["image"]
    with torch.no_grad():
        assert torch.equal(fresh(image), task(image))
    assert tensor_digest(fresh.model) == tensor_digest(task.model)
    unet = CropTask(
        backbone_spec=BACKBONES["satlas"], file_bands=FILE_BANDS, num_classes=CLASSES, allow_random_init=True
    )
    with pytest.raises(CheckpointError):
        unet.load_checkpoint(path)


def test_factory_builds_the_architecture_per_backbone(
    satlas_file: Path, train_params: TrainParams, shared_params: SharedParams
) -> None:
    model = train_params.model.model_copy(
        update={
            "satlas_architecture": "satlas_fpn",
            "frozen_batchnorm": "train",
            "encoder_depth": 5,
            "decoder_channels": (16,) * 5,
        }
    )
    params = train_params.model_copy(
        update={"model": model, "weights_dir": satlas_file.parent, "allow_random_init": True}
    )
    build = task_factory(params, shared_params, CLASSES)
    satlas, ssl4eo = build("satlas"), build("ssl4eo")
    assert isinstance(satlas.model, SatlasFPN) and satlas.frozen_batchnorm == "train"
    assert satlas.provenance.weights == "pretrained"
    assert isinstance(ssl4eo.model, smp.Unet)


def test_random_init_calibrates_the_backbone_statistics(tmp_path: Path) -> None:
    """A random-init SatlasPretrain backbone gets BatchNorm statistics from training batches, then stays frozen."""
    task = make_task(tmp_path, allow_random_init=True)
    before = task.model.encoder.resnet.bn1.running_mean.clone()
    task.calibrate_statistics([batch(6), batch(7)])
    assert not torch.equal(task.model.encoder.resnet.bn1.running_mean, before)
    task.train()
    assert not task.model.encoder.training
    with torch.no_grad():
        assert torch.isfinite(task(batch(8)["image"])).all()
