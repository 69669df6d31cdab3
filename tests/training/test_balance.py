"""Class-balance strategies (`train.balance`): the chip sampler, planning, the params' rules, and the report's
measurement of each strategy against base on the same chips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from pydantic import ValidationError

from curation.core.failures import failures
from curation.core.result_schemas import TRANSFER_SCHEMA
from curation.core.shared import SharedParams
from training.config import EvaluateParams, TrainParams
from training.data import ChipBank, TrainBatches, balanced_chip_weights, chip_class_pixels
from training.evaluate import class_names, evaluate_entry
from training.intervals import COMPARISONS_SCHEMA, BootstrapSettings, balance_effects, comparisons
from training.plans import plan_entry, run_name, strategies_of
from training.report import run_report
from training.train import run_entry

from .conftest import train_section
from .test_intervals import CLASSES, chip_counts, chip_rows, chips_frame
from .test_plans import FIVE, pool_tables
from .world import make_world

STRATEGIES = {"strategies": ["base", "loss-weights", "chip-sampler", "pixel-budget"], "protocols": "all"}


def bank_of(labels: np.ndarray) -> ChipBank:
    """A bank of chips with these labels (images: zeros)."""
    count, side = labels.shape[0], labels.shape[1]
    images = torch.zeros((count, 2, side, side), dtype=torch.int16)
    return ChipBank(tuple(f"c{i}" for i in range(count)), images, torch.from_numpy(labels.astype(np.uint8)))


def skewed_bank() -> ChipBank:
    """Nine chips of `other` (class 5) only, one chip half rice (class 3): rice is 1/19 of the pixels."""
    labels = np.full((10, 4, 4), 5)
    labels[9, :2] = 3
    return bank_of(labels)


def test_chip_class_pixels_are_each_chips_label_counts() -> None:
    bank = skewed_bank()
    counts = chip_class_pixels(bank, torch.arange(10), 6)
    assert counts.shape == (10, 6)
    assert counts[9].tolist() == [0, 0, 0, 8, 0, 8] and counts[0].tolist() == [0, 0, 0, 0, 0, 16]
    for row in range(10):  # the manifest's px_<class> columns count the same label file
        assert counts[row].tolist() == np.bincount(bank.labels[row].flatten().numpy(), minlength=6).tolist()


def test_weights_give_every_present_class_the_same_total() -> None:
    counts = chip_class_pixels(skewed_bank(), torch.arange(10), 6)
    weights = balanced_chip_weights(counts)
    assert weights[9] == pytest.approx(1.0 + 8 / 152)  # all of rice, 8 of other's 152 pixels
    assert weights[:9].sum() == pytest.approx(144 / 152)
    assert weights.sum() == pytest.approx(2.0)  # two classes present, one unit each
    ignore_only = torch.zeros((3, 6), dtype=torch.long)
    ignore_only[:, 0] = 16
    assert balanced_chip_weights(ignore_only).tolist() == [1.0, 1.0, 1.0]  # nothing labelled: uniform


def test_class_balanced_sampler_draws_the_rare_chip_about_half_the_time() -> None:
    bank = skewed_bank()
    rows = torch.arange(10)
    draws = 0
    batches = TrainBatches(bank, rows, 10, 4, (1.0, 1.0), seed=3, sampling="class_balanced", num_classes=6)
    uniform = TrainBatches(bank, rows, 10, 4, (1.0, 1.0), seed=3, sampling="with_replacement")
    rare = {"balanced": 0, "uniform": 0}
    for name, epochs in (("balanced", batches), ("uniform", uniform)):
        for _ in range(100):
            for batch in epochs:
                rare[name] += int((batch["mask"] == 3).any(dim=(1, 2)).sum())
                draws += len(batch["mask"]) if name == "balanced" else 0
    assert draws == 1000
    assert 0.40 < rare["balanced"] / 1000 < 0.65  # about 1.05 / 2: the rice chip carries rice's whole unit
    assert rare["uniform"] / 1000 < 0.2  # uniform draws: about 1 in 10 (crops may miss the rice half)
    again = TrainBatches(bank, rows, 10, 4, (1.0, 1.0), seed=3, sampling="class_balanced", num_classes=6)
    assert torch.equal(next(iter(again))["mask"], next(iter(TrainBatches(
        bank, rows, 10, 4, (1.0, 1.0), seed=3, sampling="class_balanced", num_classes=6
    )))["mask"])  # fmt: skip
    with pytest.raises(ValueError, match="num_classes"):
        TrainBatches(bank, rows, 10, 4, (1.0, 1.0), seed=3, sampling="class_balanced")


def test_balance_params_rules() -> None:
    TrainParams.model_validate(train_section(balance=STRATEGIES))
    for bad, message in (
        ({"strategies": ["chip-sampler"], "protocols": "all"}, "base` first"),
        ({"strategies": ["base", "base"], "protocols": "all"}, "distinct"),
        ({"strategies": ["base", "resample"], "protocols": "all"}, "resample"),
        ({"strategies": ["base"], "protocols": ["idd"]}, "idd"),
    ):
        with pytest.raises(ValidationError, match=message):
            TrainParams.model_validate(train_section(balance=bad))
    with pytest.raises(ValidationError, match="already do"):
        TrainParams.model_validate(train_section(balance=STRATEGIES, pixel_balance="study"))
    with pytest.raises(ValidationError, match="already do"):
        TrainParams.model_validate(train_section(balance=STRATEGIES, sampling="class_balanced"))


def test_strategies_repeat_runs_only_where_they_change_something() -> None:
    params = TrainParams.model_validate(train_section(balance=STRATEGIES))
    assert strategies_of(params, "id", "ssl4eo") == ["base", "loss-weights", "chip-sampler"]  # no others pool
    assert strategies_of(params, "ood", "ssl4eo") == ["base", "loss-weights", "chip-sampler", "pixel-budget"]
    assert strategies_of(params, "ood", "spectral") == ["base", "pixel-budget"]  # it samples pixels per class
    listed = TrainParams.model_validate(train_section(balance={**STRATEGIES, "protocols": ["ood"]}))
    assert strategies_of(listed, "id", "ssl4eo") == ["base"]
    assert run_name("ood", "ssl4eo", "cdl", 0, 1) == "ood-ssl4eo-cdl-k0-s1"  # base ids as before
    assert run_name("ood", "ssl4eo", "cdl", 0, 1, "pixel-budget") == "ood-ssl4eo-cdl-k0-pixel-budget-s1"


def test_pixel_budget_strategy_cuts_the_others_as_the_study_setting_does() -> None:
    manifest, subsets = pool_tables()
    body = train_section(sizes=[2, 4], others_size="all", val_share=0.0, balance=STRATEGIES)
    plans = plan_entry(TrainParams.model_validate(body), FIVE, subsets, manifest, ("ood", "ssl4eo", "cdl", 0))
    by = {p.balance: p for p in plans}
    assert list(by) == ["base", "loss-weights", "chip-sampler", "pixel-budget"]
    assert by["loss-weights"].phases == by["base"].phases == by["chip-sampler"].phases  # same chips
    study = TrainParams.model_validate(train_section(sizes=[2, 4], others_size="all", val_share=0.0,
                                                     pixel_balance="study"))  # fmt: skip
    (cut,) = plan_entry(study, FIVE, subsets, manifest, ("ood", "ssl4eo", "cdl", 0))
    assert by["pixel-budget"].phases == cut.phases != by["base"].phases


def test_balance_comparisons_pair_each_strategy_with_base_only() -> None:
    rng = np.random.default_rng(3)
    rows: list[tuple[object, ...]] = []
    runs = []
    for balance, accuracy in (("base", 0.6), ("chip-sampler", 0.9), ("loss-weights", 0.6)):
        for backbone in ("ssl4eo", "satlas"):
            run_id = run_name("id", backbone, "cdl", 4, 0, balance)
            runs.append((run_id, "id", backbone, "cdl", 4, 0, balance))
            rows += chip_rows(run_id, "cdl", chip_counts(rng, 30, accuracy))
    columns = {"run_id": pl.String, "protocol": pl.String, "backbone": pl.String, "target_source": pl.String,
               "k": pl.Int64, "seed": pl.Int64, "balance": pl.String}  # fmt: skip
    frame = pl.DataFrame(runs, schema=columns, orient="row")
    settings = BootstrapSettings(resamples=200)
    effects = balance_effects(chips_frame(rows), frame, CLASSES, settings)
    assert failures(effects, COMPARISONS_SCHEMA) == []
    assert set(effects["a"]) == {"base"} and set(effects["b"]) == {"chip-sampler", "loss-weights"}
    assert set(effects["metric"]) == {"aa", *(f"recall_{c}" for c in CLASSES[1:])}
    better = effects.filter((pl.col("b") == "chip-sampler") & (pl.col("metric") == "aa"))
    assert better.height == 2 and better["supported"].all() and (better["difference"] > 0.2).all()
    paired = comparisons(chips_frame(rows), frame, CLASSES, settings)
    backbones = paired.filter(pl.col("comparison") == "backbone")
    assert sorted(backbones["balance"].unique()) == ["base", "chip-sampler", "loss-weights"]  # within a strategy
    assert backbones.height == 3 * 3  # one pair per strategy and metric


def test_strategies_train_evaluate_and_report_end_to_end(shared_params: SharedParams, tmp_path: Path) -> None:
    """id runs under base, loss weights and the chip sampler; the report measures both against base."""
    chips = tmp_path / "chips"
    _, subsets = make_world(chips)
    balance = {"strategies": ["base", "loss-weights", "chip-sampler"], "protocols": ["id"]}
    params = TrainParams.model_validate(train_section(balance=balance))
    runs = tmp_path / "runs" / "entry"
    records = run_entry(params, shared_params, chips, subsets, ("id", "ssl4eo", "cdl", 4), runs)
    assert [(r["run_id"], r["balance"]) for r in records] == [
        ("id-ssl4eo-cdl-k4-s0", "base"),
        ("id-ssl4eo-cdl-k4-loss-weights-s0", "loss-weights"),
        ("id-ssl4eo-cdl-k4-chip-sampler-s0", "chip-sampler"),
    ]
    settings = {r["balance"]: json.loads((runs / r["run_id"] / "run.json").read_text())["settings"] for r in records}
    assert settings["loss-weights"]["class_weights"] and not settings["base"]["class_weights"]
    assert settings["chip-sampler"]["sampling"] == "class_balanced" != settings["base"]["sampling"]
    losses = {json.loads((runs / r["run_id"] / "run.json").read_text())["history"][-1]["train_loss"] for r in records}
    assert len(losses) == 3  # each strategy trained its own model from the same start
    evaluate = EvaluateParams(batch_size=8, checkpoint="best", argmax_over_ignore=False, out=tmp_path / "evals")
    evaluate_entry(evaluate, params, shared_params, chips, subsets, runs, tmp_path / "evals" / "entry")
    names = class_names(shared_params.legends_dir)
    summary = run_report(tmp_path / "evals", tmp_path / "metrics", "miou", "miou", names)
    transfer = pl.read_parquet(tmp_path / "metrics" / "transfer.parquet")
    assert failures(transfer, TRANSFER_SCHEMA) == []
    assert sorted(transfer["balance"].unique()) == ["base", "chip-sampler", "loss-weights"]
    assert transfer["origin"].unique().to_list() == ["computed"]
    assert transfer["data_version"].n_unique() == 1 and transfer["weights_sha256"].is_null().all()  # random init
    assert summary["id"]["ssl4eo"]["runs"] == 1  # the summary holds base runs only
    effects = pl.read_parquet(tmp_path / "metrics" / "balance.parquet")
    assert failures(effects, COMPARISONS_SCHEMA) == []
    assert sorted(effects["b"].unique()) == ["chip-sampler", "loss-weights"] and set(effects["k"]) == {4}
    assert "recall_maize" in set(effects["metric"]) and "aa" in set(effects["metric"])
