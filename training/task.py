"""The Lightning task: torchgeo's SemanticSegmentationTask with registry input, offline weights, a frozen encoder.

The model is the registry entry's: an smp U-Net on a ResNet-50 encoder, or (`satlas_fpn`) the study's SatlasPretrain
model (training.satlas_model); either way `model.encoder` is the part a frozen run freezes. torchgeo's
`freeze_backbone` stops gradients but leaves the encoder's BatchNorm layers in training mode, so their running
statistics still drift with every batch (the study's "frozen" encoder changed); here a frozen encoder also stays in
eval mode unless `frozen_batchnorm="train"` asks for the study's behaviour. Checkpoints hold only what training
changes (BatchNorm statistics included) plus a digest of the encoder parameters they ran on.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torchgeo.trainers import SemanticSegmentationTask

from curation.core.errors import Problem
from curation.core.io import atomic_write_bytes
from training.backbones import Backbone
from training.distributed import sum_across_ranks
from training.metrics import confusion_matrix, scores
from training.satlas_model import SatlasFPN, load_satlas
from training.weights import Loader, Provenance, WeightsError, init_encoder, load_encoder, tensor_digest

IGNORE = 0
STRIDE = 32  # a 5-level U-Net needs sides divisible by this
RETRAIN = "re-run `dvc repro train` for the entry that wrote it"
CHECKPOINT = "readable checkpoint"


class CheckpointError(WeightsError):
    """A checkpoint is missing, unreadable, or was written for another model: the message names the file."""


def read_checkpoint(path: Path, fix: str = RETRAIN) -> dict[str, Any]:
    """A checkpoint's payload (`state`, `encoder_digest`, `meta`), checked for shape before anything uses it.

    torch's own errors (an UnpicklingError, `PytorchStreamReader failed reading zip archive`) name no file.
    """
    if not path.is_file():
        raise CheckpointError("missing checkpoint", [Problem(str(path), CHECKPOINT, "no such file", fix)])
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt, or not a torch file at all
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(
            "unreadable checkpoint",
            [Problem(str(path), CHECKPOINT, f"{type(exc).__name__}: {first}", f"delete it and {fix}")],
        ) from exc
    keys = sorted(payload) if isinstance(payload, dict) else []
    valid = (
        isinstance(payload, dict)
        and isinstance(payload.get("state"), dict)
        and all(isinstance(v, torch.Tensor) for v in payload["state"].values())
        and isinstance(payload.get("encoder_digest"), str)
        and isinstance(payload.get("meta"), dict)
    )
    if not valid:
        what = f"keys {keys[:5]}" if keys else f"a {type(payload).__name__}"
        detail = f"not a cropharmony checkpoint ({{state, encoder_digest, meta}}): {what}"
        raise CheckpointError("unreadable checkpoint", [Problem(str(path), CHECKPOINT, detail, f"delete it and {fix}")])
    result: dict[str, Any] = payload
    return result


def quiet_lightning() -> None:
    """Silence Lightning's banners and the warnings this harness triggers on purpose.

    A frozen encoder in eval mode and iterables instead of DataLoaders are deliberate; stage logs show the runs.
    """
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    for message in (r"Found \d+ module\(s\) in eval mode", r".*treespec", r".*does not have many workers"):
        warnings.filterwarnings("ignore", message=message)


def drop_unused_stages(encoder: torch.nn.Module, depth: int) -> None:
    """Remove the ResNet stages a U-Net of `depth` never runs (smp keeps them), once the weight file has filled them.

    Kept, they would be hashed into the frozen encoder's digest and, trained as a whole (`scratch`), saved in every
    checkpoint (layer3 and layer4 hold 22 of ResNet-50's 23.5 M parameters) while no gradient ever reaches them.
    """
    for stage in range(depth, 5):  # smp's ResNet: stage k > 1 of the U-Net is layer k
        if hasattr(encoder, f"layer{stage}"):
            delattr(encoder, f"layer{stage}")


class CropTask(SemanticSegmentationTask):
    """The registry backbone's model (U-Net or SatlasPretrain FPN); input is raw reflectance in file band order."""

    ignore = ("weights", "backbone_spec")

    def __init__(
        self,
        backbone_spec: Backbone,
        file_bands: tuple[str, ...],
        num_classes: int,
        decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16),
        encoder_depth: int = 5,
        frozen_encoder: bool = True,
        frozen_batchnorm: Literal["eval", "train"] = "eval",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        patience: int = 10,
        class_weights: torch.Tensor | None = None,
        weights_dir: Path | None = None,
        allow_random_init: bool = False,
        channels_last: bool = False,
    ) -> None:
        self.backbone_spec = backbone_spec
        self.file_bands = file_bands
        self.decoder_channels = tuple(decoder_channels)
        self.encoder_depth = encoder_depth
        self.frozen_batchnorm = frozen_batchnorm
        self.weights_dir = weights_dir
        self.allow_random_init = allow_random_init
        self.channels_last = channels_last
        self.weight_decay = weight_decay
        self.provenance: Provenance
        super().__init__(
            model="unet",
            backbone="resnet50",
            weights=None,
            in_channels=backbone_spec.in_channels,
            num_classes=num_classes,
            loss="ce",
            class_weights=class_weights,
            ignore_index=IGNORE,
            lr=lr,
            patience=patience,
            freeze_backbone=frozen_encoder,
        )

    def configure_models(self) -> None:
        """Build the entry's model, fill it from the offline weight file (or random init), freeze the encoder if asked.

        SatlasPretrain's file fills the backbone and the FPN; a U-Net's file only the encoder.
        """
        spec, classes = self.backbone_spec, self.hparams["num_classes"]
        target: torch.nn.Module
        load: Loader
        if spec.architecture == "satlas_fpn":
            self.model = SatlasFPN(spec.in_channels, classes)
            target, load = self.model, load_satlas
        else:
            self.model = smp.Unet(
                encoder_name="resnet50",
                encoder_weights=None,
                encoder_depth=self.encoder_depth,
                in_channels=spec.in_channels,
                classes=classes,
                decoder_channels=self.decoder_channels,
            )
            target, load = self.model.encoder, load_encoder
        self.provenance = init_encoder(target, spec, self.weights_dir, self.allow_random_init, load)
        if spec.architecture != "satlas_fpn":  # SatlasPretrain's model is whole by design (params: depth 5)
            drop_unused_stages(self.model.encoder, self.encoder_depth)
        self.normalize = spec.normalizer(self.file_bands)
        if self.frozen:
            for parameter in self.model.encoder.parameters():
                parameter.requires_grad = False
            self.train(self.training)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def configure_metrics(self) -> None:
        """Metrics are computed from confusion matrices over whole sets (training.metrics), not per batch."""

    @property
    def frozen(self) -> bool:
        """Whether the encoder is frozen."""
        return bool(self.hparams["freeze_backbone"])

    def train(self, mode: bool = True) -> CropTask:
        """Keep a frozen encoder in eval mode, so its BatchNorm statistics do not move either (unless asked to)."""
        super().train(mode)
        if self.frozen and self.frozen_batchnorm == "eval":
            self.model.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw reflectance [B, file bands, H, W] -> logits [B, classes, H, W]; pads sides up to a multiple of 32."""
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % STRIDE, -width % STRIDE
        x = self.normalize(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if pad_h or pad_w:  # reflect needs a pad shorter than the side; tiny inputs replicate their edge
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        logits: torch.Tensor = self.model(x)
        return logits[..., :height, :width]

    def predict_classes(self, x: torch.Tensor) -> torch.Tensor:
        """Class ids; `ignore` is never predicted (it is not a class, only the absence of a label)."""
        logits: torch.Tensor = self(x)
        logits[:, IGNORE] = float("-inf")
        return logits.argmax(dim=1)

    def training_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:  # noqa: ANN401
        """Cross-entropy with ignore; no per-batch metrics."""
        loss: torch.Tensor = self.criterion(self(batch["image"]), batch["mask"])
        self.log("train_loss", loss, batch_size=batch["image"].shape[0], on_epoch=True, on_step=False, sync_dist=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        """Start the epoch's whole-set sums: weighted loss and its weight, and the confusion matrix."""
        classes = self.hparams["num_classes"]
        self.val_sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        self.val_confusion = torch.zeros(classes, classes, dtype=torch.long, device=self.device)

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:  # noqa: ANN401
        """Add a batch to the sums: the loss of every labelled pixel (as the criterion weighs it), and its classes.

        Dividing once per epoch makes the validation loss the criterion's mean over every labelled pixel of the
        set, whatever the batches and however many ranks share them (a mean of batch means is neither).
        """
        logits = self(batch["image"])
        mask = batch["mask"]
        weight = getattr(self.criterion, "weight", None)
        pixel_loss = F.cross_entropy(logits, mask, weight=weight, ignore_index=IGNORE, reduction="none")
        labelled = mask[mask != IGNORE]
        pixel_weight = labelled.numel() if weight is None else weight[labelled].double().sum()
        self.val_sums += torch.stack([pixel_loss.double().sum(), torch.as_tensor(pixel_weight).to(self.val_sums)])
        logits[:, IGNORE] = float("-inf")
        self.val_confusion += confusion_matrix(logits.argmax(dim=1), mask, self.hparams["num_classes"], IGNORE)

    def on_validation_epoch_end(self) -> None:
        """Log the whole validation set's loss (the monitor of the scheduler and of the best weights), OA and mIoU.

        Under DDP every rank holds the sums of its chips; they are added up across ranks first.
        """
        sums = sum_across_ranks(self.val_sums)
        confusion = sum_across_ranks(self.val_confusion).cpu()
        loss = float(sums[0] / sums[1]) if sums[1] > 0 else math.nan
        names = [str(k) for k in range(self.hparams["num_classes"])]
        scored = scores(confusion, names, IGNORE) if confusion.sum() > 0 else {"oa": math.nan, "miou": math.nan}
        for key, value in (("val_loss", loss), ("val_oa", scored["oa"]), ("val_miou", scored["miou"])):
            self.log(key, value, on_epoch=True, on_step=False)

    def configure_optimizers(self) -> Any:  # noqa: ANN401 - Lightning's union of return shapes
        """AdamW over the trainable parameters and ReduceLROnPlateau on the monitored loss (the study's choice)."""
        optimizer = torch.optim.AdamW(
            [p for p in self.parameters() if p.requires_grad], lr=self.hparams["lr"], weight_decay=self.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=self.hparams["patience"])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.monitor}}

    def calibrate_statistics(self, batches: Iterable[dict[str, torch.Tensor]]) -> None:
        """Estimate a random-init encoder's BatchNorm statistics from training batches, once, before training.

        Random init has no statistics to freeze: left at mean 0, variance 1, a frozen random ResNet-50 passes
        activations growing with depth to the decoder and training diverges. Pretrained encoders keep their own.
        """
        norms = [m for m in self.model.encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # a plain average over every batch
        self.model.encoder.train()
        with torch.no_grad():
            for batch in batches:
                self.model.encoder(self.normalize(batch["image"]))
        for norm in norms:
            norm.momentum = 0.1
        self.train(self.training)

    def _frozen_keys(self) -> set[str]:
        """Frozen encoder parameters are rebuilt from the weight file or the seed; its buffers travel."""
        if not self.frozen:
            return set()
        return {f"encoder.{name}" for name, _ in self.model.encoder.named_parameters()}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint must hold: all but a frozen encoder's parameters (BatchNorm statistics included)."""
        frozen = self._frozen_keys()
        return {
            key: value.detach().cpu().clone() for key, value in self.model.state_dict().items() if key not in frozen
        }

    def encoder_digest(self) -> str:
        """The encoder parameters' digest, hashed again only when one of them changed since the last call.

        Hashing a ResNet-50 (94 MB) costs about 0.2 s, and every checkpoint written or loaded needs it; tensors count
        their in-place changes (`_version`: an optimizer step, a loaded state), and a conversion that swaps a
        parameter's data (`.to`, `.half`) changes its storage and dtype, so an unchanged encoder is not hashed twice.
        """
        key = tuple((id(p), p._version, p.data_ptr(), p.dtype) for p in self.model.encoder.parameters())
        cached = self.__dict__.get("_digest")
        if cached is None or cached[0] != key:
            self.__dict__["_digest"] = (key, tensor_digest(self.model.encoder, parameters_only=True))
        digest: str = self.__dict__["_digest"][1]
        return digest

    def save_checkpoint(self, path: Path, meta: dict[str, Any]) -> None:
        """Write a weights_only-loadable checkpoint atomically."""
        payload = {
            "state": self.trainable_state(),
            "encoder_digest": self.encoder_digest() if self.frozen else "",
            "meta": meta,
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path: Path, fix: str = RETRAIN) -> dict[str, Any]:
        """Load a checkpoint written by `save_checkpoint` onto this freshly built task; returns its meta.

        A missing, truncated or foreign file, or one written for another model, is a CheckpointError naming the
        file; `fix` says how to write it again (evaluate names the train entry).
        """
        payload = read_checkpoint(path, fix)
        digest = payload["encoder_digest"]
        if digest and digest != self.encoder_digest():
            raise CheckpointError(
                "checkpoint was trained on another encoder",
                [
                    Problem(
                        str(path),
                        "frozen encoder rebuilt identically",
                        f"encoder digest differs ({self.provenance.weights} weights now)",
                        f"evaluate with the weight files and seed the run was trained with, or {fix}",
                    )
                ],
            )
        expected = self.model.state_dict()
        state: dict[str, torch.Tensor] = payload["state"]
        wrong = [
            f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
            for k, v in state.items()
            if k in expected and expected[k].shape != v.shape
        ]
        frozen = self._frozen_keys()
        missing = [k for k in expected if k not in state and k not in frozen]
        unexpected = [k for k in state if k not in expected]
        if wrong or missing or unexpected:
            parts = [f"wrong shapes: {wrong[:3]}"] if wrong else []
            parts += [f"missing {missing[:3]}"] if missing else []
            parts += [f"unexpected {unexpected[:3]}"] if unexpected else []
            raise CheckpointError(
                "checkpoint does not fit the model",
                [
                    Problem(
                        str(path),
                        "checkpoint of this model",
                        f"written for another model (other train.model params or backbone): {'; '.join(parts)}",
                        f"evaluate with the params the run was trained with, or {fix}",
                    )
                ],
            )
        self.model.load_state_dict(state, strict=False)
        meta: dict[str, Any] = payload["meta"]
        return meta
