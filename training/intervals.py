"""Bootstrap intervals over test chips and seeds, and the study's comparisons as paired bootstrap differences.

A transfer result is one number per run and test set, but both the test set (a sample of chips) and the training
(a seed) are random. The report keeps every seed's number and adds, per cell (protocol, backbone, target source, k,
test source, metric), the mean and standard deviation over seeds and a two-level bootstrap interval: each replicate
resamples the test chips (a chip, not a pixel, is the unit: pixels of one chip are not independent) and the cell's
seeds, and scores each drawn seed's model on the drawn chips. The study's comparisons (backbone A vs B, k vs k) are
tested paired: both sides are scored on the same chip resample, so chip-to-chip variation cancels.

Metrics are those of `training.metrics.scores`, computed here in numpy on a stack of confusion matrices at once
(`batch_scores`), so the report stays torch-free. Replicates are `weights[B, n] @ counts[n, K*K]`: one matrix product
per run and test set. Every random draw comes from a generator seeded by `BootstrapSettings.seed` and the name of what
it draws for (zlib.crc32, never Python's salted `hash`), and inputs are sorted before use: same inputs, same bytes,
whatever the row order. See docs/statistics.md.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandera.polars as pa
import polars as pl

from curation.core.schemas import named_check, non_blank_check, table_check

Floats = npt.NDArray[np.float64]

METRICS: tuple[str, ...] = ("oa", "aa", "aa_study", "f1_macro", "miou")
"""The metrics `batch_scores` computes, the summary keys of `training.metrics.scores`."""
DEFAULT_METRICS: tuple[str, ...] = ("oa", "aa", "miou")
CELL = ("protocol", "backbone", "target_source", "k", "test_source", "balance")
"""A cell: one model configuration (its class-balance strategy too) scored on one test set; its runs differ by seed
only."""
BASE = "base"  # the balance strategy the others are measured against
INTERVAL_KEYS = (*CELL, "metric")
COMPARISON_KEYS = ("comparison", "protocol", "target_source", "metric", "a", "b", "backbone", "k", "balance")
COMPARISONS_KINDS = ("backbone", "k", "balance")
CHIP_COLUMNS = ("run_id", "test_source", "chip_id", "target_class", "predicted_class", "pixels")
RUN_COLUMNS = ("run_id", "protocol", "backbone", "target_source", "k", "seed", "balance")
IGNORE_INDEX = 0


@dataclass(frozen=True)
class BootstrapSettings:
    """How many replicates, the interval's two-sided level, and the seed of every draw (params `report.bootstrap`)."""

    resamples: int = 1000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if self.resamples < 1:
            raise ValueError(f"resamples must be >= 1, got {self.resamples}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must lie in (0, 1), got {self.level}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


# ------------------------------------------------------------------ metrics on a stack of confusion matrices


def _ratio(num: Floats, den: Floats) -> Floats:
    """Elementwise num / den with NaN where den == 0 (undefined, not zero), as `training.metrics` does."""
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nanmean_rows(values: Floats) -> Floats:
    """`np.nanmean` of each row without its warning on all-NaN rows (NaN there): the same sums, so equal values.

    Rows are made C-contiguous first: numpy sums a contiguous row pairwise, as it sums the 1-D array `scores` has,
    but sums a strided one (what boolean indexing of columns returns) in another order, off by an ulp at K >= 8.
    """
    values = np.ascontiguousarray(values)
    valid = ~np.isnan(values)
    count = valid.sum(axis=1)
    total = np.where(valid, values, 0.0).sum(axis=1)
    return _ratio(total, count.astype(np.float64))


def batch_scores(
    confusions: npt.ArrayLike, metrics: Sequence[str] = DEFAULT_METRICS, ignore_index: int = IGNORE_INDEX
) -> dict[str, Floats]:
    """`training.metrics.scores`' summary metrics for each of B confusion matrices [B, K, K] at once, torch-free.

    The same rules as `scores` (see there): row `ignore_index` is zeroed, predictions of it count as wrong, `aa` is
    the mean recall over the real classes present, `f1_macro` and `miou` the means over real classes with
    tp + fp + fn > 0, `aa_study` torchmetrics' macro over all classes seen. Where `scores` raises (no valid pixel
    at all, which a bootstrap replicate drawing only empty chips can reach) every metric is NaN instead. The values
    equal `scores`' bit for bit; `aa_study` only up to an ulp when K >= 8 (its sum skips the unseen classes, ours
    adds zeros for them, which numpy's pairwise sum groups differently from 8 terms on).

    Args:
        confusions: [B, K, K] non-negative counts, rows = target class, columns = predicted class. Floats are
            accepted (replicate sums are weighted sums of integer counts, exact in float64 below 2**53).
        metrics: Names from `METRICS`.
        ignore_index: The ignore class id.

    Returns:
        Metric name -> [B] float64 values.

    Raises:
        ValueError: On a stack that is not [B, K, K], negative counts or an unknown metric name.
    """
    _check_metrics(metrics)
    counts = np.asarray(confusions)
    if counts.ndim != 3 or counts.shape[1] != counts.shape[2]:
        raise ValueError(f"confusions must be a stack [B, K, K], got shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("confusion matrices have negative counts")
    num_classes = counts.shape[1]
    flat = counts.reshape(len(counts), num_classes * num_classes).astype(np.float64, copy=False)
    return _flat_scores(flat, num_classes, metrics, ignore_index)


def _sums(num_classes: int, ignore_index: int) -> Floats:
    """[K*K, 3K] 0/1 matrix: a flat confusion times it gives each class's row sum, column sum and diagonal cell.

    Cells of row `ignore_index` (target ignore) are in none of them: the row is dropped without a copy. The sums
    are of integer counts, exact in float64 whatever the order, so BLAS may add them as it likes.
    """
    k = num_classes
    out = np.zeros((k * k, 3 * k))
    for target in range(k):
        if target == ignore_index:
            continue
        for predicted in range(k):
            out[target * k + predicted, target] = 1.0  # tp + fn
            out[target * k + predicted, k + predicted] = 1.0  # tp + fp
        out[target * k + target, 2 * k + target] = 1.0  # tp
    return out


RECALL = "recall_"  # `recall_<class>`: one real class's recall, named as `training.metrics.scores` names it


def _flat_scores(
    flat: Floats, num_classes: int, metrics: Sequence[str], ignore_index: int, classes: Sequence[str] = ()
) -> dict[str, Floats]:
    """`batch_scores` on flat confusions [B, K*K] (float64, integer-valued); `recall_<class>` with `classes`."""
    k = num_classes
    sums = flat @ _sums(k, ignore_index)
    rows, cols, tp = sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k :]
    fn, fp = rows - tp, cols - tp
    seen = tp + fp + fn
    total = rows.sum(axis=1)
    real = np.array([i != ignore_index for i in range(k)])
    empty = total == 0

    recall = _ratio(tp, rows)
    out: dict[str, Floats] = {}
    for name in metrics:
        if name == "oa":
            value = _ratio(tp.sum(axis=1), total)
        elif name == "aa":
            value = _nanmean_rows(recall[:, real])
        elif name == "aa_study":
            study = seen > 0
            value = _ratio(np.where(study, np.nan_to_num(recall, nan=0.0), 0.0).sum(axis=1), study.sum(axis=1) * 1.0)
        elif name.startswith(RECALL):
            value = recall[:, list(classes).index(name.removeprefix(RECALL))].copy()
        elif name == "f1_macro":
            value = _nanmean_rows(_ratio(2 * tp, 2 * tp + fp + fn)[:, real])
        else:  # miou
            value = _nanmean_rows(_ratio(tp, seen)[:, real])
        value[empty] = np.nan
        out[name] = value
    return out


def _check_metrics(metrics: Sequence[str], classes: Sequence[str] = ()) -> None:
    recalls = {f"{RECALL}{name}" for name in classes[IGNORE_INDEX + 1 :]}
    unknown = sorted(set(metrics) - set(METRICS) - recalls)
    if unknown or not metrics:
        raise ValueError(f"unknown metric names {unknown} (known: {list(METRICS)})" if unknown else "no metrics asked")


# ------------------------------------------------------------------ the random draws


def _generator(settings: BootstrapSettings, purpose: str, name: str) -> np.random.Generator:
    """A generator for one kind of draw of one thing, from the settings' seed and a stable hash of its name."""
    return np.random.Generator(np.random.PCG64([settings.seed, zlib.crc32(f"{purpose}:{name}".encode())]))


def chip_weights(n_chips: int, test_source: str, settings: BootstrapSettings) -> Floats:
    """[resamples, n_chips] multinomial counts: how often each (sorted) chip of a test set is drawn per replicate.

    One draw per test set, used for every run scored on it, so that comparisons on it are paired.
    """
    if n_chips < 1:
        raise ValueError(f"a test set needs at least one chip, {test_source!r} has {n_chips}")
    rng = _generator(settings, "chips", test_source)
    draws = rng.multinomial(n_chips, np.full(n_chips, 1.0 / n_chips), size=settings.resamples)
    return np.asarray(draws, dtype=np.float64)


def _seed_weights(seeds: int, cell: str, settings: BootstrapSettings) -> Floats:
    """[resamples, seeds] counts of each seed among `seeds` draws with replacement (all ones for one seed)."""
    if seeds == 1:
        return np.ones((settings.resamples, 1))
    draws = _generator(settings, "seeds", cell).integers(0, seeds, size=(settings.resamples, seeds))
    counted: Floats = (draws[:, :, None] == np.arange(seeds)).sum(axis=1).astype(np.float64)
    return counted


# ------------------------------------------------------------------ inputs


def _frame(
    frame: pl.DataFrame, columns: Sequence[str], what: str, types: Mapping[str, type[pl.DataType]]
) -> pl.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing} (needs {list(columns)})")
    picked = frame.select(pl.col(c).cast(types.get(c, pl.String)) for c in columns)
    nulls = [c for c in columns if picked[c].null_count() > 0]
    if nulls:
        raise ValueError(f"{what} has nulls in {nulls}")
    return picked


def _prepared(
    chips: pl.DataFrame, runs: pl.DataFrame, classes: Sequence[str]
) -> tuple[pl.DataFrame, dict[str, tuple[str, str, str, int, int, str]]]:
    """Chips with class ids (ignore targets and empty cells dropped), and each run's (protocol, ..., k, seed)."""
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be unique names, the ignore class first and a real class after: {classes}")
    frame = _frame(chips, CHIP_COLUMNS, "chips", {"pixels": pl.Int64})
    if "balance" not in runs.columns:  # runs of tables written before train.balance: every one a base run
        runs = runs.with_columns(balance=pl.lit(BASE))
    table = _frame(runs, RUN_COLUMNS, "runs", {"k": pl.Int64, "seed": pl.Int64})
    names = set(frame["target_class"].unique().to_list()) | set(frame["predicted_class"].unique().to_list())
    unknown = sorted(names - set(classes))
    if unknown:
        raise ValueError(f"chips name classes {unknown} that are not in the taxonomy {list(classes)}")
    if (frame["pixels"] < 0).any():
        raise ValueError("chips have negative pixel counts")
    duplicated = table.filter(pl.col("run_id").is_duplicated())["run_id"].unique().sort().to_list()
    if duplicated:
        raise ValueError(f"runs lists run ids more than once: {duplicated}")
    orphans = sorted(set(frame["run_id"].unique().to_list()) - set(table["run_id"].to_list()))
    if orphans:
        raise ValueError(f"chips hold runs that are not in runs: {orphans[:10]}{' ...' if len(orphans) > 10 else ''}")
    ids = {name: i for i, name in enumerate(classes)}
    frame = frame.filter((pl.col("target_class") != classes[IGNORE_INDEX]) & (pl.col("pixels") > 0)).with_columns(
        pl.col("target_class").replace_strict(ids, return_dtype=pl.Int64).alias("target"),
        pl.col("predicted_class").replace_strict(ids, return_dtype=pl.Int64).alias("predicted"),
    )
    keyed = {
        str(r[0]): (str(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]), str(r[6]))
        for r in table.select(RUN_COLUMNS).iter_rows()
    }
    return frame, keyed


# ------------------------------------------------------------------ the bootstrap


@dataclass(frozen=True)
class _Cell:
    """One cell's seeds: each seed's whole-test-set value and the cell's replicates, per metric."""

    key: tuple[str, str, str, int, str, str]
    seeds: int
    values: dict[str, Floats]  # [seeds], in (seed, run_id) order
    replicates: dict[str, Floats]  # [resamples]: mean over the drawn seeds on the drawn chips


def _codes(column: pl.Series) -> tuple[list[str], npt.NDArray[np.int64]]:
    """The column's distinct values, sorted, and each row's index among them."""
    names = column.unique().sort()
    return names.to_list(), column.cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int64)


def _local(codes: npt.NDArray[np.int64], size: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The codes present (sorted) and each code's index among them: a test set's own runs or chips."""
    present = np.zeros(size, dtype=bool)
    present[codes] = True
    return np.flatnonzero(present), (np.cumsum(present) - 1)[codes]


def _test_sets(frame: pl.DataFrame, num_classes: int) -> list[tuple[str, list[str], Floats]]:
    """Per test source (sorted): its runs (sorted) and their per-chip counts [runs, chips, K*K], chips sorted by id.

    A test set's chips are every chip any run has a count for; a chip a run lacks is zeros for it. Names become
    codes once (their sorted order), each test set's runs and chips indices among its own, one `bincount` per test
    set sums the counts.
    """
    cells = num_classes * num_classes
    set_names, set_codes = _codes(frame["test_source"])
    run_names, run_codes = _codes(frame["run_id"])
    chip_names, chip_codes = _codes(frame["chip_id"])
    cell = frame["target"].to_numpy() * num_classes + frame["predicted"].to_numpy()
    pixels = frame["pixels"].to_numpy().astype(np.float64)
    out: list[tuple[str, list[str], Floats]] = []
    for code, name in enumerate(set_names):
        rows = np.flatnonzero(set_codes == code)
        runs_present, run = _local(run_codes[rows], len(run_names))
        chips_present, chip = _local(chip_codes[rows], len(chip_names))
        n_runs, n_chips = len(runs_present), len(chips_present)
        flat = (run * n_chips + chip) * cells + cell[rows]
        counts = np.bincount(flat, weights=pixels[rows], minlength=n_runs * n_chips * cells)
        runs = [run_names[i] for i in runs_present]
        out.append((name, runs, np.asarray(counts, dtype=np.float64).reshape(n_runs, n_chips, cells)))
    return out


CHUNK_VALUES = 1 << 20  # float64 values of one scoring stack (8 MB): runs are scored this many at a time


def _scored(
    counts: Floats, weights: Floats, num_classes: int, metrics: Sequence[str], classes: Sequence[str] = ()
) -> dict[str, Floats]:
    """Per metric, [runs, 1 + resamples]: each run's value on the whole test set, then on each chip resample.

    A replicate's confusion is `weights[b] @ counts`: integer counts times integer weights, exact in float64.
    """
    runs, _, cells = counts.shape
    per_chunk = max(1, CHUNK_VALUES // (weights.shape[0] * cells))
    parts: dict[str, list[Floats]] = {m: [] for m in metrics}
    for first in range(0, runs, per_chunk):
        chunk = counts[first : first + per_chunk]
        whole = _flat_scores(chunk.sum(axis=1), num_classes, metrics, IGNORE_INDEX, classes)
        drawn = _flat_scores(np.matmul(weights, chunk).reshape(-1, cells), num_classes, metrics, IGNORE_INDEX, classes)
        for metric in metrics:
            parts[metric].append(np.hstack([whole[metric][:, None], drawn[metric].reshape(len(chunk), -1)]))
    return {m: np.concatenate(parts[m]) for m in metrics}


def _cells(
    chips: pl.DataFrame, runs: pl.DataFrame, classes: Sequence[str], settings: BootstrapSettings, metrics: Sequence[str]
) -> list[_Cell]:
    """Every cell with data, sorted by its key, with its seeds' values and its replicates."""
    _check_metrics(metrics, classes)
    frame, keyed = _prepared(chips, runs, classes)
    num_classes = len(classes)
    out: list[_Cell] = []
    for test_source, run_ids, counts in _test_sets(frame, num_classes):
        weights = chip_weights(counts.shape[1], test_source, settings)
        scored = _scored(counts, weights, num_classes, metrics, classes)
        members: dict[tuple[str, str, str, int, str, str], list[tuple[int, str, int]]] = {}
        for row, run_id in enumerate(run_ids):
            protocol, backbone, target, k, seed, balance = keyed[run_id]
            key = (protocol, backbone, target, k, test_source, balance)
            members.setdefault(key, []).append((seed, run_id, row))
        for key in sorted(members):
            seeded = sorted(members[key])
            if len({s for s, _, _ in seeded}) != len(seeded):
                raise ValueError(f"cell {key} has runs with the same seed: {[r for _, r, _ in seeded]}")
            rows = [r for _, _, r in seeded]
            drawn = _seed_weights(len(seeded), "|".join(str(part) for part in key), settings)
            values: dict[str, Floats] = {}
            replicates: dict[str, Floats] = {}
            for metric in metrics:
                per_seed = scored[metric][rows]  # [seeds, 1 + resamples], in (seed, run_id) order
                values[metric] = per_seed[:, 0]
                replicates[metric] = _weighted_mean(per_seed[:, 1:].T, drawn)
            out.append(_Cell(key, len(seeded), values, replicates))
    return sorted(out, key=lambda c: c.key)


def _weighted_mean(values: Floats, weights: Floats) -> Floats:
    """Per row, the mean of `values` [B, S] with multiplicities `weights` [B, S], NaN values left out."""
    valid = ~np.isnan(values)
    return _ratio((weights * np.where(valid, values, 0.0)).sum(axis=1), (weights * valid).sum(axis=1))


def _quantiles(replicates: Floats, level: float) -> tuple[float | None, float | None]:
    """The percentile interval of the defined replicates; None when none is defined."""
    defined = replicates[~np.isnan(replicates)]
    if defined.size == 0:
        return None, None
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(defined, [tail, 1.0 - tail])
    return float(low), float(high)


def _mean_std(values: Floats) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof=1) of the defined values; None where undefined."""
    defined = values[~np.isnan(values)]
    mean = float(defined.mean()) if defined.size else None
    std = float(defined.std(ddof=1)) if defined.size > 1 else None
    return mean, std


def _method(settings: BootstrapSettings, seeds: int) -> str:
    """What the interval covers, in words (one seed: the test set's sampling only)."""
    head = f"bootstrap: {settings.resamples} resamples of test chips"
    return f"{head} (1 seed: chips only)" if seeds == 1 else f"{head}, seeds resampled ({seeds} seeds)"


INTERVAL_TYPES: dict[str, type[pl.DataType]] = {
    "protocol": pl.String, "backbone": pl.String, "target_source": pl.String, "k": pl.Int64,
    "test_source": pl.String, "balance": pl.String, "metric": pl.String, "seeds": pl.Int64, "mean": pl.Float64,
    "std": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "method": pl.String,
}  # fmt: skip
COMPARISON_TYPES: dict[str, type[pl.DataType]] = {
    "comparison": pl.String, "protocol": pl.String, "target_source": pl.String, "test_source": pl.String,
    "metric": pl.String, "a": pl.String, "b": pl.String, "backbone": pl.String, "k": pl.Int64, "balance": pl.String,
    "mean_a": pl.Float64, "mean_b": pl.Float64, "difference": pl.Float64, "ci_low": pl.Float64,
    "ci_high": pl.Float64, "p_value": pl.Float64, "supported": pl.Boolean, "seeds_a": pl.Int64, "seeds_b": pl.Int64,
}  # fmt: skip


def intervals(
    chips: pl.DataFrame,
    runs: pl.DataFrame,
    classes: Sequence[str],
    settings: BootstrapSettings,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> pl.DataFrame:
    """Per cell and metric: the seeds, their mean and std, and a two-level bootstrap interval (`INTERVALS_SCHEMA`).

    `mean` is the mean over seeds of each seed's whole-test-set value, the number the other tables show; the
    interval adds the test set's sampling (chips resampled) to the training's (seeds resampled), so that a
    difference between two cells can be judged against both.

    Args:
        chips: Per-chip confusion counts (`CHIP_CONFUSION_SCHEMA`'s columns); only non-zero cells need be there.
            A test set's chips are every chip any run has a count for; a chip a run lacks counts zero for it.
        runs: One row per run: run_id, protocol, backbone, target_source, k, seed (extra columns are ignored).
        classes: Class names by id, the ignore class first.
        settings: Replicates, level and seed.
        metrics: Names from `METRICS`.

    Raises:
        ValueError: On unknown class or metric names, a run in `chips` missing from `runs`, duplicate run ids,
            two runs of one cell with the same seed, negative counts, missing columns or nulls.
    """
    rows: list[dict[str, object]] = []
    for cell in _cells(chips, runs, classes, settings, metrics):
        protocol, backbone, target, k, test_source, balance = cell.key
        for metric in metrics:
            mean, std = _mean_std(cell.values[metric])
            low, high = _quantiles(cell.replicates[metric], settings.level)
            rows.append(
                {
                    "protocol": protocol,
                    "backbone": backbone,
                    "target_source": target,
                    "k": k,
                    "test_source": test_source,
                    "balance": balance,
                    "metric": metric,
                    "seeds": cell.seeds,
                    "mean": mean,
                    "std": std,
                    "ci_low": low,
                    "ci_high": high,
                    "method": _method(settings, cell.seeds),
                }
            )
    return _table(rows, INTERVAL_TYPES, INTERVAL_KEYS)


def _table(rows: list[dict[str, object]], types: dict[str, type[pl.DataType]], keys: Sequence[str]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=types, orient="row") if rows else pl.DataFrame(schema=types)
    return frame.sort(list(keys), maintain_order=True)


def _pairs(cells: list[_Cell]) -> list[tuple[str, _Cell, _Cell]]:
    """The study's comparisons on each target's own test set, A before B in sorted order.

    Backbones at one (protocol, target, k, balance), sizes k of one (protocol, backbone, target, balance), and
    every balance strategy against base at one (protocol, backbone, target, k): a is base, b the strategy.
    """
    own = [c for c in cells if c.key[2] == c.key[4]]
    pairs: list[tuple[str, _Cell, _Cell]] = []
    for kind, held, varied in (("backbone", (0, 2, 3, 5), 1), ("k", (0, 1, 2, 5), 3), ("balance", (0, 1, 2, 3), 5)):
        groups: dict[tuple[object, ...], list[_Cell]] = {}
        for cell in own:
            groups.setdefault(tuple(cell.key[i] for i in held), []).append(cell)
        for group in groups.values():
            ordered = sorted(group, key=lambda c: c.key[varied])
            if kind == "balance":
                base = [c for c in ordered if c.key[5] == BASE]
                pairs.extend((kind, base[0], b) for b in ordered if base and b is not base[0])
                continue
            pairs.extend((kind, a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :])
    return pairs


def _p_value(differences: Floats) -> float:
    """Two-sided bootstrap p of a difference of 0, with the (count + 1) / (B + 1) correction."""
    total = differences.size + 1
    below = (np.count_nonzero(differences <= 0) + 1) / total
    above = (np.count_nonzero(differences >= 0) + 1) / total
    return min(1.0, 2.0 * min(below, above))


def comparisons(
    chips: pl.DataFrame,
    runs: pl.DataFrame,
    classes: Sequence[str],
    settings: BootstrapSettings,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> pl.DataFrame:
    """The study's comparisons as paired bootstrap differences b - a (`COMPARISONS_SCHEMA`).

    Only on each run's own target test set. Each replicate scores both sides on the same chip resample (paired:
    chip-to-chip variation cancels) and resamples each side's seeds on its own; `supported` says whether the
    percentile interval of the differences excludes 0. Arguments and errors as for `intervals`.
    """
    cells = _cells(chips, runs, classes, settings, metrics)
    rows: list[dict[str, object]] = []
    for kind, a, b in _pairs(cells):
        protocol, backbone, target, k, test_source, balance = a.key
        varied = {"backbone": 1, "k": 3, "balance": 5}[kind]
        for metric in metrics:
            mean_a, _ = _mean_std(a.values[metric])
            mean_b, _ = _mean_std(b.values[metric])
            differences = b.replicates[metric] - a.replicates[metric]
            differences = differences[~np.isnan(differences)]
            low, high = _quantiles(differences, settings.level)
            rows.append(
                {
                    "comparison": kind,
                    "protocol": protocol,
                    "target_source": target,
                    "test_source": test_source,
                    "metric": metric,
                    "a": str(a.key[varied]),
                    "b": str(b.key[varied]),
                    "backbone": None if kind == "backbone" else backbone,
                    "k": None if kind == "k" else k,
                    "balance": None if kind == "balance" else balance,
                    "mean_a": mean_a,
                    "mean_b": mean_b,
                    "difference": None if mean_a is None or mean_b is None else mean_b - mean_a,
                    "ci_low": low,
                    "ci_high": high,
                    "p_value": _p_value(differences) if differences.size else None,
                    "supported": low is not None and high is not None and (low > 0.0 or high < 0.0),
                    "seeds_a": a.seeds,
                    "seeds_b": b.seeds,
                }
            )
    return _table(rows, COMPARISON_TYPES, COMPARISON_KEYS)


def balance_effects(
    chips: pl.DataFrame, runs: pl.DataFrame, classes: Sequence[str], settings: BootstrapSettings
) -> pl.DataFrame:
    """Each class-balance strategy against base: AA and every real class's recall, paired as `comparisons`.

    Rows of `COMPARISONS_SCHEMA` with `comparison` balance, a = base, b = the strategy, at every k it ran; empty
    when only base ran. The study's mean-accuracy finding is about imbalance: this is its measurement.
    """
    metrics = ("aa", *(f"{RECALL}{name}" for name in classes[IGNORE_INDEX + 1 :]))
    table = comparisons(chips, runs, classes, settings, metrics)
    return table.filter(pl.col("comparison") == "balance")


# ------------------------------------------------------------------ schemas


def _text() -> pa.Column:
    return pa.Column(pl.String, checks=non_blank_check())


def _count(name: str) -> pa.Column:
    return pa.Column(pl.Int64, checks=named_check(f"{name} >= 1", lambda c: c >= 1))


def _fraction(nullable: bool = True) -> pa.Column:
    return pa.Column(pl.Float64, checks=named_check("in [0, 1]", lambda c: c.is_between(0.0, 1.0)), nullable=nullable)


def _ordered(low: str, high: str) -> pa.Check:
    return table_check(f"{low} <= {high}", (pl.col(low) <= pl.col(high)).fill_null(True))


INTERVALS_SCHEMA = pa.DataFrameSchema(
    {
        "protocol": _text(),
        "backbone": _text(),
        "target_source": _text(),
        "k": pa.Column(pl.Int64, checks=named_check("k >= 0", lambda c: c >= 0)),
        "test_source": _text(),
        "balance": _text(),
        "metric": _text(),
        "seeds": _count("seeds"),
        "mean": _fraction(),  # null: undefined on every seed (no valid pixel in the test set)
        "std": pa.Column(pl.Float64, checks=named_check("std >= 0", lambda c: c >= 0.0), nullable=True),  # 1 seed
        "ci_low": _fraction(),
        "ci_high": _fraction(),
        "method": _text(),
    },
    strict=True,
    ordered=True,
    checks=[
        table_check(f"unique ({', '.join(INTERVAL_KEYS)})", ~pl.struct(INTERVAL_KEYS).is_duplicated()),
        _ordered("ci_low", "ci_high"),
        table_check("std null exactly for one seed", pl.col("std").is_null() | (pl.col("seeds") > 1)),
    ],
    name="bootstrap intervals",
)

COMPARISONS_SCHEMA = pa.DataFrameSchema(
    {
        "comparison": pa.Column(
            pl.String, checks=named_check("backbone, k or balance", lambda c: c.is_in(list(COMPARISONS_KINDS)))
        ),
        "protocol": _text(),
        "target_source": _text(),
        "test_source": _text(),
        "metric": _text(),
        "a": _text(),
        "b": _text(),
        "backbone": pa.Column(pl.String, checks=non_blank_check(), nullable=True),  # null: backbones compared
        "k": pa.Column(pl.Int64, checks=named_check("k >= 0", lambda c: c >= 0), nullable=True),  # null: k compared
        "balance": pa.Column(pl.String, checks=non_blank_check(), nullable=True),  # null: strategies compared
        "mean_a": _fraction(),
        "mean_b": _fraction(),
        "difference": pa.Column(
            pl.Float64, checks=named_check("in [-1, 1]", lambda c: c.is_between(-1.0, 1.0)), nullable=True
        ),
        "ci_low": pa.Column(
            pl.Float64, checks=named_check("in [-1, 1]", lambda c: c.is_between(-1.0, 1.0)), nullable=True
        ),
        "ci_high": pa.Column(
            pl.Float64, checks=named_check("in [-1, 1]", lambda c: c.is_between(-1.0, 1.0)), nullable=True
        ),
        "p_value": pa.Column(
            pl.Float64, checks=named_check("in (0, 1]", lambda c: (c > 0.0) & (c <= 1.0)), nullable=True
        ),
        "supported": pa.Column(pl.Boolean),
        "seeds_a": _count("seeds_a"),
        "seeds_b": _count("seeds_b"),
    },
    strict=True,
    ordered=True,
    checks=[
        table_check(f"unique ({', '.join(COMPARISON_KEYS)})", ~pl.struct(COMPARISON_KEYS).is_duplicated()),
        table_check("on the target's own test set", pl.col("test_source") == pl.col("target_source")),
        table_check(
            "backbone null exactly for backbone comparisons",
            pl.col("backbone").is_null() == (pl.col("comparison") == "backbone"),
        ),
        table_check("k null exactly for k comparisons", pl.col("k").is_null() == (pl.col("comparison") == "k")),
        table_check(
            "balance null exactly for balance comparisons",
            pl.col("balance").is_null() == (pl.col("comparison") == "balance"),
        ),
        _ordered("ci_low", "ci_high"),
        table_check(
            "supported: the interval excludes 0",
            pl.col("supported") == ((pl.col("ci_low") > 0.0) | (pl.col("ci_high") < 0.0)).fill_null(False),
        ),
    ],
    name="paired comparisons",
)
