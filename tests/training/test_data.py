"""In-memory chips and on-device batches: exact values, seeded crops, no file reads per step."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch

from training.data import EvalBatches, TrainBatches, crop_grids, crop_sides, load_bank

from .world import make_world


@pytest.fixture(scope="module")
def bank_and_ids(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[str]]:
    """A bank of the tiny world's chips."""
    root = tmp_path_factory.mktemp("bank")
    manifest, _ = make_world(root, chips_per_source=4)
    ids = manifest["chip_id"].to_list()
    return load_bank(root, manifest, ids), ids


def test_bank_keeps_uint16_values_exact(bank_and_ids: tuple[object, list[str]]) -> None:
    """Values above 32767 survive the int16 storage."""
    bank, ids = bank_and_ids
    batch = bank.gather(bank.index(ids[:2]))  # type: ignore[attr-defined]
    assert batch["image"].shape == (2, 13, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["image"][0, 0, 0, 0].item() == 40000.0
    assert batch["mask"].dtype == torch.long and int(batch["mask"].max()) <= 5


def test_train_batches_are_seeded_cropped_and_read_no_file(bank_and_ids: tuple[object, list[str]]) -> None:
    """Same seed, same batches; crops keep class ids valid; no file is opened while iterating."""
    bank, ids = bank_and_ids
    rows = bank.index(ids[:11])  # type: ignore[attr-defined]
    first = TrainBatches(bank, rows, batch_size=5, crop_px=32, scale=(0.3, 0.6), seed=3)  # type: ignore[arg-type]
    second = TrainBatches(bank, rows, batch_size=5, crop_px=32, scale=(0.3, 0.6), seed=3)  # type: ignore[arg-type]
    with mock.patch("rasterio.open", side_effect=AssertionError("read a file")):
        a, b = list(first), list(second)
    assert len(a) == len(first) == 2  # 11 chips: 5 + 6 (a last single chip joins the batch before)
    assert [x["image"].shape[0] for x in a] == [5, 6]
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["mask"], y["mask"])
    mask = torch.cat([x["mask"] for x in a])
    assert set(mask.unique().tolist()) <= set(range(6))  # nearest sampling: no blended class ids
    assert not torch.equal(next(iter(first))["image"], a[0]["image"])  # a new epoch draws new crops


def test_crop_grids_cover_the_requested_share_and_flip() -> None:
    """A full-scale crop without flip is the identity grid; flips mirror it."""
    grids = crop_grids(64, 8, (1.0, 1.0), torch.Generator().manual_seed(0))
    identity = torch.nn.functional.affine_grid(torch.eye(2, 3)[None], [1, 1, 8, 8], align_corners=False)[0]
    extents = grids.abs().amax(dim=(1, 2))
    assert torch.allclose(extents, identity.abs().amax(dim=(0, 1)).expand(64, 2))
    assert any(torch.allclose(g, identity) for g in grids) and any(torch.allclose(g, -identity) for g in grids)


def test_eval_batches_cover_every_chip_once(bank_and_ids: tuple[object, list[str]]) -> None:
    """Whole chips, fixed order."""
    bank, ids = bank_and_ids
    rows = bank.index(ids)  # type: ignore[attr-defined]
    seen = torch.cat([b["image"] for b in EvalBatches(bank, rows, 5)])  # type: ignore[arg-type]
    assert seen.shape[0] == len(ids) and torch.equal(seen, bank.gather(rows)["image"])  # type: ignore[attr-defined]


def test_missing_chip_file_names_the_stage(tmp_path: Path) -> None:
    """A manifest row without its file says to re-run chips."""
    manifest, _ = make_world(tmp_path, chips_per_source=1)
    (tmp_path / manifest["image_path"][0]).unlink()
    with pytest.raises(Exception, match="dvc repro chips"):
        load_bank(tmp_path, manifest, manifest["chip_id"].to_list())


def test_square_crops_draw_as_before_and_ratio_crops_as_kornia() -> None:
    """[1, 1] keeps one area draw per crop; kornia's range gives crops inside the chip, area and ratio in range."""
    square = crop_grids(32, 8, (0.3, 0.6), torch.Generator().manual_seed(1))
    assert torch.equal(square, crop_grids(32, 8, (0.3, 0.6), torch.Generator().manual_seed(1), (1.0, 1.0)))
    width, height = crop_sides(4000, (0.6, 1.0), (3 / 4, 4 / 3), torch.Generator().manual_seed(0))
    assert bool((width <= 1).all() and (height <= 1).all())
    area, ratio = width * height, width / height
    assert bool((area >= 0.6 - 1e-6).all() and (area <= 1 + 1e-6).all())
    assert bool((ratio >= 3 / 4 - 1e-6).all() and (ratio <= 4 / 3 + 1e-6).all())
    assert (ratio - 1).abs().gt(0.05).float().mean() > 0.5  # mostly not square
    grids = crop_grids(4000, 8, (0.6, 1.0), torch.Generator().manual_seed(0), (3 / 4, 4 / 3))
    assert grids.abs().max() <= 1 + 1e-6  # every crop lies inside the chip
    wide, tall = crop_sides(64, (1.0, 1.0), (2.0, 3.0), torch.Generator().manual_seed(0))
    assert torch.equal(wide, torch.ones(64)) and torch.allclose(tall, torch.full((64,), 0.5))  # nothing fits


def test_with_replacement_draws_as_many_chips_seeded(bank_and_ids: tuple[object, list[str]]) -> None:
    """An epoch with replacement has the same batches, some chips twice, the same draws for the same seed."""
    bank, ids = bank_and_ids
    rows = bank.index(ids)  # type: ignore[attr-defined]
    drawn = []
    with mock.patch("training.data.augment", side_effect=lambda batch, theta, out_px: batch):
        for _ in range(2):
            batches = TrainBatches(bank, rows, 4, 32, (1.0, 1.0), seed=5, sampling="with_replacement")  # type: ignore[arg-type]
            drawn.append(torch.cat([b["image"][:, 1, 1, 1] for b in batches]))
            assert len(batches) == 3
    assert torch.equal(drawn[0], drawn[1]) and len(drawn[0]) == len(ids)
    assert len(drawn[0].unique()) < len(ids)  # 12 uniform draws of 12 chips: a repeat (seeded)
    with pytest.raises(ValueError, match="with_replacement"):
        TrainBatches(bank, rows, 4, 32, (1.0, 1.0), seed=5, sampling="shuffle")  # type: ignore[arg-type]
