"""Fit one planned run: its phases in order on in-memory batches, tracking the best and last weights.

Each phase ends on its best weights (lowest validation loss, or training loss without validation chips) and the
next phase starts from them. Phases shared by runs (the `ood` phase that `pretrain-finetune` starts with) are fitted
once per process and reused: the same chips, epochs and seed give the same weights.
"""

from __future__ import annotations

import copy
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import lightning
import torch
from lightning.pytorch.callbacks import Callback

from training.data import ChipBank, EvalBatches, TrainBatches, class_pixels
from training.plans import PhasePlan, RunPlan
from training.task import CropTask


@dataclass(frozen=True)
class FitSettings:
    """The training params a fit needs (from params `train`)."""

    seed: int
    batch_size: int
    crop_px: int
    crop_scale: tuple[float, float]
    accelerator: str
    devices: int
    class_weights: bool


@dataclass
class FitResult:
    """A fitted run: its best and last trainable state, and what happened."""

    best: dict[str, torch.Tensor]
    last: dict[str, torch.Tensor]
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    best_loss: float = math.inf
    seconds: float = 0.0


class _Tracker(Callback):
    """Keeps the best weights in memory and records one history row per epoch."""

    def __init__(self, phase: int, monitor: str) -> None:
        self.phase = phase
        self.monitor = monitor
        self.best: dict[str, torch.Tensor] | None = None
        self.best_loss = math.inf
        self.best_epoch = -1
        self.history: list[dict[str, Any]] = []

    def on_train_epoch_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        assert isinstance(pl_module, CropTask)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        row = {"phase": self.phase, "epoch": trainer.current_epoch, **metrics}
        row["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        self.history.append(row)
        loss = metrics.get(self.monitor, math.inf)
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, trainer.current_epoch
            self.best = pl_module.trainable_state()


def _trainer(settings: FitSettings, epochs: int, tracker: _Tracker) -> lightning.Trainer:
    return lightning.Trainer(
        max_epochs=epochs,
        accelerator=settings.accelerator,
        devices=settings.devices,
        strategy="ddp" if settings.devices > 1 else "auto",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[tracker],
    )


def class_weights(bank: ChipBank, rows: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights over the training pixels (ignore and absent classes weigh 0), mean 1."""
    pixels = class_pixels(bank, rows, num_classes).float()
    pixels[0] = 0
    weights = torch.where(pixels > 0, 1.0 / pixels.clamp(min=1), torch.zeros_like(pixels))
    present = weights > 0
    return weights / weights[present].mean() if present.any() else torch.ones(num_classes)


def fit_phase(
    task: CropTask, bank: ChipBank, phase: PhasePlan, number: int, settings: FitSettings
) -> tuple[_Tracker, dict[str, torch.Tensor]]:
    """Train one phase; the task ends on the phase's best weights. Returns the tracker and the last weights."""
    lightning.seed_everything(settings.seed + number, workers=False, verbose=False)
    train_rows = bank.index(phase.train_ids)
    if settings.class_weights:
        task.criterion.weight = class_weights(bank, train_rows, task.hparams["num_classes"]).to(bank.device)
    batches = TrainBatches(
        bank, train_rows, settings.batch_size, settings.crop_px, settings.crop_scale, settings.seed + number
    )
    val = EvalBatches(bank, bank.index(phase.val_ids), settings.batch_size) if phase.val_ids else None
    task.monitor = "val_loss" if val is not None else "train_loss"
    tracker = _Tracker(number, task.monitor)
    _trainer(settings, phase.epochs, tracker).fit(task, train_dataloaders=batches, val_dataloaders=val)
    last = task.trainable_state()
    if tracker.best is not None:
        task.model.load_state_dict(tracker.best, strict=False)
    return tracker, last


class Fitter:
    """Fits runs in one process, reusing pristine models per backbone and phases shared between runs."""

    def __init__(self, build: Any, settings: FitSettings, memo_size: int = 8) -> None:  # noqa: ANN401 - a factory
        self.build = build  # backbone name -> freshly built CropTask (seeded)
        self.settings = settings
        self.pristine: dict[str, CropTask] = {}
        self.memo: OrderedDict[tuple[Any, ...], tuple[dict[str, torch.Tensor], list[dict[str, Any]], float, int]]
        self.memo = OrderedDict()
        self.memo_size = memo_size

    def fresh(self, backbone: str) -> CropTask:
        """A copy of the backbone's initial model (built once, seeded)."""
        if backbone not in self.pristine:
            torch.manual_seed(self.settings.seed)
            self.pristine[backbone] = self.build(backbone)
        return copy.deepcopy(self.pristine[backbone])

    def fit(self, plan: RunPlan, bank: ChipBank) -> tuple[CropTask, FitResult]:
        """Run every phase of `plan`; returns the task on its best weights and the result record."""
        started = time.perf_counter()
        task = self.fresh(plan.backbone)
        task.to(bank.device)
        result = FitResult(best={}, last={})
        calibrate = task.frozen and task.provenance.weights == "random"
        key: tuple[Any, ...] = (plan.backbone, calibrate)
        for number, phase in enumerate(plan.phases):
            key = (*key, phase.train_ids, phase.val_ids, phase.epochs)
            if key in self.memo:
                best, history, best_loss, best_epoch = self.memo[key]
                self.memo.move_to_end(key)
                task.model.load_state_dict(best, strict=False)
                last = best
            else:
                if calibrate and number == 0:  # a memoized first phase already carries its statistics
                    task.calibrate_statistics(
                        TrainBatches(
                            bank,
                            bank.index(phase.train_ids),
                            self.settings.batch_size,
                            self.settings.crop_px,
                            self.settings.crop_scale,
                            self.settings.seed - 1,
                        )
                    )
                tracker, last = fit_phase(task, bank, phase, number, self.settings)
                best = task.trainable_state()
                history, best_loss, best_epoch = tracker.history, tracker.best_loss, tracker.best_epoch
                self.memo[key] = (best, history, best_loss, best_epoch)
                if len(self.memo) > self.memo_size:
                    self.memo.popitem(last=False)
            result.history += history
            result.best_loss, result.best_epoch = best_loss, best_epoch
        result.best = task.trainable_state()
        result.last = last
        result.seconds = time.perf_counter() - started
        return task, result
