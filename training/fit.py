"""Fit one planned run: its phases in order on in-memory batches, tracking the best and last weights.

Each phase tracks its best weights (lowest validation loss, or training loss without validation chips) and its
last epoch's; the next phase starts from the ones `train.handover` names (ours: best; the study tested the last
epoch's). Phases shared by runs (the `ood` phase that `pretrain-finetune` starts with) are fitted once per process
and reused: the same chips, epochs and seed give the same weights.
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import lightning
import torch
from lightning.pytorch.callbacks import Callback

from training.config import Precision
from training.data import ChipBank, EvalBatches, TrainBatches, class_pixels
from training.plans import PhasePlan, RunPlan
from training.task import CropTask

PHASE_STREAMS = 1000  # phases a run may have before seed s's streams would reach seed s + 1's


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
    crop_ratio: tuple[float, float] = (1.0, 1.0)
    sampling: str = "permutation"  # or with_replacement, class_balanced
    handover: str = "best"  # or last: the weights a phase hands to the next
    precision: Precision = "32-true"


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
        precision=settings.precision,
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


def train_batches(
    bank: ChipBank,
    rows: torch.Tensor,
    settings: FitSettings,
    seed: int,
    num_classes: int | None = None,
    shard: bool = True,
) -> TrainBatches:
    """The augmented epochs of `rows` under the fit settings (`num_classes` for class-balanced sampling).

    `shard`: under DDP each rank takes its share of every epoch; False gives every rank all of it.
    """
    return TrainBatches(
        bank,
        rows,
        settings.batch_size,
        settings.crop_px,
        settings.crop_scale,
        seed,
        ratio=settings.crop_ratio,
        sampling=settings.sampling,
        num_classes=num_classes,
        shard=shard,
    )


def balanced(settings: FitSettings, strategy: str) -> FitSettings:
    """The settings under a balance strategy (`train.balance`): base as they are, each other adds its one thing."""
    if strategy == "loss-weights":
        return replace(settings, class_weights=True)
    if strategy == "chip-sampler":
        return replace(settings, sampling="class_balanced")
    return settings  # base, and pixel-budget (a choice of chips, made in planning)


@dataclass(frozen=True)
class TaskState:
    """What a run changes in a task: its trainable state (BatchNorm statistics included) and the loss's weights."""

    trainable: dict[str, torch.Tensor]
    loss_weight: torch.Tensor | None

    @classmethod
    def of(cls, task: CropTask) -> TaskState:
        """The task's state now (copies)."""
        weight = getattr(task.criterion, "weight", None)
        return cls(task.trainable_state(), None if weight is None else weight.detach().clone())

    def restore(self, task: CropTask) -> None:
        """Put the task back into this state, gradients cleared."""
        task.model.load_state_dict(self.trainable, strict=False)
        task.zero_grad(set_to_none=True)
        if hasattr(task.criterion, "weight"):  # a registered buffer: None or a tensor
            weight = None if self.loss_weight is None else self.loss_weight.clone()
            setattr(task.criterion, "weight", weight)  # noqa: B010 - nn.Module's attribute type is no buffer's


@dataclass(frozen=True)
class PhaseResult:
    """One fitted phase: its best and last trainable state and its history."""

    best: dict[str, torch.Tensor]
    last: dict[str, torch.Tensor]
    history: list[dict[str, Any]]
    best_loss: float
    best_epoch: int

    def handed_over(self, handover: str) -> dict[str, torch.Tensor]:
        """The weights the next phase starts from (and the run's model after its last phase)."""
        return self.last if handover == "last" else self.best


def fit_phase(task: CropTask, bank: ChipBank, phase: PhasePlan, number: int, settings: FitSettings) -> PhaseResult:
    """Train one phase from the task's current weights; the task is left on its last epoch's weights."""
    stream = settings.seed * PHASE_STREAMS + number  # one random stream per seed and phase, none shared
    lightning.seed_everything(stream, workers=False, verbose=False)
    train_rows = bank.index(phase.train_ids)
    if settings.class_weights:
        task.criterion.weight = class_weights(bank, train_rows, task.hparams["num_classes"]).to(bank.device)
    batches = train_batches(bank, train_rows, settings, stream, task.hparams["num_classes"])
    val = EvalBatches(bank, bank.index(phase.val_ids), settings.batch_size, shard=True) if phase.val_ids else None
    task.monitor = "val_loss" if val is not None else "train_loss"
    tracker = _Tracker(number, task.monitor)
    _trainer(settings, phase.epochs, tracker).fit(task, train_dataloaders=batches, val_dataloaders=val)
    last = task.trainable_state()
    best = tracker.best if tracker.best is not None else last
    return PhaseResult(best, last, tracker.history, tracker.best_loss, tracker.best_epoch)


class Fitter:
    """Fits runs in one process, reusing pristine models per backbone and phases shared between runs."""

    def __init__(self, build: Any, settings: FitSettings, memo_size: int = 8) -> None:  # noqa: ANN401 - a factory
        self.build = build  # backbone name -> freshly built CropTask (seeded)
        self.settings = settings
        self.pristine: dict[tuple[str, int], tuple[CropTask, TaskState]] = {}
        self.memo: OrderedDict[tuple[Any, ...], PhaseResult] = OrderedDict()
        self.memo_size = memo_size
        self.uses: Counter[tuple[Any, ...]] | None = None  # phase key -> runs still to use it (`expect`)

    def fresh(self, backbone: str, seed: int | None = None) -> CropTask:
        """The backbone's model under `seed` at its initial weights (None: the settings' seed).

        Built once per backbone and seed, and reset to its initial trainable state for every run: a frozen encoder's
        parameters never move, so that is all a run changed. A ResNet-50 U-Net costs 0.6 s to build and 0.4 s to
        deep-copy; a reset copies only what trains. The task a previous `fit` returned is the same object, reset.
        """
        seed = self.settings.seed if seed is None else seed
        if (backbone, seed) not in self.pristine:
            torch.manual_seed(seed)
            task = self.build(backbone)
            self.pristine[backbone, seed] = (task, TaskState.of(task))
        task, initial = self.pristine[backbone, seed]
        initial.restore(task)
        return task

    def _settings(self, plan: RunPlan) -> FitSettings:
        settings = self.settings if plan.seed is None else replace(self.settings, seed=plan.seed)
        return balanced(settings, plan.balance)

    def _phase_keys(self, plan: RunPlan) -> list[tuple[Any, ...]]:
        """One memo key per phase: the run's model and settings, then every phase up to this one."""
        settings = self._settings(plan)
        how = (settings.handover, settings.class_weights, settings.sampling)  # a shared phase is shared only so
        key: tuple[Any, ...] = (plan.backbone, settings.seed, *how)
        keys = []
        for phase in plan.phases:
            key = (*key, phase.train_ids, phase.val_ids, phase.epochs)
            keys.append(key)
        return keys

    def expect(self, plans: Sequence[RunPlan]) -> None:
        """Say which runs follow: a fitted phase is then kept exactly until the last run that starts with it.

        Without it the memo keeps the `memo_size` phases used last, and a `pretrain-finetune` run planned a dozen
        runs after its `ood` phase would fit that phase again.
        """
        self.uses = Counter(key for plan in plans for key in self._phase_keys(plan))

    def _remember(self, key: tuple[Any, ...], fitted: PhaseResult) -> None:
        if self.uses is None:  # no plan ahead: the last `memo_size` phases
            self.memo[key] = fitted
            self.memo.move_to_end(key)
            if len(self.memo) > self.memo_size:
                self.memo.popitem(last=False)
            return
        self.uses[key] -= 1
        if self.uses[key] > 0:
            self.memo[key] = fitted
        else:
            self.memo.pop(key, None)

    def fit(self, plan: RunPlan, bank: ChipBank) -> tuple[CropTask, FitResult]:
        """Run every phase of `plan`; returns the task on its handed-over weights and the result record.

        `result.best` and `result.last` are the last phase's best and last-epoch weights; every earlier phase
        handed over the weights `settings.handover` names, so `last` is the study's last-epoch checkpoint.
        """
        started = time.perf_counter()
        settings = self._settings(plan)
        task = self.fresh(plan.backbone, settings.seed)
        task.to(bank.device)
        result = FitResult(best={}, last={})
        calibrate = task.frozen and task.provenance.weights == "random"  # a property of the backbone: not in keys
        for number, (phase, key) in enumerate(zip(plan.phases, self._phase_keys(plan), strict=True)):
            fitted = self.memo.get(key)
            if fitted is None:
                if calibrate and number == 0:  # a memoized first phase already carries its statistics
                    rows = bank.index(phase.train_ids)
                    classes = task.hparams["num_classes"]
                    task.calibrate_statistics(
                        train_batches(bank, rows, settings, settings.seed - 1, classes, shard=False)
                    )
                fitted = fit_phase(task, bank, phase, number, settings)
            self._remember(key, fitted)
            task.model.load_state_dict(fitted.handed_over(settings.handover), strict=False)
            result.history += fitted.history
            result.best_loss, result.best_epoch = fitted.best_loss, fitted.best_epoch
            result.best, result.last = fitted.best, fitted.last
        result.seconds = time.perf_counter() - started
        return task, result
