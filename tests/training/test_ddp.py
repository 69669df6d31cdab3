"""Lightning DDP on the CPU: two gloo ranks train one entry of the tiny world through `run_entry`.

The ranks are separate processes (Lightning starts the second by running the command again), as on a GPU server;
the single-process run of the same entry is the reference for what is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import torch
import torch.nn.functional as F

from curation.core.artifacts import MANIFEST
from curation.core.legends import taxonomy_of
from training import data
from training.config import TrainParams
from training.data import ChipBank, EvalBatches, TrainBatches, load_bank
from training.factory import device_of, task_factory
from training.metrics import confusion_matrix, scores
from training.train import run_entry

from .conftest import ROOT, tiny_shared, train_section
from .world import make_world

ENTRY = ("pretrain-finetune", "ssl4eo", "cdl", "all")  # an ood phase shared by two runs, then k = 2 and 4
DDP_TIMEOUT_S = 300


def ddp_section(**changes: Any) -> dict[str, Any]:  # noqa: ANN401 - any params value
    """Batches of 2 and half the chips held out at random: every phase has batches on both ranks, or pads them."""
    body = train_section(batch_size=2, val_split="random", val_share=0.5, others_size=4, threads=1, **changes)
    body["accelerator"] = "cpu"
    body["protocols"]["pretrain-finetune"] = [
        {"train_on": ["others"], "epochs": 2},
        {"train_on": ["target"], "epochs": 2},
    ]
    return body


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The entry trained on 2 DDP ranks (a subprocess) and in this process, and the chips they trained on."""
    root = tmp_path_factory.mktemp("ddp")
    chips = root / "chips"
    _, subsets = make_world(chips)
    subsets.write_parquet(root / "subsets.parquet")
    spec = {
        "train": ddp_section(devices=2),
        "chips": str(chips),
        "subsets": str(root / "subsets.parquet"),
        "entry": list(ENTRY),
        "out": str(root / "ddp"),
    }
    (root / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    command = [sys.executable, str(ROOT / "tests" / "training" / "ddp_entry.py"), str(root / "spec.json")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=DDP_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    single = TrainParams.model_validate(ddp_section(devices=1))
    run_entry(single, tiny_shared(), chips, subsets, ENTRY, root / "single")
    return {"chips": chips, "ddp": root / "ddp", "single": root / "single", "log": root / "spec.json"}


def files(folder: Path) -> list[str]:
    """Every file under `folder`, relative."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_ddp_writes_one_set_of_outputs(trained: dict[str, Path]) -> None:
    """Rank 0 alone writes: the same files as one process, one checkpoint pair and one record per run."""
    assert files(trained["ddp"]) == files(trained["single"])
    assert files(trained["ddp"]) == [
        ".cropharmony-stage",  # the stage's own marker
        *(
            f"pretrain-finetune-ssl4eo-cdl-k{k}-s0/{name}"
            for k in (2, 4)
            for name in ("best.pt", "last.pt", "run.json")
        ),
        "runs.json",
    ]
    assert not list(trained["ddp"].parent.glob(".*tmp*"))  # no other rank's staging left behind
    for k in (2, 4):
        record = json.loads((trained["ddp"] / f"pretrain-finetune-ssl4eo-cdl-k{k}-s0" / "run.json").read_text())
        assert record["devices"] == 2
        assert [(row["phase"], row["epoch"]) for row in record["history"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def whole_set_scores(trained: dict[str, Path], run_id: str) -> dict[str, float]:
    """One process scores the run's last checkpoint on its last phase's validation chips, all at once."""
    record = json.loads((trained["ddp"] / run_id / "run.json").read_text())
    params = TrainParams.model_validate(ddp_section(devices=1))
    shared = tiny_shared()
    classes = taxonomy_of(shared.legends_dir).size
    torch.manual_seed(0)
    task = task_factory(params, shared, classes)("ssl4eo")
    task.load_checkpoint(trained["ddp"] / run_id / "last.pt")
    task.eval()
    val_ids = record["phases"][-1]["val_chips"]
    manifest = pl.read_parquet(trained["chips"] / MANIFEST)
    bank = load_bank(trained["chips"], manifest, val_ids)
    batch = bank.gather(bank.index(val_ids))
    with torch.no_grad():
        logits = task(batch["image"])
    loss = float(F.cross_entropy(logits, batch["mask"], ignore_index=0))
    logits[:, 0] = float("-inf")
    confusion = confusion_matrix(logits.argmax(dim=1), batch["mask"], classes)
    scored = scores(confusion, [str(k) for k in range(classes)])
    return {"val_loss": loss, "val_oa": scored["oa"], "val_miou": scored["miou"]}


@pytest.mark.parametrize("k", [2, 4])
def test_ddp_validation_covers_the_whole_set(trained: dict[str, Path], k: int) -> None:
    """The last epoch's validation figures, summed over both ranks, are one process's on every validation chip:
    rank 0's half alone would differ (k = 2 holds out one chip: rank 1 scores an empty batch)."""
    run_id = f"pretrain-finetune-ssl4eo-cdl-k{k}-s0"
    record = json.loads((trained["ddp"] / run_id / "run.json").read_text())
    assert len(record["phases"][-1]["val_chips"]) == k // 2
    last = record["history"][-1]
    expected = whole_set_scores(trained, run_id)
    assert {key: last[key] for key in expected} == pytest.approx(expected, rel=1e-5, abs=1e-6)


def constant_bank(chips: int) -> ChipBank:
    """Chips whose every pixel holds the chip's number: a batch shows which chips it drew, through any crop."""
    images = torch.arange(chips, dtype=torch.int16).view(chips, 1, 1, 1).expand(chips, 2, 8, 8).contiguous()
    return ChipBank(tuple(f"c{i}" for i in range(chips)), images, torch.ones(chips, 8, 8, dtype=torch.uint8))


def drawn(batches: TrainBatches | EvalBatches) -> list[list[int]]:
    """The chip numbers of every batch of one epoch."""
    return [batch["image"][:, 0, 0, 0].round().long().tolist() for batch in batches]


@pytest.mark.parametrize(("chips", "padded"), [(8, False), (10, True)])
def test_ranks_take_disjoint_batches_of_one_permutation(
    monkeypatch: pytest.MonkeyPatch, chips: int, padded: bool
) -> None:
    """Rank r gets batches r, r + 2, ... of the one epoch a single process draws; an odd count pads the short rank
    with the epoch's first batch, so both step equally often."""
    bank, rows = constant_bank(chips), torch.arange(chips)

    def epoch(rank: int, world: int) -> list[list[int]]:
        monkeypatch.setattr(data, "rank_and_world", lambda: (rank, world))
        return drawn(TrainBatches(bank, rows, 2, 8, (1.0, 1.0), seed=3))

    whole, first, second = epoch(0, 1), epoch(0, 2), epoch(1, 2)
    assert sorted(c for batch in whole for c in batch) == list(range(chips))  # one permutation
    assert len(first) == len(second) == -(-len(whole) // 2)
    assert first == whole[0::2]
    assert second == whole[1::2] + ([whole[0]] if padded else [])
    calibration = TrainBatches(bank, rows, 2, 8, (1.0, 1.0), seed=3, shard=False)
    assert drawn(calibration) == whole  # every rank calibrates on the whole epoch


def test_validation_shards_cover_every_chip_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation chips split across ranks with none twice; a rank with no chip scores one empty batch."""
    bank = constant_bank(5)

    def chips_of(rank: int, world: int, rows: torch.Tensor) -> list[list[int]]:
        monkeypatch.setattr(data, "rank_and_world", lambda: (rank, world))
        batches = EvalBatches(bank, rows, 2, shard=True)
        assert len(batches) == len(list(batches))
        return drawn(batches)

    shares = [chips_of(rank, 2, torch.arange(5)) for rank in (0, 1)]
    assert sorted(c for share in shares for batch in share for c in batch) == list(range(5))
    assert chips_of(1, 2, torch.arange(1)) == [[]]
    monkeypatch.setattr(data, "rank_and_world", lambda: (1, 2))
    assert drawn(EvalBatches(bank, torch.arange(5), 2)) == [[0, 1], [2, 3], [4]]  # test sets: never sharded


def test_each_rank_keeps_its_chips_on_its_own_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under DDP on GPUs rank r's chip bank goes to cuda:r (LOCAL_RANK), not every rank's to the first GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert device_of("gpu") == torch.device("cuda", 1)
    assert device_of("cpu") == torch.device("cpu")
    monkeypatch.delenv("LOCAL_RANK")
    assert device_of("auto") == torch.device("cuda", 0)
