"""The `train` stage: fine-tune the registry's backbones on the subsets, one matrix entry per call.

Writes `<train.out>/<protocol>_<backbone>_<source>_<size>/<run_id>/{best.pt,last.pt,run.json}` and `runs.json`
beside them. The entry's chips are read once into memory (on the GPU when there is one); every run of the entry
trains from them.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import polars as pl
import torch

from curation.core.artifacts import MANIFEST, RUN_RECORD, RUNS_INDEX, Artifacts
from curation.core.io import atomic_write_json, stage_output
from curation.core.legends import taxonomy_of
from curation.core.params import load_section
from curation.core.runner import matrix_entry, output_option, run_stage
from curation.core.shared import SharedParams
from training import distributed
from training.backbones import SPECTRAL
from training.config import TrainParams
from training.data import ChipBank, load_bank
from training.factory import device_of, task_factory
from training.fit import FitResult, FitSettings, Fitter
from training.plans import RunPlan, entry_name, plan_entry
from training.spectral import SpectralModel, SpectralSettings
from training.task import CropTask, quiet_lightning

SPECTRAL_FILE = "best.json"  # the spectral baseline's one model (no validation choice: best is last, linked)
RECORD_INDEX_KEYS = ("run_id", "protocol", "backbone", "target_source", "k", "seed", "balance")
NO_WEIGHTS = {"weights": "none", "enum": "none", "file": None, "sha256": None}  # spectral's provenance


def settings_of(params: TrainParams, accelerator: str | None = None) -> FitSettings:
    """The fit settings of the train params."""
    return FitSettings(
        seed=params.seed,
        batch_size=params.batch_size,
        crop_px=params.crop_px,
        crop_scale=params.crop_scale,
        accelerator=accelerator or params.accelerator,
        devices=params.devices,
        class_weights=params.model.class_weights,
        crop_ratio=params.crop_ratio,
        sampling=params.sampling,
        handover=params.handover,
        precision=params.precision,
    )


def same_state(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    """Whether two state dicts hold equal tensors under equal names."""
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


STUDY_SETTINGS = ("handover", "sampling", "val_split", "pixel_balance", "plateau_patience")
"""Train params where the study and we differ (docs/study-fidelity.md), recorded with every run."""


def spectral_settings(params: TrainParams, seed: int) -> SpectralSettings:
    """The spectral baseline's settings for one repeat (its seed draws the pixels and seeds LightGBM)."""
    s = params.spectral
    return SpectralSettings(
        pixels_per_class=s.pixels_per_class,
        trees=s.trees,
        learning_rate=s.learning_rate,
        leaves=s.leaves,
        seed=seed,
        threads=params.threads or 1,
    )


def fit_spectral(
    plan: RunPlan, bank: ChipBank, params: TrainParams, shared: SharedParams, num_classes: int, folder: Path
) -> FitResult:
    """Fit the spectral baseline on the plan's phases and write its model (best.json, last.json its link)."""
    started = time.perf_counter()
    seed = params.seed if plan.seed is None else plan.seed
    phases = [bank.index(phase.train_ids) for phase in plan.phases]
    model = SpectralModel.fit(bank, phases, num_classes, tuple(shared.bands), spectral_settings(params, seed))
    model.save(folder / SPECTRAL_FILE, {"run_id": plan.run_id, "provenance": NO_WEIGHTS})
    os.link(folder / SPECTRAL_FILE, folder / "last.json")
    return FitResult(best={}, last={}, history=[{"trees": model.rounds}], seconds=time.perf_counter() - started)


def effective_settings(params: TrainParams, balance: str) -> dict[str, Any]:
    """The study-relevant settings a run trained under, its balance strategy applied (`training.fit.balanced`)."""
    settings: dict[str, Any] = {name: getattr(params, name) for name in STUDY_SETTINGS}
    settings["class_weights"] = params.model.class_weights or balance == "loss-weights"
    if balance == "chip-sampler":
        settings["sampling"] = "class_balanced"
    if balance == "pixel-budget":
        settings["pixel_balance"] = "study"
    return settings


def run_record(
    plan: RunPlan, task: CropTask | None, result: FitResult, crosswalk_set: str, params: TrainParams
) -> dict[str, Any]:
    """Everything evaluate and report need to know about a run, as JSON, with the settings it ran under.

    `task` None: the spectral baseline (no network: no weights, nothing frozen, no epochs; its history holds the
    number of trees).
    """
    return {
        "run_id": plan.run_id,
        "protocol": plan.protocol,
        "backbone": plan.backbone,
        "registry_backbone": plan.backbone if task is None else task.backbone_spec.name,
        "target_source": plan.target,
        "k": plan.k,
        "seed": params.seed if plan.seed is None else plan.seed,
        "balance": plan.balance,
        "train_sources": list(plan.train_sources),
        "crosswalk_set": crosswalk_set,
        "provenance": NO_WEIGHTS if task is None else task.provenance.as_dict(),
        "frozen_encoder": None if task is None else task.frozen,
        "frozen_batchnorm": None if task is None else task.frozen_batchnorm,
        "devices": 1 if task is None else params.devices,  # DDP ranks the run trained on (the spectral model: one)
        "settings": effective_settings(params, plan.balance),
        "phases": [
            {
                "train_on": list(p.train_on),
                "sources": list(p.sources),
                "epochs": p.epochs,
                "train_chips": list(p.train_ids),
                "val_chips": list(p.val_ids),
            }
            for p in plan.phases
        ],
        "best_epoch": None if task is None else result.best_epoch,
        "best_loss": None if task is None else round(result.best_loss, 6),
        "history": [{k: round(v, 6) if isinstance(v, float) else v for k, v in row.items()} for row in result.history],
    }


def run_entry(
    params: TrainParams,
    shared: SharedParams,
    chips_root: Path,
    subsets: pl.DataFrame,
    entry: tuple[str, str, str, str | int],
    out: Path,
) -> list[dict[str, Any]]:
    """Plan, fit and write every run of one matrix entry into `out` (replaced atomically)."""
    if params.threads:
        torch.set_num_threads(params.threads)
    manifest = pl.read_parquet(chips_root / MANIFEST)
    taxonomy = taxonomy_of(shared.legends_dir)
    plans = plan_entry(params, list(shared.sources), subsets, manifest, entry)
    bank: ChipBank = load_bank(chips_root, manifest, sorted({c for p in plans for c in p.chip_ids()}))
    bank = bank.to(device_of(params.accelerator))
    fitter = Fitter(task_factory(params, shared, taxonomy.size), settings_of(params))
    fitter.expect([plan for plan in plans if plan.backbone != SPECTRAL])
    records: list[dict[str, Any]] = []
    if not distributed.is_main():  # another DDP rank: the same fits, in the same order, and nothing written
        for plan in plans:
            if plan.backbone != SPECTRAL:  # the spectral baseline is no collective: the main rank fits it alone
                fitter.fit(plan, bank)
        distributed.finish()
        return records
    with stage_output(out) as staging:
        for plan in plans:
            folder = staging / plan.run_id
            if plan.backbone == SPECTRAL:
                folder.mkdir(parents=True)
                result = fit_spectral(plan, bank, params, shared, taxonomy.size, folder)
                record = run_record(plan, None, result, shared.crosswalk_set, params)
                atomic_write_json(folder / RUN_RECORD, record)
                records.append({k: record[k] for k in RECORD_INDEX_KEYS})
                print(f"{plan.run_id}: {result.history[0]['trees']} trees ({result.seconds:.1f} s)")
                continue
            task, result = fitter.fit(plan, bank)
            record = run_record(plan, task, result, shared.crosswalk_set, params)
            meta = {"run_id": plan.run_id, "provenance": task.provenance.as_dict()}
            task.model.load_state_dict(result.best, strict=False)  # the task is on the handed-over weights
            task.save_checkpoint(folder / "best.pt", meta)
            if same_state(result.best, result.last):  # best is the last epoch: one file, two names
                os.link(folder / "best.pt", folder / "last.pt")
            else:
                task.model.load_state_dict(result.last, strict=False)
                task.save_checkpoint(folder / "last.pt", meta)
            atomic_write_json(folder / RUN_RECORD, record)
            records.append({k: record[k] for k in RECORD_INDEX_KEYS})
            print(
                f"{plan.run_id}: best loss {result.best_loss:.4f} at epoch {result.best_epoch} ({result.seconds:.1f} s)"
            )
        atomic_write_json(staging / RUNS_INDEX, {"entry": out.name, "runs": records})
        distributed.finish()  # every rank done before the output is renamed into place
    return records


def _run(args: argparse.Namespace) -> str:
    quiet_lightning()
    artifacts = Artifacts.load(args.params)
    params = load_section(TrainParams, args.params)
    shared = load_section(SharedParams, args.params)
    entry = matrix_entry(args)
    subsets = pl.read_parquet(artifacts.subsets_table.path)
    out = args.out or artifacts.runs.path / entry_name(*entry)
    run_entry(params, shared, artifacts.chips.path, subsets, entry, out)
    return ""


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point."""
    run_stage("train", _run, argv, output_option)


if __name__ == "__main__":
    main()
