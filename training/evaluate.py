"""The `evaluate` stage: every model of one matrix entry on every source's whole test set.

Confusion matrices are accumulated over each test set and scored once (training.metrics). Writes
`<evaluate.out>/<entry>/metrics.parquet` (tidy: run, seed, test source, metric, value, provenance),
`confusion.parquet`, `chip_confusion.parquet` (every test chip's own counts, which the report's bootstrap
resamples) and `split_bias.parquet` (every `id` run also on its source's random test set, `subsets.random_test_size`:
what a random split would have reported beside the blocked test set's number).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import polars as pl
import torch

from curation.core.artifacts import (
    CHIP_CONFUSION,
    CONFUSION,
    EVAL_INDEX,
    EVAL_METRICS,
    MANIFEST,
    RUN_RECORD,
    SPLIT_BIAS,
    Artifacts,
)
from curation.core.errors import Problem, ProblemsError
from curation.core.io import atomic_write_json, atomic_write_parquet
from curation.core.legends import taxonomy_of
from curation.core.params import load_section
from curation.core.result_schemas import COMPUTED, SPLIT_BIAS_RUN_SCHEMA
from curation.core.runner import matrix_entry, output_option, run_stage
from curation.core.schemas import TEST_RANDOM
from curation.core.shared import SharedParams
from training.backbones import SPECTRAL
from training.config import BASE, EvaluateParams, TrainParams
from training.data import ChipBank, load_bank
from training.factory import device_of, task_factory
from training.metrics import chip_confusions, confusion_rows, scores
from training.plans import entry_name
from training.spectral import SpectralModel
from training.task import RETRAIN, CropTask, quiet_lightning

RECORD_KEYS = (
    "run_id", "protocol", "backbone", "target_source", "train_sources", "k", "seed", "crosswalk_set", "provenance"
)  # fmt: skip
CHIP_CONFUSION_COLUMNS = {
    "run_id": pl.String,
    "test_source": pl.String,
    "chip_id": pl.String,
    "target_class": pl.String,
    "predicted_class": pl.String,
    "pixels": pl.Int64,
}


def data_version(manifest_path: Path, subsets: pl.DataFrame) -> str:
    """sha256 of the chips' manifest file and the subsets table (as sorted CSV): the data a score comes from.

    Both are this stage's DVC deps, so a changed chip table or split re-runs it and changes the fingerprint.
    """
    digest = hashlib.sha256(manifest_path.read_bytes())
    digest.update(subsets.sort(subsets.columns).write_csv().encode())
    return digest.hexdigest()


SPLIT_BIAS_PROTOCOL = "id"  # the runs scored on their source's random test set too


def split_bias_rows(
    record: dict[str, Any], blocked: torch.Tensor, random: torch.Tensor, names: list[str]
) -> list[dict[str, Any]]:
    """One run's every metric on its blocked test set beside its random one (per-chip confusions of each)."""
    ours, theirs = scores(blocked.sum(dim=0), names), scores(random.sum(dim=0), names)
    head = {
        "run_id": record["run_id"],
        "backbone": record["backbone"],
        "target_source": record["target_source"],
        "k": int(record["k"]),
        "seed": int(record["seed"]),
        "balance": record.get("balance", BASE),
    }
    sizes = {"blocked_chips": len(blocked), "random_chips": len(random)}
    return [{**head, "metric": m, "blocked": v, "random": theirs[m], **sizes} for m, v in ours.items()]


class MissingRunsError(ProblemsError):
    """The entry has no trained runs to evaluate."""


def class_names(legends_dir: Path) -> list[str]:
    """Names by class id (ids the taxonomy skips get a placeholder, so the list indexes by id)."""
    return taxonomy_of(legends_dir).names_by_id


def predict(task: CropTask | SpectralModel, image: torch.Tensor, over_ignore: bool = False) -> torch.Tensor:
    """Class ids of a batch: the argmax over the real classes (ours), or over every class, `ignore` included.

    The study's argmax ran over all six outputs, so a pixel could be predicted `ignore`; it counts as wrong, and
    its torchmetrics AA (`aa_study`) scores the ignore class as one more zero-recall class.
    """
    if not over_ignore or isinstance(task, SpectralModel):  # the baseline models the real classes only
        return task.predict_classes(image)
    logits: torch.Tensor = task(image)
    return logits.argmax(dim=1)


@torch.no_grad()
def confusions(
    task: CropTask | SpectralModel,
    bank: ChipBank,
    test_rows: dict[str, torch.Tensor],
    batch_size: int,
    num_classes: int,
    over_ignore: bool = False,
) -> dict[str, torch.Tensor]:
    """Per test set, one confusion matrix per chip ([n, K, K], in `test_rows` order), from one batched pass.

    A test set's confusion matrix is their sum; the report's bootstrap resamples the chips.
    """
    task.eval()
    names = list(test_rows)
    rows = torch.cat([test_rows[name] for name in names])
    per_chip = torch.zeros(len(rows), num_classes, num_classes, dtype=torch.long, device=bank.device)
    for start in range(0, len(rows), batch_size):
        batch = bank.gather(rows[start : start + batch_size])
        predicted = predict(task, batch["image"], over_ignore)
        per_chip[start : start + len(predicted)] = chip_confusions(predicted, batch["mask"], num_classes)
    sizes = [len(test_rows[name]) for name in names]
    return {name: part.cpu() for name, part in zip(names, torch.split(per_chip, sizes), strict=True)}


def chip_rows(
    run_id: str, source: str, chip_ids: list[str], per_chip: torch.Tensor, names: list[str]
) -> list[dict[str, Any]]:
    """Tidy rows of every chip's non-zero confusion cells (the `chip_confusion` table)."""
    rows = []
    for chip_id, matrix in zip(chip_ids, per_chip, strict=True):
        head = {"run_id": run_id, "test_source": source, "chip_id": chip_id}
        rows += [{**head, **cell} for cell in confusion_rows(matrix, names)]
    return rows


def run_folders(runs: Path) -> list[Path]:
    """The runs of one train entry, in run-id order (a missing entry names the stage to run)."""
    folders = sorted(p for p in runs.glob("*/run.json")) if runs.is_dir() else []
    if not folders:
        raise MissingRunsError(
            "nothing to evaluate",
            [Problem(str(runs), "holds trained runs (<run_id>/run.json)", "none found", "run `dvc repro train` first")],
        )
    return [p.parent for p in folders]


def read_record(folder: Path, retrain: str) -> dict[str, Any]:
    """A run's run.json, with the keys evaluate reads (a truncated or foreign file names itself, not a KeyError)."""
    path = folder / RUN_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        detail = f"{type(error).__name__}: {error}"
    else:
        if not isinstance(record, dict):
            detail = f"a JSON {type(record).__name__}, not an object"
        else:
            provenance = record.get("provenance")
            provenance = provenance if isinstance(provenance, dict) else {}
            missing = [key for key in RECORD_KEYS if key not in record]
            missing += [f"provenance.{key}" for key in ("weights", "file") if key not in provenance]
            if not missing:
                return record
            detail = f"lacks {', '.join(missing)}"
    raise ProblemsError("unreadable run record", [Problem(str(path), "readable run record", detail, retrain)])


def evaluate_entry(
    params: EvaluateParams,
    train: TrainParams,
    shared: SharedParams,
    chips_root: Path,
    subsets: pl.DataFrame,
    runs: Path,
    out: Path,
    retrain: str = RETRAIN,
) -> pl.DataFrame:
    """Score every run of `runs` on every source's test set; writes metrics and confusion tables into `out`.

    `retrain` is the fix named when a run's record or checkpoint is missing, unreadable or for another model.
    """
    if train.threads:
        torch.set_num_threads(train.threads)
    names = class_names(shared.legends_dir)
    manifest = pl.read_parquet(chips_root / MANIFEST)
    version = data_version(chips_root / MANIFEST, subsets)
    tests = subsets.filter(pl.col("split") == "test").sort("source", "chip_id")
    randoms = subsets.filter(pl.col("split") == TEST_RANDOM).sort("source", "chip_id")
    device = device_of(train.accelerator)
    bank = load_bank(chips_root, manifest, [*tests["chip_id"], *randoms["chip_id"]]).to(device)
    test_ids = {
        source: tests.filter(pl.col("source") == source)["chip_id"].to_list()
        for source in sorted(tests["source"].unique().to_list())
    }
    test_rows = {source: bank.index(ids) for source, ids in test_ids.items()}
    random_rows = {
        source: bank.index(randoms.filter(pl.col("source") == source)["chip_id"].to_list())
        for source in sorted(randoms["source"].unique().to_list())
    }
    bias_rows: list[dict[str, Any]] = []
    build = task_factory(train, shared, len(names))
    networks: dict[tuple[str, int], CropTask] = {}
    metric_rows: list[dict[str, Any]] = []
    cells: list[dict[str, Any]] = []
    chip_cells: list[dict[str, Any]] = []
    for folder in run_folders(runs):
        record = read_record(folder, retrain)
        task: CropTask | SpectralModel
        licence = None
        if record["backbone"] == SPECTRAL:  # one model file (best and last are one)
            model, _ = SpectralModel.load(folder / f"{params.checkpoint}.json", retrain, bands=tuple(shared.bands))
            task = model.with_threads(train.threads or os.cpu_count() or 1)  # the same classes on every core
        else:
            key = (record["backbone"], int(record["seed"]))
            if key not in networks:  # one model per backbone and seed: a checkpoint replaces all a run trained
                torch.manual_seed(key[1])  # rebuilds the frozen encoder the run trained on (digest-checked)
                networks[key] = build(key[0]).to(device)
            network = networks[key]
            network.load_checkpoint(folder / f"{params.checkpoint}.pt", retrain)
            task = network
            if record["provenance"]["weights"] == "pretrained":
                licence = network.backbone_spec.licence
        provenance = record["provenance"]
        per_chip = confusions(task, bank, test_rows, params.batch_size, len(names), params.argmax_over_ignore)
        for source, chips in per_chip.items():
            confusion = chips.sum(dim=0)
            chip_cells += chip_rows(record["run_id"], source, test_ids[source], chips, names)
            base = {
                "run_id": record["run_id"],
                "protocol": record["protocol"],
                "backbone": record["backbone"],
                "target_source": record["target_source"],
                "train_sources": "+".join(record["train_sources"]),
                "k": int(record["k"]),
                "seed": int(record["seed"]),
                "balance": record.get("balance", BASE),  # runs before train.balance were all base runs
                "test_source": source,
            }
            tail = {
                "crosswalk_set": record["crosswalk_set"],
                "weights": provenance["weights"],
                "weights_file": provenance["file"],
                "weights_sha256": provenance["sha256"] if provenance["weights"] == "pretrained" else None,
                "weights_licence": licence,
                "data_version": version,
                "origin": COMPUTED,
            }
            metric_rows += [{**base, "metric": m, "value": v, **tail} for m, v in scores(confusion, names).items()]
            cells += [
                {"run_id": record["run_id"], "test_source": source, **c} for c in confusion_rows(confusion, names)
            ]
        target = record["target_source"]
        if record["protocol"] == SPLIT_BIAS_PROTOCOL and target in random_rows and target in per_chip:
            random_chips = confusions(
                task, bank, {target: random_rows[target]}, params.batch_size, len(names), params.argmax_over_ignore
            )[target]
            bias_rows += split_bias_rows(record, per_chip[target], random_chips, names)
        print(f"{record['run_id']}: evaluated on {len(test_rows)} test sets")
    nullable = {name: pl.Utf8 for name in ("weights_file", "weights_sha256", "weights_licence")}
    metrics = pl.DataFrame(metric_rows, schema_overrides={"k": pl.Int64, "value": pl.Float64, **nullable})
    metrics = metrics.with_columns(pl.col("seed").cast(pl.Int64))
    confusion_table = pl.DataFrame(cells, schema_overrides={"pixels": pl.Int64})
    chip_table = pl.DataFrame(chip_cells, schema=CHIP_CONFUSION_COLUMNS)
    atomic_write_parquet(out / EVAL_METRICS, metrics)
    atomic_write_parquet(out / CONFUSION, confusion_table)
    atomic_write_parquet(out / CHIP_CONFUSION, chip_table)
    bias_types = {name: column.dtype.type for name, column in SPLIT_BIAS_RUN_SCHEMA.columns.items()}
    atomic_write_parquet(out / SPLIT_BIAS, pl.DataFrame(bias_rows, schema=bias_types))
    atomic_write_json(out / EVAL_INDEX, {"entry": out.name, "runs": sorted({r["run_id"] for r in metric_rows})})
    return metrics


def _options(parser: argparse.ArgumentParser) -> None:
    output_option(parser)
    parser.add_argument("--runs", type=Path, default=None, help="train entry folder (default: <train.out>/<entry>)")


def _run(args: argparse.Namespace) -> str:
    quiet_lightning()
    artifacts = Artifacts.load(args.params)
    params = load_section(EvaluateParams, args.params)
    train = load_section(TrainParams, args.params)
    shared = load_section(SharedParams, args.params)
    subsets = pl.read_parquet(artifacts.subsets_table.path)
    entry = matrix_entry(args)
    name = entry_name(*entry)
    runs = args.runs or artifacts.runs.path / name
    retrain = f"re-run `dvc repro train@{'-'.join(map(str, entry))}` (it writes {runs})"
    out = args.out or artifacts.evals.path / name
    evaluate_entry(params, train, shared, artifacts.chips.path, subsets, runs, out, retrain)
    return ""


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point."""
    run_stage("evaluate", _run, argv, _options)


if __name__ == "__main__":
    main()
