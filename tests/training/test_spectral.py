"""The spectral baseline: pixel sampling, learning, phase continuation, deterministic checkpoints, clear errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from training import spectral
from training.data import ChipBank
from training.spectral import SpectralModel, SpectralSettings, sample_pixels
from training.task import CheckpointError

from .fakes import one_thread  # noqa: F401 - one_thread is an autouse fixture
from .world import BANDS

THREE = BANDS[1:4]
K = 4  # ignore + three classes
FAST = SpectralSettings(pixels_per_class=300, trees=15, learning_rate=0.3, leaves=7)


def make_bank(
    labels: np.ndarray, swap: bool = False, seed: int = 0, noise: float = 80.0
) -> tuple[ChipBank, np.ndarray]:
    """Class c pixels read about 1000 * c (+ a band offset) in every band; `swap` gives classes 1 and 2 each other's.

    Values sit above int16 (30000+) so a bank that mixed up the int16 bits would fail. Returns the bank and its
    uint16 images.
    """
    rng = np.random.default_rng(seed)
    spectrum = labels.astype(np.int64)
    if swap:
        spectrum = np.where(labels == 1, 2, np.where(labels == 2, 1, spectrum))
    base = 30_000 + 1000 * spectrum[:, None] + 100 * np.arange(len(THREE))[None, :, None, None]
    images = np.clip(base + rng.normal(0, noise, size=base.shape), 0, 65535).astype(np.uint16)
    ids = tuple(f"chip_{i:02d}" for i in range(len(labels)))
    return ChipBank(ids, torch.from_numpy(images.view(np.int16)), torch.from_numpy(labels.astype(np.uint8))), images


def random_labels(chips: int, px: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, K, size=(chips, px, px)).astype(np.uint8)


def all_rows(bank: ChipBank) -> torch.Tensor:
    return torch.arange(len(bank.chip_ids))


def test_sample_caps_per_class_skips_ignore_and_reads_the_right_pixels() -> None:
    labels = random_labels(5)
    labels = np.where(labels == 3, 1, labels).astype(np.uint8)  # class 3 only in a few pixels of chip 4
    labels[4, 0, :5] = 3
    bank, images = make_bank(labels)
    rows = torch.tensor([0, 2, 4])
    x, y = sample_pixels(bank, rows, per_class=40, seed=1)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (len(y), len(THREE))
    assert 0 not in y
    counts = {c: int((y == c).sum()) for c in (1, 2, 3)}
    assert counts == {1: 40, 2: 40, 3: 5}  # a rare class gives all its pixels
    # every sampled row is a distinct pixel of the picked chips with exactly that pixel's values and label
    pixels = images[[0, 2, 4]].transpose(0, 2, 3, 1).reshape(-1, len(THREE)).astype(np.float32)
    flat = labels[[0, 2, 4]].reshape(-1)
    matches = [np.flatnonzero((pixels == row).all(1) & (flat == label)) for row, label in zip(x, y, strict=True)]
    assert all(len(m) >= 1 for m in matches)
    assert len({int(m[0]) for m in matches}) == len(y)  # without replacement
    assert x.min() > 30_000  # uint16 values survive the int16 storage


def test_sample_is_deterministic_per_seed_and_differs_across_seeds() -> None:
    bank, _ = make_bank(random_labels(4))
    first = sample_pixels(bank, all_rows(bank), per_class=30, seed=7)
    again = sample_pixels(bank, all_rows(bank), per_class=30, seed=7)
    other = sample_pixels(bank, all_rows(bank), per_class=30, seed=8)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_sample_batches_chips_without_changing_the_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    bank, _ = make_bank(random_labels(5))
    whole = sample_pixels(bank, all_rows(bank), per_class=50, seed=3)
    monkeypatch.setattr(spectral, "SAMPLE_PIXELS", 256)  # one 16 x 16 chip per batch
    batched = sample_pixels(bank, all_rows(bank), per_class=50, seed=3)
    assert np.array_equal(whole[0], batched[0]) and np.array_equal(whole[1], batched[1])


def test_sample_of_unlabelled_chips_is_empty() -> None:
    bank, _ = make_bank(np.zeros((2, 8, 8), np.uint8))
    x, y = sample_pixels(bank, all_rows(bank), per_class=10, seed=0)
    assert x.shape == (0, len(THREE)) and y.shape == (0,)


@pytest.fixture(scope="module")
def separable() -> tuple[ChipBank, SpectralModel]:
    bank, _ = make_bank(random_labels(6))
    return bank, SpectralModel.fit(bank, [torch.arange(4)], K, THREE, FAST)


def test_learns_separable_classes_and_never_predicts_ignore(separable: tuple[ChipBank, SpectralModel]) -> None:
    bank, model = separable
    batch = bank.gather(torch.tensor([4, 5]))  # held-out chips
    predicted = model.predict_classes(batch["image"])
    assert predicted.dtype == torch.long and predicted.shape == batch["mask"].shape
    assert int(predicted.min()) >= 1 and int(predicted.max()) <= K - 1  # ignore pixels get a real class too
    labelled = batch["mask"] != 0
    accuracy = (predicted[labelled] == batch["mask"][labelled]).float().mean().item()
    assert accuracy > 0.95
    assert model.rounds == FAST.trees


def test_prediction_in_chunks_matches_one_pass(
    separable: tuple[ChipBank, SpectralModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    bank, model = separable
    image = bank.gather(torch.tensor([4, 5]))["image"]
    whole = model.predict_classes(image)
    monkeypatch.setattr(spectral, "PREDICT_PIXELS", 37)
    assert torch.equal(model.predict_classes(image), whole)


def test_prediction_checks_the_bands(separable: tuple[ChipBank, SpectralModel]) -> None:
    _, model = separable
    with pytest.raises(ValueError, match="expected"):
        model.predict_classes(torch.zeros(1, len(THREE) + 1, 4, 4))


def test_fitting_twice_saves_identical_bytes(tmp_path: Path) -> None:
    bank, _ = make_bank(random_labels(4))
    for name in ("a", "b"):
        model = SpectralModel.fit(bank, [torch.arange(2), torch.arange(2, 4)], K, THREE, FAST)
        model.save(tmp_path / f"{name}.json", {"run": "r1"})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    other = SpectralModel.fit(bank, [torch.arange(2)], K, THREE, dataclasses.replace(FAST, seed=5))
    other.save(tmp_path / "c.json", {"run": "r1"})
    assert (tmp_path / "c.json").read_bytes() != (tmp_path / "a.json").read_bytes()


def test_a_second_phase_continues_the_booster_on_its_own_pixels() -> None:
    labels = random_labels(8, seed=2)
    first, _ = make_bank(labels[:4], seed=1)
    swapped, _ = make_bank(labels[4:], swap=True, seed=2)  # same spectra, classes 1 and 2 trade places
    bank = ChipBank(first.chip_ids + tuple(f"s{i}" for i in range(4)), torch.cat([first.images, swapped.images]),
                    torch.cat([first.labels, swapped.labels]))  # fmt: skip
    one = SpectralModel.fit(bank, [torch.arange(3)], K, THREE, FAST)
    two = SpectralModel.fit(bank, [torch.arange(3), torch.arange(4, 7)], K, THREE, FAST)
    assert one.rounds == FAST.trees and two.rounds == 2 * FAST.trees
    held = bank.gather(torch.tensor([7]))  # a held-out chip of the second phase's world
    labelled = held["mask"] != 0
    swapped_class = held["mask"][labelled]
    followed = (two.predict_classes(held["image"])[labelled] == swapped_class).float().mean().item()
    before = (one.predict_classes(held["image"])[labelled] == swapped_class).float().mean().item()
    assert followed > 0.9 and before < 0.6


def test_a_phase_without_labels_is_named() -> None:
    labels = random_labels(3)
    labels[2] = 0
    bank, _ = make_bank(labels)
    with pytest.raises(ValueError, match="phase 2 of 2"):
        SpectralModel.fit(bank, [torch.arange(2), torch.tensor([2])], K, THREE, FAST)


def test_save_load_round_trip_predicts_identically(separable: tuple[ChipBank, SpectralModel], tmp_path: Path) -> None:
    bank, model = separable
    path = tmp_path / "ckpt" / "spectral.json"
    model.save(path, {"run_id": "x", "epoch": 3})
    loaded, meta = SpectralModel.load(path, bands=THREE)
    assert meta == {"run_id": "x", "epoch": 3}
    assert loaded.bands == THREE and loaded.num_classes == K and loaded.settings == FAST
    image = bank.gather(torch.arange(6))["image"]
    assert torch.equal(loaded.predict_classes(image), model.predict_classes(image))
    assert not list(path.parent.glob("*.tmp"))  # the atomic write left nothing beside it


FIX = "re-run `dvc repro train@spectral`"


def _load_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(CheckpointError) as caught:
        SpectralModel.load(path, FIX, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert str(path) in message and FIX in message
    return message


def test_load_errors_name_the_file_and_the_fix(separable: tuple[ChipBank, SpectralModel], tmp_path: Path) -> None:
    _, model = separable
    assert "no such file" in _load_error(tmp_path / "absent.json")
    good = tmp_path / "good.json"
    model.save(good, {})
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    assert "not JSON" in _load_error(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state": {}, "encoder_digest": "", "meta": {}}, foreign)
    assert "not JSON" in _load_error(foreign)
    other = tmp_path / "other.json"
    other.write_text('{"format": "something-else", "meta": {}}')
    assert "something-else" in _load_error(other)
    assert "trained on" in _load_error(good, bands=THREE[::-1])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pixels_per_class", 0),
        ("trees", -1),
        ("learning_rate", 0.0),
        ("learning_rate", float("nan")),
        ("leaves", 1),
        ("seed", -1),
        ("threads", 0),
        ("trees", True),
    ],
)
def test_settings_reject_bad_values(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        SpectralSettings(**{field: value})  # type: ignore[arg-type]


def test_prediction_is_the_same_on_every_thread_count(separable: tuple[ChipBank, SpectralModel]) -> None:
    """evaluate predicts on every core: the classes must not depend on it."""
    bank, model = separable
    image = bank.gather(torch.arange(6))["image"]
    one = model.predict_classes(image)
    assert model.with_threads(4).settings.threads == 4 and model.settings.threads == FAST.threads
    assert torch.equal(model.with_threads(4).predict_classes(image), one)
