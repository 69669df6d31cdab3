"""Checkpoints that cannot be used: missing, truncated, foreign, or written for another model, by name, no traceback.

Every file here is written by the test: a real checkpoint of a small task, then cut, overwritten or edited.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
import torch

from curation.core.errors import CropharmonyError, ProblemsError
from curation.core.shared import SharedParams
from training.backbones import get_backbone
from training.config import EvaluateParams, TrainParams
from training.evaluate import evaluate_entry
from training.factory import task_factory
from training.task import CheckpointError, CropTask
from training.weights import tensor_digest

from .fakes import one_thread  # noqa: F401 - one_thread is an autouse fixture
from .world import BANDS, make_world

RETRAIN = "re-run `dvc repro train@id-ssl4eo-cdl-2`"
RECORD = {
    "run_id": "id-ssl4eo-cdl-k2-s0",
    "protocol": "id",
    "backbone": "ssl4eo",
    "target_source": "cdl",
    "train_sources": ["cdl"],
    "k": 2,
    "seed": 0,
    "crosswalk_set": "toolkit",
    "provenance": {"weights": "random", "file": None},
}


@pytest.fixture(scope="module", autouse=True)
def no_weight_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """An empty torch hub: the tasks start from (seeded) random init, whatever this machine has cached."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch")))
        yield


def make_task(decoder: tuple[int, ...] = (16, 16, 16, 16, 16), seed: int = 0) -> CropTask:
    torch.manual_seed(seed)
    return CropTask(
        backbone_spec=get_backbone("ssl4eo"),
        file_bands=BANDS,
        num_classes=6,
        decoder_channels=decoder,
        frozen_encoder=True,
        allow_random_init=True,
    )


@pytest.fixture(scope="module")
def task() -> CropTask:
    return make_task()


@pytest.fixture(scope="module")
def good(task: CropTask, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("good") / "best.pt"
    task.save_checkpoint(path, {"epoch": 0})
    return path


def _truncated(good: Path, path: Path) -> None:
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])


def _garbage(good: Path, path: Path) -> None:
    path.write_bytes(b"not a checkpoint at all")


def _empty(good: Path, path: Path) -> None:
    path.write_bytes(b"")


def _foreign(good: Path, path: Path) -> None:
    torch.save({"model": {"w": torch.zeros(2)}, "epoch": 3}, path)  # a torch file, not ours


def _a_list(good: Path, path: Path) -> None:
    torch.save([torch.zeros(2)], path)


def _missing(good: Path, path: Path) -> None:
    pass


@pytest.mark.parametrize(
    ("write", "detail"),
    [
        (_truncated, "RuntimeError: PytorchStreamReader failed"),
        (_garbage, "UnpicklingError"),
        (_empty, "EOFError"),
        (_foreign, "not a cropharmony checkpoint"),
        (_a_list, "not a cropharmony checkpoint ({state, encoder_digest, meta}): a list"),
        (_missing, "no such file"),
    ],
)
def test_an_unreadable_checkpoint_names_the_file_the_rule_and_the_fix(
    task: CropTask, good: Path, tmp_path: Path, write: Callable[[Path, Path], None], detail: str
) -> None:
    path = tmp_path / "best.pt"
    write(good, path)
    before = tensor_digest(task.model)
    with pytest.raises(CheckpointError) as caught:
        task.load_checkpoint(path, RETRAIN)
    message = str(caught.value)
    assert f"{path}: readable checkpoint: " in message and detail in message, message
    assert f"Fix: {'' if write is _missing else 'delete it and '}{RETRAIN}" in message
    assert "\n    " not in message  # one line per problem: torch's multi-paragraph texts are cut
    assert isinstance(caught.value, CropharmonyError)  # run_stage prints it and exits 1, no traceback
    assert tensor_digest(task.model) == before


def _edit(good: Path, path: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    payload = torch.load(good, map_location="cpu", weights_only=True)
    change(payload["state"])
    torch.save(payload, path)


def test_a_checkpoint_of_another_model_names_what_differs(task: CropTask, tmp_path: Path) -> None:
    wider = tmp_path / "wider.pt"
    make_task(decoder=(32, 32, 32, 32, 32)).save_checkpoint(wider, {})  # same seed: the same frozen encoder
    before = tensor_digest(task.model)
    with pytest.raises(CheckpointError, match="checkpoint does not fit the model") as caught:
        task.load_checkpoint(wider, RETRAIN)
    message = str(caught.value)
    assert f"{wider}: checkpoint of this model: written for another model" in message
    assert "wrong shapes: ['decoder." in message and f"or {RETRAIN}" in message
    assert tensor_digest(task.model) == before  # nothing loaded


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda state: state.pop("segmentation_head.0.weight"), "missing ['segmentation_head.0.weight']"),
        (lambda state: state.update(extra=torch.zeros(1)), "unexpected ['extra']"),
    ],
)
def test_missing_or_unexpected_keys(
    task: CropTask, good: Path, tmp_path: Path, change: Callable[[dict[str, torch.Tensor]], None], expected: str
) -> None:
    path = tmp_path / "edited.pt"
    _edit(good, path, change)
    with pytest.raises(CheckpointError, match="checkpoint of this model") as caught:
        task.load_checkpoint(path, RETRAIN)
    assert expected in str(caught.value)


def test_the_good_checkpoint_still_loads(task: CropTask, good: Path) -> None:
    assert task.load_checkpoint(good) == {"epoch": 0}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    root = tmp_path_factory.mktemp("chips")
    _, subsets = make_world(root, chips_per_source=6)
    return root, subsets


def _runs(root: Path, record: str | None = None) -> Path:
    folder = root / "runs" / "id_ssl4eo_cdl_2" / RECORD["run_id"]
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(record if record is not None else json.dumps(RECORD))
    return folder


def evaluate(world: tuple[Path, pl.DataFrame], train: TrainParams, shared: SharedParams, tmp_path: Path) -> None:
    chips, subsets = world
    params = EvaluateParams(batch_size=8, checkpoint="best", argmax_over_ignore=False, out=tmp_path / "evals")
    runs = tmp_path / "runs" / "id_ssl4eo_cdl_2"
    evaluate_entry(params, train, shared, chips, subsets, runs, tmp_path / "evals" / "entry", RETRAIN)


def test_evaluate_names_a_truncated_checkpoint_and_the_train_entry(
    world: tuple[Path, pl.DataFrame], train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    folder = _runs(tmp_path)
    torch.manual_seed(train_params.seed)  # what evaluate rebuilds: the run's frozen encoder
    task_factory(train_params, shared_params, 6)("ssl4eo").save_checkpoint(folder / "best.pt", {})
    _truncated(folder / "best.pt", folder / "best.pt")
    with pytest.raises(CheckpointError) as caught:
        evaluate(world, train_params, shared_params, tmp_path)
    assert f"{folder / 'best.pt'}: readable checkpoint: " in str(caught.value)
    assert RETRAIN in str(caught.value)
    assert not (tmp_path / "evals").exists()  # nothing written


def test_evaluate_names_a_checkpoint_of_another_model(
    world: tuple[Path, pl.DataFrame], train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    folder = _runs(tmp_path)
    other = train_params.model_copy(
        update={
            "model": train_params.model.model_copy(update={"decoder_channels": (8,) * train_params.model.encoder_depth})
        }
    )
    torch.manual_seed(train_params.seed)
    task_factory(other, shared_params, 6)("ssl4eo").save_checkpoint(folder / "best.pt", {})
    with pytest.raises(CheckpointError, match="checkpoint does not fit the model") as caught:
        evaluate(world, train_params, shared_params, tmp_path)
    assert f"{folder / 'best.pt'}: checkpoint of this model" in str(caught.value) and RETRAIN in str(caught.value)


@pytest.mark.parametrize(
    ("record", "detail"),
    [
        ('{"run_id": "id-ssl4eo', "JSONDecodeError"),
        (json.dumps({"run_id": "x"}), "lacks protocol, backbone"),
        ("[]", "a JSON list, not an object"),
    ],
)
def test_evaluate_names_a_broken_run_record(
    world: tuple[Path, pl.DataFrame],
    train_params: TrainParams,
    shared_params: SharedParams,
    tmp_path: Path,
    record: str,
    detail: str,
) -> None:
    folder = _runs(tmp_path, record)
    with pytest.raises(ProblemsError) as caught:
        evaluate(world, train_params, shared_params, tmp_path)
    assert f"{folder / 'run.json'}: readable run record: " in str(caught.value) and detail in str(caught.value)
    assert RETRAIN in str(caught.value)
