"""Typed params of the training stages (`train`, `evaluate`, `report`): pure pydantic, no torch.

Each section registers itself with curation's params registry (the stage table names this module), so `cropharmony
params check` validates the whole file; keeping them torch-free lets it import them without the deep-learning stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from curation.core.params import Part, Section, increasing_sizes, register

ALL = "all"  # a matrix entry that covers every value of its axis inside one stage
OTHERS_DEFAULT = "default"  # the key of `train.others` for every target not listed by name
POOLS = ("target", "others")
BASE = "base"  # the balance strategy of the runs as the other params configure them
BalanceStrategy = Literal["base", "loss-weights", "chip-sampler", "pixel-budget"]
Precision = Literal["32-true", "bf16-mixed", "16-mixed"]  # Lightning's names; mixed: autocast on the GPU


class PhaseParams(Part):
    """One training phase of a protocol: which chips, for how many epochs, from a fresh or the previous model."""

    train_on: tuple[Literal["target", "others"], ...]  # target: k chips of the source; others: every other source
    epochs: int = Field(ge=1)

    @field_validator("train_on")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("list `target`, `others` or both, once each")
        return value


class MatrixParams(Part):
    """The axes `dvc.yaml` fans `train` and `evaluate` out over; `all` groups every value of an axis in one stage.

    A stage is a process, and importing torch, torchgeo and Lightning costs about 5 s on two cores: the demo groups
    protocols, sources and sizes and fans out over backbones; a GPU cluster lists every value to run one run a stage.
    """

    protocol: tuple[str, ...]
    backbone: tuple[str, ...]
    source: tuple[str, ...]
    size: tuple[int | Literal["all"], ...]

    @field_validator("protocol", "backbone", "source", "size")
    @classmethod
    def _entries(cls, value: tuple[object, ...]) -> tuple[object, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("list distinct entries (a value, or `all`)")
        if ALL in value and len(value) > 1:
            raise ValueError("`all` already covers every value: list it alone")
        return value


class BalanceParams(Part):
    """Class-balance strategies measured side by side: every run of `protocols` repeated under each strategy.

    `base` is the runs as `model.class_weights`, `sampling` and `pixel_balance` configure them; each other strategy
    adds one thing to it: `loss-weights` inverse-frequency cross-entropy, `chip-sampler` class-balanced chip draws
    (`sampling: class_balanced`), `pixel-budget` the study's pixel budget on the others' pools. The report measures
    each against `base` on the same chips and seeds (`metrics/balance.parquet`).
    """

    strategies: tuple[BalanceStrategy, ...]
    protocols: Literal["all"] | tuple[str, ...]  # the protocols repeated under the strategies beyond base

    @field_validator("strategies")
    @classmethod
    def _strategies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or value[0] != BASE or len(set(value)) != len(value):
            raise ValueError(f"list distinct strategies, `{BASE}` first (the others are measured against it)")
        return value

    @field_validator("protocols")
    @classmethod
    def _protocols(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        if isinstance(value, tuple) and (not value or len(set(value)) != len(value)):
            raise ValueError("list distinct protocols, or write `all`")
        return value


class SpectralParams(Part):
    """The per-pixel baseline `spectral` (LightGBM on the band values of sampled labelled pixels, no deep learning).

    Each phase of a protocol samples its own training chips' pixels and adds `trees` boosting rounds to the model
    the previous phase handed over (its analogue of fine-tuning); the run's seed draws the pixels.
    """

    pixels_per_class: int = Field(ge=1)  # labelled pixels sampled per class from a phase's training chips
    trees: int = Field(ge=1)  # boosting rounds per phase
    learning_rate: float = Field(gt=0)
    leaves: int = Field(ge=2)  # LightGBM's num_leaves


class ModelParams(Part):
    """The segmentation model around the backbone.

    `satlas_architecture` is scoped to one backbone, like `imagenet_input`: only Satlas has a pretrained FPN and
    upsampling module (SatlasPretrain's), so only Satlas can be built as the study built it.
    """

    # stages of the ResNet-50 the U-Net uses, 3 to 5 (the study: all 5); the stages beyond are not built into the model
    encoder_depth: int = Field(ge=3, le=5)
    decoder_channels: tuple[int, ...]  # one per encoder stage used (smp's default for 5: 256, 128, 64, 32, 16)
    frozen_encoder: bool  # the study froze the encoder
    frozen_batchnorm: Literal["eval", "train"]  # a frozen encoder's BatchNorm: eval (ours) or train (the study's)
    imagenet_input: Literal["all_bands", "rgb"]  # imagenet: 13 bands x/10000 (the study) or RGB, ImageNet stats
    satlas_architecture: Literal["unet", "satlas_fpn"]  # satlas: U-Net (ours) or SatlasPretrain FPN (the study's)
    class_weights: bool  # cross-entropy weighted by inverse class frequency of the training pixels

    @model_validator(mode="after")
    def _depth(self) -> ModelParams:
        if len(self.decoder_channels) != self.encoder_depth:
            raise ValueError(
                f"decoder_channels lists {len(self.decoder_channels)} widths for encoder_depth {self.encoder_depth}: "
                "list one per encoder stage"
            )
        if self.satlas_architecture == "satlas_fpn" and self.encoder_depth != 5:
            raise ValueError("satlas_architecture satlas_fpn is SatlasPretrain's whole model: use encoder_depth 5")
        return self


@register
class TrainParams(Section):
    """The `train` stage: fine-tune the registry's backbones under the protocols, one run per matrix cell."""

    section: ClassVar[str] = "train"
    seed: int  # the data side: validation hold-out and pixel balance, the same for every repeat of a run
    seeds: tuple[int, ...]  # every run is trained once per seed (new layers' init, batch order, crops)
    matrix: MatrixParams
    sizes: tuple[int, ...]  # k: target chips, each one of subsets.train_sizes (protocols without target: k = 0)
    # the sources runs are trained for (all: every source); the others pools and the test sets still span all
    targets: Literal["all"] | tuple[str, ...]
    others_size: Annotated[int, Field(ge=1)] | Literal["all"]  # every other source's set of this size, or `all`
    others: dict[str, Literal["all"] | tuple[str, ...]]  # target -> the sources its `others` pool draws from
    pixel_balance: Literal["none", "study"]  # study: the others' chips cut to one pixel budget, least `other` first
    balance: BalanceParams  # class-balance strategies, each repeating the runs of its protocols
    protocols: dict[str, tuple[PhaseParams, ...]]  # name -> phases, run in order, each from the previous model
    handover: Literal["best", "last"]  # the weights a phase hands to the next: its best or its last epoch's
    model: ModelParams
    spectral: SpectralParams  # the `spectral` baseline's settings (the U-Nets ignore them)
    weights_dir: Path | None  # looked up before $TORCH_HOME/hub/checkpoints (None: only the hub directory)
    allow_random_init: bool  # true: a missing weight file starts from random init (recorded); false: an error
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    batch_size: int = Field(ge=1)
    plateau_patience: int = Field(ge=0)  # ReduceLROnPlateau on the validation loss
    # an epoch: every chip once, as many uniform draws, or as many draws weighted by each chip's rare-class pixels
    sampling: Literal["permutation", "with_replacement", "class_balanced"]
    crop_px: int = Field(ge=32)  # side of the random resized crops (a multiple of 32 for the U-Net)
    crop_scale: tuple[float, float]  # share of the chip's area a crop covers, low and high
    crop_ratio: tuple[float, float]  # range of a crop's width / height ([1, 1]: square; kornia's: [0.75, 1.333])
    val_split: Literal["blocks", "random"]  # hold out whole spatial blocks per source, or random chips of a phase
    val_share: float = Field(ge=0, lt=1)  # chips held out for validation (the scheduler and the best checkpoint)
    val_block_m: float = Field(gt=0)  # side of the blocks of `val_split: blocks`
    accelerator: Literal["auto", "cpu", "gpu"]
    devices: int = Field(ge=1)  # more than one: DDP through Lightning
    precision: Precision = "32-true"
    channels_last: bool = False  # NHWC memory for the network and its input (faster convolutions on tensor cores)
    threads: int = Field(ge=0)  # CPU threads for torch (0: torch's default)
    out: Path  # runs/<entry>/<run_id>/

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError("list distinct seeds, e.g. [0] or [0, 1, 2]: each repeats every run")
        if any(seed < 0 for seed in value):
            raise ValueError("seeds are non-negative integers")
        return value

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        return increasing_sizes(value, "that subsets.train_sizes has")

    @field_validator("crop_px")
    @classmethod
    def _crop(cls, value: int) -> int:
        if value % 32:
            raise ValueError("crops feed a 5-level U-Net: use a multiple of 32")
        return value

    @field_validator("crop_scale")
    @classmethod
    def _scale(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high <= 1:
            raise ValueError("give 0 < low <= high <= 1, e.g. [0.5, 1.0]")
        return value

    @field_validator("crop_ratio")
    @classmethod
    def _ratio(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low <= high:
            raise ValueError("give 0 < low <= high (width / height), e.g. [1.0, 1.0] or [0.75, 1.333]")
        return value

    @field_validator("others")
    @classmethod
    def _others(cls, value: dict[str, str | tuple[str, ...]]) -> dict[str, str | tuple[str, ...]]:
        if OTHERS_DEFAULT not in value:
            raise ValueError(f"give `{OTHERS_DEFAULT}:` (all, or a list of sources) for targets not listed")
        for target, sources in value.items():
            if isinstance(sources, tuple) and (not sources or len(set(sources)) != len(sources)):
                raise ValueError(f"others.{target}: list distinct sources, or write `all`")
            if isinstance(sources, tuple) and target in sources:
                raise ValueError(f"others.{target} lists {target!r} itself: the target's chips are its own pool")
        return value

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: object) -> object:
        if isinstance(value, list | tuple) and (not value or len(set(value)) != len(value)):
            raise ValueError("list distinct sources, or write `all`")
        return value

    @field_validator("protocols")
    @classmethod
    def _protocols(cls, value: dict[str, tuple[PhaseParams, ...]]) -> dict[str, tuple[PhaseParams, ...]]:
        for name, phases in value.items():
            if not phases:
                raise ValueError(f"protocol {name!r} needs at least one phase")
            if name == ALL or "_" in name or "/" in name:
                raise ValueError(f"protocol name {name!r}: avoid `all`, `_` and `/` (they build folder names)")
        return value

    @model_validator(mode="after")
    def _matrix_names(self) -> TrainParams:
        unknown = [p for p in self.matrix.protocol if p != ALL and p not in self.protocols]
        if unknown:
            raise ValueError(f"matrix.protocol lists {unknown}, not defined under train.protocols")
        bad = [k for k in self.matrix.size if k != ALL and k != 0 and k not in self.sizes]
        if bad:
            raise ValueError(f"matrix.size lists {bad}: use `all`, 0 or one of train.sizes {list(self.sizes)}")
        listed = self.balance.protocols
        unknown = [p for p in listed if p not in self.protocols] if listed != ALL else []
        if unknown:
            raise ValueError(f"balance.protocols lists {unknown}, not defined under train.protocols")
        already = {
            "loss-weights": self.model.class_weights,
            "chip-sampler": self.sampling == "class_balanced",
            "pixel-budget": self.pixel_balance == "study",
        }
        same = [s for s in self.balance.strategies if already.get(s, False)]
        if same:
            raise ValueError(f"balance.strategies {same} are what the base runs already do: drop them from the list")
        return self


@register
class EvaluateParams(Section):
    """The `evaluate` stage: every trained model on every source's test set."""

    section: ClassVar[str] = "evaluate"
    batch_size: int = Field(ge=1)
    checkpoint: Literal["best", "last"]
    argmax_over_ignore: bool  # true: a pixel may be predicted `ignore` (a wrong class), as the study's argmax
    out: Path  # evals/<entry>/{metrics,confusion}.parquet


class BootstrapParams(Part):
    """The report's bootstrap: replicates of the test chips (and of the seeds), and the interval's level."""

    resamples: int = Field(ge=100)
    level: float = Field(gt=0, lt=1)
    seed: int = Field(ge=0)


@register
class ReportParams(Section):
    """The `report` stage: one tidy transfer table and the DVC metrics and plots derived from it."""

    section: ClassVar[str] = "report"
    out: Path  # metrics/
    heatmap_metric: str
    curve_metric: str
    # a table of published numbers to set beside ours (`protocol, backbone, target_source, k, metric, value_pct,
    # origin`, percent): reference/study_results_v1.csv is the study's; null: none (dvc.yaml depends on the file)
    reference: Path | None
    bootstrap: BootstrapParams
