"""The `train` stage: fine-tune the registry's backbones on the subsets, one matrix entry per call.

Writes `<train.out>/<protocol>_<backbone>_<source>_<size>/<run_id>/{best.pt,last.pt,run.json}` and `runs.json`
beside them. The entry's chips are read once into memory (on the GPU when there is one); every run of the entry
trains from them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import torch

from curation.crosswalks import load_taxonomy
from curation.errors import CropharmonyError, report_and_exit
from curation.io import atomic_write_json, default_mode
from curation.params import DEFAULT_PARAMS, ChipsParams, SharedParams, SubsetsParams, load_section
from training.backbones import get_backbone
from training.config import TrainParams
from training.data import ChipBank, load_bank
from training.fit import FitResult, FitSettings, Fitter
from training.plans import RunPlan, entry_name, plan_entry
from training.task import CropTask, quiet_lightning

STAGE = "train"


def device_of(accelerator: str) -> torch.device:
    """Where the chips live: the GPU when Lightning will train there."""
    if accelerator in ("gpu", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def task_factory(params: TrainParams, shared: SharedParams, num_classes: int) -> Any:  # noqa: ANN401 - a closure
    """Backbone name -> a freshly built CropTask under these params."""

    def build(name: str) -> CropTask:
        return CropTask(
            backbone_spec=get_backbone(name, params.model.imagenet_input),
            file_bands=tuple(shared.bands),
            num_classes=num_classes,
            decoder_channels=params.model.decoder_channels,
            frozen_encoder=params.model.frozen_encoder,
            lr=params.lr,
            weight_decay=params.weight_decay,
            patience=params.plateau_patience,
            weights_dir=params.weights_dir,
            allow_random_init=params.allow_random_init,
        )

    return build


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
    )


def same_state(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    """Whether two state dicts hold equal tensors under equal names."""
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def run_record(plan: RunPlan, task: CropTask, result: FitResult, crosswalk_set: str) -> dict[str, Any]:
    """Everything evaluate and report need to know about a run, as JSON."""
    return {
        "run_id": plan.run_id,
        "protocol": plan.protocol,
        "backbone": plan.backbone,
        "registry_backbone": task.backbone_spec.name,
        "target_source": plan.target,
        "k": plan.k,
        "train_sources": list(plan.train_sources),
        "crosswalk_set": crosswalk_set,
        "provenance": task.provenance.as_dict(),
        "frozen_encoder": task.frozen,
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
        "best_epoch": result.best_epoch,
        "best_loss": round(result.best_loss, 6),
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
    manifest = pl.read_parquet(chips_root / "manifest.parquet")
    taxonomy = load_taxonomy(shared.legends_dir / "target.csv")
    plans = plan_entry(params, list(shared.sources), subsets, manifest, entry)
    bank: ChipBank = load_bank(chips_root, manifest, sorted({c for p in plans for c in p.chip_ids()}))
    bank = bank.to(device_of(params.accelerator))
    fitter = Fitter(task_factory(params, shared, taxonomy.size), settings_of(params))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    records = []
    try:
        staging.chmod(default_mode() | 0o111)
        for plan in plans:
            task, result = fitter.fit(plan, bank)
            record = run_record(plan, task, result, shared.crosswalk_set)
            folder = staging / plan.run_id
            meta = {"run_id": plan.run_id, "provenance": task.provenance.as_dict()}
            task.save_checkpoint(folder / "best.pt", meta)
            if same_state(result.best, result.last):  # best is the last epoch: one file, two names
                os.link(folder / "best.pt", folder / "last.pt")
            else:
                task.model.load_state_dict(result.last, strict=False)
                task.save_checkpoint(folder / "last.pt", meta)
            atomic_write_json(folder / "run.json", record)
            records.append({k: record[k] for k in ("run_id", "protocol", "backbone", "target_source", "k")})
            print(
                f"{plan.run_id}: best loss {result.best_loss:.4f} at epoch {result.best_epoch} ({result.seconds:.1f} s)"
            )
        atomic_write_json(staging / "runs.json", {"entry": out.name, "runs": records})
        if out.exists():
            shutil.rmtree(out)
        staging.replace(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return records


def parse_entry(args: argparse.Namespace) -> tuple[str, str, str, str | int]:
    """The matrix entry of the command line (`all` or a value per axis)."""
    size: str | int = args.size if args.size == "all" else int(args.size)
    return (args.protocol, args.backbone, args.source, size)


def entry_parser(description: str | None) -> argparse.ArgumentParser:
    """Arguments shared by `train` and `evaluate`: one matrix entry and the params file."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default="all", help="a protocol of train.protocols, or all")
    parser.add_argument("--backbone", default="all", help="ssl4eo, satlas, imagenet, or all")
    parser.add_argument("--source", default="all", help="a source of shared.sources, or all")
    parser.add_argument("--size", default="all", help="k target chips (0 for protocols without), or all")
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <out>/<entry>)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point."""
    args = entry_parser(__doc__).parse_args(argv)
    quiet_lightning()
    try:
        params = load_section(TrainParams, args.params)
        shared = load_section(SharedParams, args.params)
        chips = load_section(ChipsParams, args.params)
        subsets_params = load_section(SubsetsParams, args.params)
        entry = parse_entry(args)
        subsets = pl.read_parquet(subsets_params.out / "subsets.parquet")
        out = args.out or params.out / entry_name(*entry)
        run_entry(params, shared, chips.out, subsets, entry, out)
    except CropharmonyError as error:
        report_and_exit(error)


if __name__ == "__main__":
    main()
