"""Planning: the matrix entry's cells, the chips of each phase and the spatial validation hold-out."""

from __future__ import annotations

import polars as pl
import pytest

from curation.core.errors import ParamsError
from training.config import TrainParams
from training.plans import hold_out, plan_entry

from .conftest import train_section
from .world import SOURCES


def tables() -> tuple[pl.DataFrame, pl.DataFrame]:
    """A manifest (chips 2 km apart on a line) and nested subsets of 2 and 4, without files."""
    rows, subsets = [], []
    for source in SOURCES:
        for number in range(8):
            chip_id = f"{source}_{number}"
            rows.append({"chip_id": chip_id, "source": source, "lon": 15.0 + number * 0.025, "lat": 0.0})
            if number < 4:
                subsets += [(chip_id, source, "train", 4)] + ([(chip_id, source, "train", 2)] if number < 2 else [])
    return pl.DataFrame(rows), pl.DataFrame(subsets, schema=["chip_id", "source", "split", "size"], orient="row")


def test_all_expands_to_valid_cells_only() -> None:
    """Protocols with target chips take every k > 0; `ood` runs once with k = 0."""
    manifest, subsets = tables()
    params = TrainParams.model_validate(train_section())
    plans = plan_entry(params, SOURCES, subsets, manifest, ("all", "ssl4eo", "cdl", "all"))
    assert [(p.protocol, p.k) for p in plans] == [
        ("id", 2), ("id", 4), ("ood", 0), ("ood+k", 2), ("ood+k", 4), ("pretrain-finetune", 2),
        ("pretrain-finetune", 4),
    ]  # fmt: skip
    ood = plans[2]
    assert ood.train_sources == ("eurocrops", "nccm")
    phase = ood.phases[0]
    assert {c.split("_")[0] for c in phase.train_ids + phase.val_ids} == {"eurocrops", "nccm"}
    assert len(phase.train_ids) + len(phase.val_ids) == 2 * params.others_size
    finetune = plans[-1].phases[1]
    assert finetune.sources == ("cdl",) and len(finetune.train_ids) + len(finetune.val_ids) == 4


def test_a_size_value_selects_one_k_and_skips_protocols_without_target() -> None:
    """An entry for k = 4 has no ood run; an entry for k = 0 has only ood."""
    manifest, subsets = tables()
    params = TrainParams.model_validate(train_section())
    assert {p.protocol for p in plan_entry(params, SOURCES, subsets, manifest, ("all", "ssl4eo", "nccm", 4))} == {
        "id", "ood+k", "pretrain-finetune"
    }  # fmt: skip
    assert [p.run_id for p in plan_entry(params, SOURCES, subsets, manifest, ("all", "satlas", "nccm", 0))] == [
        "ood-satlas-nccm-k0"
    ]


def test_unknown_matrix_values_and_missing_sizes_are_named() -> None:
    """A typo in an axis or a size the subsets lack is an error naming the fix."""
    manifest, subsets = tables()
    params = TrainParams.model_validate(train_section())
    with pytest.raises(ParamsError, match=r"train\.matrix\.source"):
        plan_entry(params, SOURCES, subsets, manifest, ("id", "ssl4eo", "cdll", 2))
    with pytest.raises(ParamsError, match=r"did you mean 'satlas'\?"):
        plan_entry(params, SOURCES, subsets, manifest, ("id", "satlass", "cdl", 2))
    wrong = TrainParams.model_validate(train_section(others_size=3))
    with pytest.raises(ParamsError, match=r"subsets\.train_sizes"):
        plan_entry(wrong, SOURCES, subsets, manifest, ("ood", "ssl4eo", "cdl", 0))


def test_hold_out_takes_whole_blocks_and_never_everything() -> None:
    """Validation chips are whole spatial blocks; at least one chip stays for training."""
    manifest, _ = tables()
    ids = [f"cdl_{n}" for n in range(8)]
    held = hold_out(ids, manifest, share=0.25, block_m=5000.0, seed=0)  # blocks of 2-3 chips along the line
    assert 2 <= len(held) < len(ids)
    x = {c: int(c.split("_")[1]) for c in ids}
    assert max(x[c] for c in held) - min(x[c] for c in held) == len(held) - 1  # contiguous: whole blocks
    assert hold_out(ids, manifest, share=0.0, block_m=5000.0, seed=0) == set()
    assert hold_out(ids[:2], manifest, share=0.9, block_m=1e6, seed=0) == set()  # one block would be all
    assert hold_out(ids, manifest, 0.25, 5000.0, 0) == held  # seeded
