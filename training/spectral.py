"""The spectral baseline: a LightGBM classifier on each pixel's band values, with no deep learning.

Every pixel is classified from its own raw reflectance alone: no spatial context, no pretrained weights, no GPU.
It is the floor the foundation models must clear to be worth their cost, and not a low one: CropGlobe found
plain spectral features beat foundation-model embeddings for crop types across continents. It trains on the
same in-memory chips (training.data.ChipBank) and phases as the U-Nets; a later phase continues the same
booster with more trees on its own pixels, the baseline's analogue of fine-tuning. Checkpoints are JSON holding
LightGBM's text model, so loading one never unpickles anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import torch

from curation.core.errors import Problem
from curation.core.io import atomic_write_json
from training.data import ChipBank
from training.task import CHECKPOINT, IGNORE, RETRAIN, CheckpointError

FORMAT = "cropharmony-spectral-1"
SAMPLE_PIXELS = 1 << 22  # pixels of one chip batch while sampling (64 chips of 256 x 256)
PREDICT_PIXELS = 1 << 16  # pixels per LightGBM predict call: bounds its float64 scores to a few MB


@dataclass(frozen=True)
class SpectralSettings:
    """How the baseline samples and boosts; the defaults are LightGBM's own apart from the sample size."""

    pixels_per_class: int = 2000
    trees: int = 100
    learning_rate: float = 0.1
    leaves: int = 31
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        lowest = {"pixels_per_class": 1, "trees": 1, "leaves": 2, "seed": 0, "threads": 1}  # LightGBM needs 2 leaves
        for name, low in lowest.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"SpectralSettings.{name} must be an integer >= {low}, got {value!r}")
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"SpectralSettings.learning_rate must be a finite number > 0, got {rate!r}")


def _chip_batches(bank: ChipBank, rows: torch.Tensor) -> Iterator[torch.Tensor]:
    """Row batches small enough that one batch of images stays a bounded copy."""
    rows = rows.detach().to(bank.device, torch.long)
    side = bank.labels.shape[-2] * bank.labels.shape[-1]
    step = max(1, SAMPLE_PIXELS // max(1, side))
    for start in range(0, len(rows), step):
        yield rows[start : start + step]


def _flat_labels(bank: ChipBank, rows: torch.Tensor) -> npt.NDArray[np.uint8]:
    labels: npt.NDArray[np.uint8] = bank.labels.index_select(0, rows).cpu().numpy().reshape(-1)
    return labels


def sample_pixels(
    bank: ChipBank, rows: torch.Tensor, per_class: int, seed: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Band values [n, bands] and class ids [n] of at most `per_class` labelled pixels per class of `rows`' chips.

    Two passes over chip batches: count each class, draw ranks among its pixels, then pick the drawn pixels.
    Nothing holds all of a bank's pixels, and the draw depends only on the chips, their order and `seed`.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    counts = np.zeros(256, dtype=np.int64)  # labels are uint8
    for batch in _chip_batches(bank, rows):
        counts += np.bincount(_flat_labels(bank, batch), minlength=256)
    counts[IGNORE] = 0
    rng = np.random.default_rng(seed)
    classes = [int(c) for c in np.flatnonzero(counts)]
    chosen = {
        c: np.sort(rng.choice(int(counts[c]), size=min(per_class, int(counts[c])), replace=False)) for c in classes
    }
    seen = dict.fromkeys(classes, 0)
    bands, side = bank.images.shape[1], bank.labels.shape[-2] * bank.labels.shape[-1]
    features, labels = [np.zeros((0, bands), np.float32)], [np.zeros(0, np.int64)]
    for batch in _chip_batches(bank, rows):
        flat = _flat_labels(bank, batch)
        picks = [np.zeros(0, np.int64)]
        for c, ranks in chosen.items():
            where = np.flatnonzero(flat == c)
            lo, hi = np.searchsorted(ranks, [seen[c], seen[c] + where.size])
            picks.append(where[ranks[lo:hi] - seen[c]])
            seen[c] += where.size
        take = np.sort(np.concatenate(picks))
        if take.size == 0:
            continue
        chip, pixel = np.divmod(take, side)
        images = bank.images.index_select(0, batch).cpu().numpy().view(np.uint16).reshape(len(batch), bands, side)
        features.append(images[chip, :, pixel].astype(np.float32))
        labels.append(flat[take].astype(np.int64))
    return np.concatenate(features), np.concatenate(labels)


def _params(settings: SpectralSettings, num_classes: int) -> dict[str, Any]:
    return {
        "objective": "multiclass",
        "num_class": num_classes - 1,
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.leaves,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": settings.threads,
        "seed": settings.seed,
        "verbosity": -1,
    }


class SpectralModel:
    """A LightGBM booster over classes 1..K-1 (its label is the class id - 1) and the bands it was trained on."""

    def __init__(self, booster: Any, num_classes: int, bands: Sequence[str], settings: SpectralSettings) -> None:  # noqa: ANN401 - lightgbm.Booster
        self.booster: Any = booster
        self.num_classes = num_classes
        self.bands = tuple(bands)
        self.settings = settings

    @classmethod
    def fit(
        cls,
        bank: ChipBank,
        phases: Sequence[torch.Tensor],
        num_classes: int,
        bands: Sequence[str],
        settings: SpectralSettings,
    ) -> SpectralModel:
        """Boost `trees` rounds per phase, each later phase continuing the previous phase's booster."""
        if num_classes < 3:
            raise ValueError(f"num_classes counts ignore (0) and needs >= 2 real classes, got {num_classes}")
        if len(bands) != bank.images.shape[1]:
            raise ValueError(f"{len(bands)} band names for a bank of {bank.images.shape[1]} bands")
        if not phases:
            raise ValueError("no training phase given")
        booster: Any = None
        for number, rows in enumerate(phases, start=1):
            x, y = sample_pixels(bank, rows, settings.pixels_per_class, settings.seed * 1000 + number)
            if y.size == 0:
                raise ValueError(f"phase {number} of {len(phases)}: its {len(rows)} chips hold no labelled pixel")
            if int(y.max()) >= num_classes:
                raise ValueError(f"phase {number} of {len(phases)}: class id {int(y.max())} >= {num_classes}")
            params = _params(settings, num_classes)
            data = lgb.Dataset(x, label=y - 1, params=params)
            booster = lgb.train(params, data, num_boost_round=settings.trees, init_model=booster)
        return cls(booster, num_classes, bands, settings)

    @property
    def rounds(self) -> int:
        """Boosting rounds over all phases."""
        return int(self.booster.current_iteration())

    def eval(self) -> SpectralModel:
        """No training mode to leave; here so evaluation can treat it like a torch model."""
        return self

    def with_threads(self, threads: int) -> SpectralModel:
        """The same model predicting on `threads` threads: each pixel's scores do not depend on it."""
        return SpectralModel(
            self.booster, self.num_classes, self.bands, replace(self.settings, threads=max(1, threads))
        )

    def predict_classes(self, image: torch.Tensor) -> torch.Tensor:
        """Class ids [B, H, W] on the image's device; the argmax runs over real classes only, so never ignore."""
        if image.ndim != 4 or image.shape[1] != len(self.bands):
            raise ValueError(f"expected [B, {len(self.bands)}, H, W] raw reflectance, got {tuple(image.shape)}")
        b, c, h, w = image.shape
        pixels = image.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).reshape(-1, c).numpy()
        classes = np.empty(len(pixels), dtype=np.int64)
        for start in range(0, len(pixels), PREDICT_PIXELS):
            chunk = pixels[start : start + PREDICT_PIXELS]
            scores = self.booster.predict(chunk, raw_score=True, num_threads=self.settings.threads)
            classes[start : start + len(chunk)] = np.asarray(scores).reshape(len(chunk), -1).argmax(1) + 1
        return torch.from_numpy(classes).view(b, h, w).to(image.device)

    def save(self, path: Path, meta: dict[str, Any]) -> None:
        """One JSON file, written atomically with sorted keys: equal training inputs give equal bytes."""
        payload = {
            "format": FORMAT,
            "meta": meta,
            "num_classes": self.num_classes,
            "bands": list(self.bands),
            "settings": asdict(self.settings),
            "booster": self.booster.model_to_string(num_iteration=-1),
        }
        atomic_write_json(path, payload)

    @classmethod
    def load(
        cls, path: Path, fix: str = RETRAIN, bands: Sequence[str] | None = None
    ) -> tuple[SpectralModel, dict[str, Any]]:
        """A model and its meta from a file `save` wrote; every bad file is a CheckpointError naming it and `fix`."""
        if not path.is_file():
            raise CheckpointError("missing checkpoint", [Problem(str(path), CHECKPOINT, "no such file", fix)])

        def unreadable(detail: str) -> CheckpointError:
            return CheckpointError(
                "unreadable checkpoint", [Problem(str(path), CHECKPOINT, detail, f"delete it and {fix}")]
            )

        try:
            payload = json.loads(path.read_bytes())
        except ValueError as exc:  # truncated, corrupt, or binary (a torch checkpoint): JSON or UTF-8 errors
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise unreadable(f"not JSON ({type(exc).__name__}: {first})") from exc
        tag = payload.get("format") if isinstance(payload, dict) else None
        if tag != FORMAT:
            raise unreadable(f"not a cropharmony spectral checkpoint: format {tag!r}, expected {FORMAT!r}")
        num_classes, saved = payload.get("num_classes"), payload.get("bands")
        try:
            if not isinstance(payload.get("meta"), dict) or not isinstance(payload.get("booster"), str):
                raise TypeError("meta or booster missing")
            if (
                not isinstance(num_classes, int)
                or not isinstance(saved, list)
                or not all(isinstance(b, str) for b in saved)
            ):
                raise TypeError("num_classes or bands malformed")
            settings = SpectralSettings(**payload.get("settings"))
            booster = lgb.Booster(model_str=payload["booster"])
        except (TypeError, ValueError, lgb.basic.LightGBMError) as exc:
            raise unreadable(f"malformed spectral checkpoint ({type(exc).__name__}: {str(exc)[:200]})") from exc
        if booster.num_model_per_iteration() != num_classes - 1 or booster.num_feature() != len(saved):
            raise unreadable(f"booster does not fit {num_classes} classes and {len(saved)} bands")
        if bands is not None and tuple(bands) != tuple(saved):
            raise CheckpointError(
                "checkpoint was trained on other bands",
                [
                    Problem(
                        str(path),
                        "checkpoint of these bands",
                        f"trained on {saved}, asked for {list(bands)}",
                        f"evaluate with the bands the run was trained with, or {fix}",
                    )
                ],
            )
        meta: dict[str, Any] = payload["meta"]
        return cls(booster, num_classes, saved, settings), meta
