"""A tiny fit in the default suite: train -> evaluate -> report on a generated world, with no network."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
import torch

from curation.core.artifacts import MANIFEST
from curation.core.failures import failures
from curation.core.legends import taxonomy_of
from curation.core.result_schemas import TRANSFER_SCHEMA
from curation.core.shared import SharedParams
from training.config import EvaluateParams, TrainParams
from training.data import ChipBank, load_bank
from training.evaluate import MissingRunsError, class_names, evaluate_entry, predict
from training.factory import task_factory
from training.fit import FitSettings, Fitter, PhaseResult
from training.plans import PhasePlan, RunPlan, plan_entry
from training.report import run_report
from training.train import run_entry, settings_of

from .conftest import train_section
from .world import SOURCES, make_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """Chips of three sources (10 per source, 32 px)."""
    root = tmp_path_factory.mktemp("chips")
    _, subsets = make_world(root)
    return root, subsets


def test_tiny_fit_trains_evaluates_and_reports(
    world: tuple[Path, pl.DataFrame], train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    """Every protocol on one backbone and one target; the transfer table covers every test set."""
    chips, subsets = world
    runs = tmp_path / "runs" / "entry"
    records = run_entry(train_params, shared_params, chips, subsets, ("all", "ssl4eo", "cdl", "all"), runs)
    assert [r["run_id"] for r in records] == [
        "id-ssl4eo-cdl-k2-s0",
        "id-ssl4eo-cdl-k4-s0",
        "ood-ssl4eo-cdl-k0-s0",
        "ood+k-ssl4eo-cdl-k2-s0",
        "ood+k-ssl4eo-cdl-k4-s0",
        "pretrain-finetune-ssl4eo-cdl-k2-s0",
        "pretrain-finetune-ssl4eo-cdl-k4-s0",
    ]
    record = json.loads((runs / "ood+k-ssl4eo-cdl-k4-s0" / "run.json").read_text())
    assert record["train_sources"] == list(SOURCES)
    assert record["provenance"]["weights"] == "random"  # allow_random_init, recorded
    phase = record["phases"][0]
    assert not set(phase["train_chips"]) & set(phase["val_chips"])
    assert len(phase["train_chips"]) + len(phase["val_chips"]) == 4 + 2 + 2  # k target + others_size per other
    assert [row["epoch"] for row in record["history"]] == [0]
    assert not list(runs.parent.glob(".*tmp"))  # staged, then renamed

    evals = tmp_path / "evals" / "entry"
    params = EvaluateParams(batch_size=8, checkpoint="best", argmax_over_ignore=False, out=tmp_path / "evals")
    metrics = evaluate_entry(params, train_params, shared_params, chips, subsets, runs, evals)
    assert set(metrics["test_source"]) == set(SOURCES)
    assert metrics.filter(pl.col("metric") == "oa")["value"].is_between(0, 1).all()
    names = class_names(shared_params.legends_dir)
    summary = run_report(tmp_path / "evals", tmp_path / "metrics", "miou", "miou", names)
    transfer = pl.read_parquet(tmp_path / "metrics" / "transfer.parquet")
    assert failures(transfer, TRANSFER_SCHEMA) == []
    assert len(transfer.select("run_id").unique()) == 7
    assert set(summary) == {"id", "ood", "ood+k", "pretrain-finetune"}


def test_fit_is_deterministic(
    world: tuple[Path, pl.DataFrame], train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    """Same chips, params and seed: byte-identical checkpoints (what DVC's cache relies on)."""
    chips, subsets = world
    for name in ("first", "second"):
        run_entry(train_params, shared_params, chips, subsets, ("id", "ssl4eo", "nccm", 2), tmp_path / name)
    for file in ("best.pt", "last.pt", "run.json"):
        first = (tmp_path / "first" / "id-ssl4eo-nccm-k2-s0" / file).read_bytes()
        assert first == (tmp_path / "second" / "id-ssl4eo-nccm-k2-s0" / file).read_bytes()


def test_seeds_repeat_a_run_on_the_same_chips_and_the_report_spans_them(
    world: tuple[Path, pl.DataFrame], shared_params: SharedParams, tmp_path: Path
) -> None:
    """Two seeds: two runs per cell with the same chips and different weights; per-chip counts sum to the test
    set's; the report's intervals count both seeds and its backbone-free entry has k comparisons."""
    chips, subsets = world
    params = TrainParams.model_validate(train_section(seeds=[0, 1]))
    runs = tmp_path / "runs" / "entry"
    records = run_entry(params, shared_params, chips, subsets, ("id", "ssl4eo", "nccm", "all"), runs)
    assert [r["run_id"] for r in records] == [f"id-ssl4eo-nccm-k{k}-s{s}" for k in (2, 4) for s in (0, 1)]
    first, second = (json.loads((runs / f"id-ssl4eo-nccm-k2-s{s}" / "run.json").read_text()) for s in (0, 1))
    assert (first["seed"], second["seed"]) == (0, 1)
    assert first["phases"] == second["phases"]  # the same chips: only training randomness differs
    files = [(runs / f"id-ssl4eo-nccm-k2-s{s}" / "best.pt").read_bytes() for s in (0, 1)]
    assert files[0] != files[1]  # another init of the decoder, other batches and crops
    evals = tmp_path / "evals" / "entry"
    evaluate = EvaluateParams(batch_size=8, checkpoint="best", argmax_over_ignore=False, out=tmp_path / "evals")
    metrics = evaluate_entry(evaluate, params, shared_params, chips, subsets, runs, evals)
    assert sorted(metrics["seed"].unique().to_list()) == [0, 1]
    per_chip = pl.read_parquet(evals / "chip_confusion.parquet")
    keys = ["run_id", "test_source", "target_class", "predicted_class"]
    summed = per_chip.group_by(keys).agg(pl.col("pixels").sum()).sort(keys)
    assert summed.equals(pl.read_parquet(evals / "confusion.parquet").sort(keys).select(summed.columns))
    names = class_names(shared_params.legends_dir)
    run_report(tmp_path / "evals", tmp_path / "metrics", "miou", "miou", names)
    spread = pl.read_parquet(tmp_path / "metrics" / "intervals.parquet")
    assert set(spread["seeds"].to_list()) == {2}
    own = spread.filter((pl.col("test_source") == "nccm") & (pl.col("metric") == "oa"))
    assert (own["ci_low"] <= own["mean"]).all() and (own["mean"] <= own["ci_high"]).all()
    paired = pl.read_parquet(tmp_path / "metrics" / "comparisons.parquet")
    assert set(paired["comparison"].to_list()) == {"k"}  # one backbone: sizes only
    assert paired.filter(pl.col("metric") == "oa").select("a", "b").rows() == [("2", "4")]


def test_the_spectral_baseline_trains_evaluates_and_reports_beside_the_unets(
    world: tuple[Path, pl.DataFrame], shared_params: SharedParams, tmp_path: Path
) -> None:
    """`spectral` runs every protocol on the same chips: one JSON model per run (last = best, one file), no
    weights recorded, a second phase adds trees; evaluate scores it with the same metrics; the report compares it
    with a U-Net as one more backbone. Training it twice gives the same bytes."""
    chips, subsets = world
    body = train_section(seeds=[0])
    body["spectral"] = {"pixels_per_class": 200, "trees": 5, "learning_rate": 0.3, "leaves": 7}
    params = TrainParams.model_validate(body)
    runs = tmp_path / "runs"
    records = run_entry(params, shared_params, chips, subsets, ("all", "spectral", "cdl", "all"), runs / "spectral")
    assert [r["run_id"] for r in records][:2] == ["id-spectral-cdl-k2-s0", "id-spectral-cdl-k4-s0"]
    assert len(records) == 7
    folder = runs / "spectral" / "pretrain-finetune-spectral-cdl-k4-s0"
    record = json.loads((folder / "run.json").read_text())
    assert record["provenance"] == {"weights": "none", "enum": "none", "file": None, "sha256": None}
    assert record["history"] == [{"trees": 10}]  # 5 trees per phase, two phases
    assert (folder / "best.json").stat().st_ino == (folder / "last.json").stat().st_ino
    again = tmp_path / "again"
    run_entry(params, shared_params, chips, subsets, ("id", "spectral", "cdl", 4), again)
    same = "id-spectral-cdl-k4-s0"
    assert (again / same / "best.json").read_bytes() == (runs / "spectral" / same / "best.json").read_bytes()

    run_entry(params, shared_params, chips, subsets, ("all", "ssl4eo", "cdl", "all"), runs / "ssl4eo")
    evaluate = EvaluateParams(batch_size=8, checkpoint="last", argmax_over_ignore=True, out=tmp_path / "evals")
    for entry in ("spectral", "ssl4eo"):
        evaluate_entry(evaluate, params, shared_params, chips, subsets, runs / entry, tmp_path / "evals" / entry)
    names = class_names(shared_params.legends_dir)
    run_report(tmp_path / "evals", tmp_path / "metrics", "miou", "miou", names)
    transfer = pl.read_parquet(tmp_path / "metrics" / "transfer.parquet")
    assert failures(transfer, TRANSFER_SCHEMA) == []
    spectral = transfer.filter(pl.col("backbone") == "spectral")
    assert set(spectral["weights"]) == {"none"} and spectral["weights_file"].is_null().all()
    assert set(spectral["test_source"]) == set(SOURCES)
    oa = spectral.filter(pl.col("metric") == "oa", pl.col("protocol") == "id", pl.col("test_source") == "cdl")
    assert oa["value"].is_between(0, 1).all() and oa["value"].max() > 0.3  # the world's classes differ in bands
    paired = pl.read_parquet(tmp_path / "metrics" / "comparisons.parquet")
    backbone = paired.filter(pl.col("comparison") == "backbone")
    assert set(zip(backbone["a"], backbone["b"], strict=True)) == {("spectral", "ssl4eo")}


def test_evaluate_without_runs_names_the_stage(
    world: tuple[Path, pl.DataFrame], train_params: TrainParams, shared_params: SharedParams, tmp_path: Path
) -> None:
    """An empty train entry is an error that says which stage to run."""
    chips, subsets = world
    params = EvaluateParams(batch_size=8, checkpoint="best", argmax_over_ignore=False, out=tmp_path)
    with pytest.raises(MissingRunsError, match="dvc repro train"):
        evaluate_entry(params, train_params, shared_params, chips, subsets, tmp_path / "none", tmp_path / "out")


class _Model:
    """Stands in for the U-Net: one weight, and the weight each phase started from."""

    def __init__(self) -> None:
        self.state = {"w": torch.tensor(0.0)}

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True) -> None:
        self.state = dict(state)


class _Task:
    frozen = False
    provenance = SimpleNamespace(weights="pretrained")
    criterion = SimpleNamespace()

    def __init__(self) -> None:
        self.model = _Model()

    def to(self, device: object) -> _Task:
        return self

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return dict(self.model.state)

    def zero_grad(self, set_to_none: bool = True) -> None:
        pass


def test_phases_hand_over_the_weights_handover_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each phase starts from the previous one's best or last weights; a memoized phase keeps its own last."""
    starts: list[float] = []

    def fake_phase(task: _Task, bank: object, phase: PhasePlan, number: int, settings: FitSettings) -> PhaseResult:
        start = float(task.model.state["w"])
        starts.append(start)
        return PhaseResult({"w": torch.tensor(start + 1)}, {"w": torch.tensor(start + 10)}, [], 0.5, 0)

    monkeypatch.setattr("training.fit.fit_phase", fake_phase)
    bank = ChipBank((), torch.zeros(0), torch.zeros(0))
    first, second = PhasePlan(("others",), ("nccm",), ("a",), (), 1), PhasePlan(("target",), ("cdl",), ("b",), (), 1)
    two = RunPlan("pf", "pretrain-finetune", "ssl4eo", "cdl", 2, (first, second))
    one = RunPlan("ood", "ood", "ssl4eo", "cdl", 0, (first,))
    for handover, handed in (("best", 1.0), ("last", 10.0)):
        starts.clear()
        settings = FitSettings(0, 4, 32, (1.0, 1.0), "cpu", 1, False, handover=handover)
        fitter = Fitter(lambda name: _Task(), settings)
        task, result = fitter.fit(two, bank)  # type: ignore[arg-type]
        assert starts == [0.0, handed]
        assert float(result.best["w"]) == handed + 1 and float(result.last["w"]) == handed + 10
        task, result = fitter.fit(one, bank)  # type: ignore[arg-type]
        assert starts == [0.0, handed]  # the ood phase is the memoized first phase: not fitted again
        assert (float(result.best["w"]), float(result.last["w"])) == (1.0, 10.0)  # its own best and last
        assert float(task.model.state["w"]) == handed


def test_study_settings_train_and_evaluate_the_last_epoch(
    world: tuple[Path, pl.DataFrame], shared_params: SharedParams, tmp_path: Path
) -> None:
    """Draws with replacement, kornia-ratio crops, a random split, the last epoch's weights tested, argmax over
    every class: a tiny run trains and evaluates from last.pt alone."""
    chips, subsets = world
    body = train_section(
        sampling="with_replacement", crop_ratio=[0.75, 4 / 3], crop_scale=[0.6, 1.0], val_split="random",
        val_share=0.25, handover="last", plateau_patience=1, others_size="all",
    )  # fmt: skip
    body["protocols"]["id"][0]["epochs"] = 2
    params = TrainParams.model_validate(body)
    runs = tmp_path / "runs"
    run_entry(params, shared_params, chips, subsets, ("id", "ssl4eo", "cdl", 4), runs)
    record = json.loads((runs / "id-ssl4eo-cdl-k4-s0" / "run.json").read_text())
    assert len(record["phases"][0]["val_chips"]) == 1 and len(record["history"]) == 2
    (runs / "id-ssl4eo-cdl-k4-s0" / "best.pt").unlink()
    evaluate = EvaluateParams(batch_size=8, checkpoint="last", argmax_over_ignore=True, out=tmp_path / "evals")
    metrics = evaluate_entry(evaluate, params, shared_params, chips, subsets, runs, tmp_path / "evals" / "e")
    assert metrics.filter(pl.col("metric") == "oa")["value"].is_between(0, 1).all()


def test_argmax_over_ignore_may_predict_class_0() -> None:
    """Ours never predicts `ignore`; the study's argmax over every class does where its logit is highest."""

    class Logits:
        def __call__(self, image: torch.Tensor) -> torch.Tensor:
            logits = torch.zeros(1, 6, 1, 2)
            logits[0, 0] = 5.0  # ignore wins both pixels
            logits[0, 3, 0, 0] = 1.0
            return logits

        def predict_classes(self, image: torch.Tensor) -> torch.Tensor:
            logits = self(image)
            logits[:, 0] = float("-inf")
            return logits.argmax(dim=1)

    task = Logits()
    assert predict(task, torch.zeros(1), over_ignore=True).tolist() == [[[0, 0]]]  # type: ignore[arg-type]
    assert predict(task, torch.zeros(1)).tolist() == [[[3, 1]]]  # type: ignore[arg-type]


def test_study_model_settings_train_and_evaluate_satlas_fpn(
    world: tuple[Path, pl.DataFrame], shared_params: SharedParams, tmp_path: Path
) -> None:
    """The study's Satlas model (backbone, FPN, upsampling, two-conv head) with its frozen backbone's BatchNorm
    left training: one tiny run of every study setting at once, evaluated from its checkpoint."""
    chips, subsets = world
    body = train_section(
        sampling="with_replacement", crop_ratio=[0.75, 4 / 3], crop_scale=[0.6, 1.0], val_split="random",
        val_share=0.25, handover="last", plateau_patience=1, others_size="all",
    )  # fmt: skip
    body["model"].update(satlas_architecture="satlas_fpn", frozen_batchnorm="train", encoder_depth=5)
    body["model"].update(decoder_channels=[16] * 5)
    params = TrainParams.model_validate(body)
    runs = tmp_path / "runs"
    run_entry(params, shared_params, chips, subsets, ("ood+k", "satlas", "cdl", 2), runs)
    record = json.loads((runs / "ood+k-satlas-cdl-k2-s0" / "run.json").read_text())
    assert record["registry_backbone"] == "satlas_fpn" and record["provenance"]["weights"] == "random"
    assert record["frozen_batchnorm"] == "train"
    assert record["settings"] == {
        "handover": "last", "sampling": "with_replacement", "val_split": "random", "pixel_balance": "none",
        "plateau_patience": 1, "class_weights": False,
    }  # fmt: skip
    evaluate = EvaluateParams(batch_size=8, checkpoint="last", argmax_over_ignore=True, out=tmp_path / "evals")
    metrics = evaluate_entry(evaluate, params, shared_params, chips, subsets, runs, tmp_path / "evals" / "e")
    assert set(metrics["test_source"]) == set(SOURCES)
    assert metrics.filter(pl.col("metric") == "oa")["value"].is_between(0, 1).all()


def test_a_reset_model_fits_as_a_freshly_built_one(
    world: tuple[Path, pl.DataFrame], shared_params: SharedParams
) -> None:
    """Runs of a process share one model per backbone and seed, reset between runs: a base run fitted after a
    loss-weights run (weighted loss, calibrated statistics, trained decoder) ends on the weights it gets alone."""
    chips, subsets = world
    params = TrainParams.model_validate(
        train_section(balance={"strategies": ["base", "loss-weights"], "protocols": "all"})
    )
    manifest = pl.read_parquet(chips / MANIFEST)
    plans = plan_entry(params, list(shared_params.sources), subsets, manifest, ("id", "ssl4eo", "cdl", 4))
    weighted = next(p for p in plans if p.balance == "loss-weights")
    base = next(p for p in plans if p.balance == "base")
    bank = load_bank(chips, manifest, sorted({c for p in plans for c in p.chip_ids()}))
    build = task_factory(params, shared_params, taxonomy_of(shared_params.legends_dir).size)

    def fitted(*order: RunPlan) -> dict[str, torch.Tensor]:
        fitter = Fitter(build, settings_of(params))
        for plan in order:
            task, result = fitter.fit(plan, bank)
        assert task.criterion.weight is None  # the base run's loss is unweighted
        return result.best

    alone, after = fitted(base), fitted(weighted, base)
    assert alone.keys() == after.keys()
    assert all(torch.equal(alone[key], after[key]) for key in alone)


def test_planned_runs_fit_a_shared_phase_once_and_keep_it_no_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve ood runs, then the twelve pretrain-finetune runs starting from them: each ood phase is fitted once
    (the memo of the last 8 phases fits every one again), and nothing stays in memory after its last use."""
    fitted: list[tuple[str, ...]] = []

    def fake_phase(task: _Task, bank: object, phase: PhasePlan, number: int, settings: FitSettings) -> PhaseResult:
        fitted.append(phase.train_ids)
        return PhaseResult({"w": torch.tensor(1.0)}, {"w": torch.tensor(2.0)}, [], 0.5, 0)

    monkeypatch.setattr("training.fit.fit_phase", fake_phase)
    bank = ChipBank((), torch.zeros(0), torch.zeros(0))
    targets = [f"t{n}" for n in range(12)]
    ood = {t: PhasePlan(("others",), ("x",), (f"others-of-{t}",), (), 1) for t in targets}
    plans = [RunPlan(f"ood-{t}", "ood", "ssl4eo", t, 0, (ood[t],)) for t in targets]
    plans += [
        RunPlan(f"pf-{t}", "pretrain-finetune", "ssl4eo", t, 2, (ood[t], PhasePlan(("target",), (t,), (t,), (), 1)))
        for t in targets
    ]
    settings = FitSettings(0, 4, 32, (1.0, 1.0), "cpu", 1, False)
    for planned, expected in ((True, 24), (False, 36)):
        fitted.clear()
        fitter = Fitter(lambda name: _Task(), settings)
        if planned:
            fitter.expect(plans)
        for plan in plans:
            fitter.fit(plan, bank)  # type: ignore[arg-type]
        assert len(fitted) == expected
        assert not fitter.memo if planned else len(fitter.memo) == 8
