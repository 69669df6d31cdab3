"""Bootstrap intervals and paired comparisons: metrics equal training.metrics, intervals, pairs, determinism."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest

from training.intervals import (
    COMPARISONS_SCHEMA,
    INTERVALS_SCHEMA,
    METRICS,
    BootstrapSettings,
    batch_scores,
    chip_weights,
    comparisons,
    intervals,
)
from training.metrics import scores

CLASSES = ["ignore", "maize", "soybean", "rice", "wheat", "other"]
K = len(CLASSES)
SMALL = BootstrapSettings(resamples=200, level=0.95, seed=0)
CHIP_TYPES = {
    "run_id": pl.String,
    "test_source": pl.String,
    "chip_id": pl.String,
    "target_class": pl.String,
    "predicted_class": pl.String,
    "pixels": pl.Int64,
}
Run = tuple[str, str, str, str, int, int]  # run_id, protocol, backbone, target_source, k, seed


def chip_counts(rng: np.random.Generator, n_chips: int, accuracy: float) -> np.ndarray:
    """[n, K, K] per-chip confusions: two or three real classes per chip, about `accuracy` of pixels right (chips
    vary), the rest spread over the other classes (the ignore class included: predictions of ignore are wrong)."""
    counts = np.zeros((n_chips, K, K), dtype=np.int64)
    for chip in range(n_chips):
        right_share = float(np.clip(accuracy + rng.normal(0.0, 0.1), 0.0, 1.0))
        for target in rng.choice(np.arange(1, K), size=int(rng.integers(2, 4)), replace=False):
            pixels = int(rng.integers(50, 400))
            right = int(rng.binomial(pixels, right_share))
            counts[chip, target, target] += right
            wrong = rng.choice([c for c in range(K) if c != target], size=pixels - right)
            np.add.at(counts[chip, target], wrong, 1)
    return counts


def chip_rows(run_id: str, test_source: str, counts: np.ndarray, prefix: str = "c") -> list[tuple[object, ...]]:
    """The non-zero cells of per-chip confusions as rows of the chip-confusion table."""
    chip, target, predicted = np.nonzero(counts)
    return [
        (run_id, test_source, f"{prefix}{c:03d}", CLASSES[t], CLASSES[p], int(counts[c, t, p]))
        for c, t, p in zip(chip.tolist(), target.tolist(), predicted.tolist(), strict=True)
    ]


def chips_frame(rows: Sequence[tuple[object, ...]]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=CHIP_TYPES, orient="row")


def runs_frame(runs: Sequence[Run]) -> pl.DataFrame:
    columns = ("run_id", "protocol", "backbone", "target_source", "k", "seed")
    return pl.DataFrame(
        list(runs), schema={c: pl.Int64 if c in ("k", "seed") else pl.String for c in columns}, orient="row"
    )


def row(frame: pl.DataFrame, **keys: object) -> dict[str, object]:
    hits = frame.filter(pl.all_horizontal(pl.col(k) == v for k, v in keys.items()))
    assert hits.height == 1, hits
    return hits.row(0, named=True)


def two_backbones(seeds: int = 1, n_chips: int = 30) -> tuple[pl.DataFrame, pl.DataFrame]:
    """imagenet (70 % right) and ssl4eo (95 % right) on cdl, `seeds` runs each, scored on cdl and on nccm."""
    rng = np.random.default_rng(7)
    rows: list[tuple[object, ...]] = []
    runs: list[Run] = []
    for backbone, accuracy in (("imagenet", 0.7), ("ssl4eo", 0.95)):
        for seed in range(seeds):
            run_id = f"id-{backbone}-cdl-k100-s{seed}"
            runs.append((run_id, "id", backbone, "cdl", 100, seed))
            rows += chip_rows(run_id, "cdl", chip_counts(rng, n_chips, accuracy))
            rows += chip_rows(run_id, "nccm", chip_counts(rng, n_chips, accuracy - 0.2))
    return chips_frame(rows), runs_frame(runs)


# ------------------------------------------------------------------ metrics


def random_confusion(rng: np.random.Generator) -> np.ndarray:
    """A random [K, K] matrix with absent classes (zero rows), never-predicted ones and ignore row and column."""
    matrix = rng.integers(0, 50, size=(K, K)) * (rng.random((K, K)) < 0.6)
    for absent in rng.choice(np.arange(1, K), size=int(rng.integers(0, 3)), replace=False):
        matrix[absent] = 0
    if rng.random() < 0.5:
        matrix[:, rng.integers(1, K)] = 0  # a class never predicted
    matrix[1, 1] += 1  # at least one valid pixel, else scores() raises
    return matrix.astype(np.int64)


def test_batch_scores_equal_training_metrics_scores() -> None:
    rng = np.random.default_rng(0)
    stack = np.stack([random_confusion(rng) for _ in range(40)])
    assert stack[:, 1:, 0].sum() > 0 and stack[:, 0].sum() > 0  # ignore predicted and ignore targets present
    assert (stack[:, 1:].sum(axis=2) == 0).any()  # some class absent from some matrix
    ours = batch_scores(stack, METRICS)
    for i, matrix in enumerate(stack):
        theirs = scores(matrix, CLASSES)
        for metric in METRICS:
            assert ours[metric][i] == theirs[metric], (i, metric)  # bit for bit
    floats = batch_scores(stack.astype(np.float64))
    assert all(np.array_equal(floats[m], ours[m]) for m in ("oa", "aa", "miou"))


def test_batch_scores_equal_scores_bit_for_bit_with_many_classes() -> None:
    """15 classes: numpy sums 8 terms on pairwise, so the row sums must be taken in the 1-D array's order."""
    names = ["ignore", *(f"class_{i}" for i in range(1, 15))]
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 30, size=(300, 15, 15)) * (rng.random((300, 15, 15)) < 0.5)
    stack[:, 3] = 0  # class 3 absent everywhere
    ours = batch_scores(stack, METRICS)
    for i, matrix in enumerate(stack):
        theirs = scores(matrix, names)
        assert [ours[m][i] for m in ("oa", "aa", "f1_macro", "miou")] == [
            theirs[m] for m in ("oa", "aa", "f1_macro", "miou")
        ]
        assert ours["aa_study"][i] == pytest.approx(theirs["aa_study"], rel=1e-15)


def test_batch_scores_are_nan_without_a_valid_pixel() -> None:
    stack = np.zeros((2, K, K), dtype=np.int64)
    stack[0, 0, 3] = 5  # only an ignore target: dropped
    stack[1, 2, 2] = 1
    result = batch_scores(stack, METRICS)
    for metric in METRICS:
        assert np.isnan(result[metric][0]) and result[metric][1] == 1.0
    with pytest.raises(ValueError, match="unknown metric"):
        batch_scores(stack, ["oa", "kappa"])
    with pytest.raises(ValueError, match=r"\[B, K, K\]"):
        batch_scores(stack[0])


def test_the_module_does_not_import_torch() -> None:
    code = "import sys, training.intervals; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------ intervals


def test_interval_contains_the_value_and_equals_a_plain_chip_bootstrap() -> None:
    rng = np.random.default_rng(1)
    counts = chip_counts(rng, 25, 0.8)
    chips = chips_frame(chip_rows("r", "cdl", counts))
    runs = runs_frame([("r", "id", "ssl4eo", "cdl", 10, 0)])
    table = intervals(chips, runs, CLASSES, SMALL)
    assert table.columns == list(INTERVALS_SCHEMA.columns)
    assert table["metric"].to_list() == ["aa", "miou", "oa"]
    weights = chip_weights(25, "cdl", SMALL).astype(np.int64)  # chips in sorted id order: c000, c001, ...
    replicates = [scores(np.tensordot(w, counts, axes=1), CLASSES) for w in weights]
    whole = scores(counts.sum(axis=0), CLASSES)
    for metric in ("oa", "aa", "miou"):
        got = row(table, metric=metric)
        assert got["seeds"] == 1 and got["std"] is None
        assert got["method"] == "bootstrap: 200 resamples of test chips (1 seed: chips only)"
        assert got["mean"] == pytest.approx(whole[metric], rel=1e-15)
        low, high = np.quantile([r[metric] for r in replicates], [0.025, 0.975])
        assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high), rel=1e-12)
        assert got["ci_low"] < got["mean"] < got["ci_high"]


def test_interval_shrinks_with_more_chips() -> None:
    rng = np.random.default_rng(2)
    runs = runs_frame([("r", "id", "ssl4eo", "cdl", 10, 0)])
    widths = []
    for n_chips in (8, 200):
        table = intervals(chips_frame(chip_rows("r", "cdl", chip_counts(rng, n_chips, 0.7))), runs, CLASSES, SMALL)
        widths.append((table["ci_high"] - table["ci_low"]).to_numpy())
    assert (widths[1] < 0.6 * widths[0]).all(), widths


def test_seeds_give_mean_std_and_a_wider_interval() -> None:
    chips, runs = two_backbones(seeds=3)
    table = intervals(chips, runs, CLASSES, SMALL)
    assert table.height == 2 * 2 * 3  # 2 backbones x 2 test sources x 3 metrics
    assert set(table["seeds"].to_list()) == {3}
    got = row(table, backbone="ssl4eo", test_source="cdl", metric="oa")
    assert got["method"] == "bootstrap: 200 resamples of test chips, seeds resampled (3 seeds)"
    per_seed = []
    for seed in range(3):
        run = chips.filter((pl.col("run_id") == f"id-ssl4eo-cdl-k100-s{seed}") & (pl.col("test_source") == "cdl"))
        matrix = np.zeros((K, K), dtype=np.int64)
        for target, predicted, pixels in run.select("target_class", "predicted_class", "pixels").iter_rows():
            matrix[CLASSES.index(target), CLASSES.index(predicted)] += pixels
        per_seed.append(scores(matrix, CLASSES)["oa"])
    assert got["mean"] == pytest.approx(np.mean(per_seed), rel=1e-12)
    assert got["std"] == pytest.approx(np.std(per_seed, ddof=1), rel=1e-9)
    assert got["ci_low"] <= got["mean"] <= got["ci_high"]
    one = intervals(chips.filter(pl.col("run_id").str.ends_with("-s0")), runs, CLASSES, SMALL)
    assert one["std"].null_count() == one.height and set(one["seeds"].to_list()) == {1}
    INTERVALS_SCHEMA.validate(table)
    INTERVALS_SCHEMA.validate(one)


def test_missing_chips_count_as_zeros() -> None:
    """A chip every pixel of which is ignore for one run has no rows for it: that run scores zeros there, and the
    chip stays in the test set that every run on it resamples."""
    rng = np.random.default_rng(3)
    counts = chip_counts(rng, 12, 0.8)
    lacking = counts.copy()
    lacking[5] = 0  # run "a" has no row for chip c005
    rows = chip_rows("a", "cdl", lacking) + chip_rows("b", "cdl", counts)
    rows += [("a", "cdl", "c005", "ignore", "maize", 40)]  # an ignore target row: dropped, like no row
    runs = runs_frame([("a", "id", "imagenet", "cdl", 10, 0), ("b", "id", "ssl4eo", "cdl", 10, 0)])
    table = intervals(chips_frame(rows), runs, CLASSES, SMALL)
    weights = chip_weights(12, "cdl", SMALL)  # 12 chips for both runs: the union
    expected = batch_scores(np.tensordot(weights, lacking, axes=1), ["oa"])["oa"]
    got = row(table, backbone="imagenet", metric="oa")
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(tuple(np.quantile(expected, [0.025, 0.975])), rel=1e-12)
    assert got["mean"] == pytest.approx(scores(lacking.sum(axis=0), CLASSES)["oa"], rel=1e-15)


def test_ignore_target_rows_change_nothing() -> None:
    chips, runs = two_backbones()
    extra = chips_frame([(r, "cdl", "c999", "ignore", "maize", 17) for r in runs["run_id"].to_list()])
    extra = pl.concat([extra, chips_frame([(runs["run_id"][0], "cdl", "c003", "ignore", "rice", 5)])])
    with_ignore = pl.concat([chips, extra])
    assert intervals(with_ignore, runs, CLASSES, SMALL).equals(intervals(chips, runs, CLASSES, SMALL))
    assert comparisons(with_ignore, runs, CLASSES, SMALL).equals(comparisons(chips, runs, CLASSES, SMALL))


def test_same_inputs_same_output_whatever_the_row_order() -> None:
    chips, runs = two_backbones(seeds=2)
    first = intervals(chips, runs, CLASSES, SMALL)
    assert first.equals(intervals(chips, runs, CLASSES, SMALL))
    shuffled_chips = chips.sample(fraction=1.0, shuffle=True, seed=11)
    shuffled_runs = runs.sample(fraction=1.0, shuffle=True, seed=12)
    assert not shuffled_chips.equals(chips)
    assert intervals(shuffled_chips, shuffled_runs, CLASSES, SMALL).equals(first)
    paired = comparisons(chips, runs, CLASSES, SMALL)
    assert comparisons(shuffled_chips, shuffled_runs, CLASSES, SMALL).equals(paired)
    other = intervals(chips, runs, CLASSES, BootstrapSettings(resamples=200, seed=1))
    assert not other["ci_low"].equals(first["ci_low"])  # the seed does change the draws


# ------------------------------------------------------------------ comparisons


def test_identical_models_differ_by_nothing() -> None:
    rng = np.random.default_rng(4)
    rows: list[tuple[object, ...]] = []
    runs: list[Run] = []
    for seed in range(2):
        counts = chip_counts(rng, 20, 0.75)
        for backbone in ("imagenet", "ssl4eo"):
            run_id = f"{backbone}-s{seed}"
            runs.append((run_id, "id", backbone, "cdl", 100, seed))
            rows += chip_rows(run_id, "cdl", counts)
    chips, table = chips_frame(rows), runs_frame(runs)
    one_seed = comparisons(chips.filter(pl.col("run_id").str.ends_with("-s0")), table, CLASSES, SMALL)
    assert one_seed.height == 3
    for got in one_seed.iter_rows(named=True):
        assert got["difference"] == 0.0 and got["ci_low"] == 0.0 and got["ci_high"] == 0.0
        assert got["p_value"] == 1.0 and not got["supported"]
    two_seeds = comparisons(chips, table, CLASSES, SMALL)
    for got in two_seeds.iter_rows(named=True):
        assert got["difference"] == pytest.approx(0.0, abs=1e-15) and got["seeds_a"] == got["seeds_b"] == 2
        assert got["ci_low"] < 0.0 < got["ci_high"] and not got["supported"] and got["p_value"] > 0.05
    COMPARISONS_SCHEMA.validate(one_seed)
    COMPARISONS_SCHEMA.validate(two_seeds)


def test_a_clearly_better_backbone_is_supported() -> None:
    chips, runs = two_backbones(seeds=2)
    table = comparisons(chips, runs, CLASSES, SMALL)
    assert table.columns == list(COMPARISONS_SCHEMA.columns)
    assert table["test_source"].unique().to_list() == ["cdl"]  # only the target's own test set, not nccm
    assert table.select("comparison", "a", "b").unique().rows() == [("backbone", "imagenet", "ssl4eo")]
    assert table["backbone"].null_count() == table.height and set(table["k"].to_list()) == {100}
    spread = intervals(chips, runs, CLASSES, SMALL)
    for got in table.iter_rows(named=True):
        assert got["supported"] and got["ci_low"] > 0.0
        assert got["p_value"] == pytest.approx(2 / (SMALL.resamples + 1))
        mean_a = row(spread, backbone="imagenet", test_source="cdl", metric=got["metric"])["mean"]
        mean_b = row(spread, backbone="ssl4eo", test_source="cdl", metric=got["metric"])["mean"]
        assert (got["mean_a"], got["mean_b"]) == (mean_a, mean_b)
        assert got["difference"] == pytest.approx(mean_b - mean_a, rel=1e-12)
        assert got["ci_low"] <= got["difference"] <= got["ci_high"]


def test_k_pairs_per_backbone_and_none_for_a_single_size() -> None:
    rng = np.random.default_rng(5)
    rows: list[tuple[object, ...]] = []
    runs: list[Run] = []
    for k, accuracy in ((10, 0.6), (100, 0.7), (900, 0.9)):
        run_id = f"id-ssl4eo-cdl-k{k}"
        runs.append((run_id, "id", "ssl4eo", "cdl", k, 0))
        rows += chip_rows(run_id, "cdl", chip_counts(rng, 15, accuracy))
    runs.append(("ood-ssl4eo-cdl", "ood", "ssl4eo", "cdl", 0, 0))  # k = 0: one size, no pair
    rows += chip_rows("ood-ssl4eo-cdl", "cdl", chip_counts(rng, 15, 0.5))
    table = comparisons(chips_frame(rows), runs_frame(runs), CLASSES, SMALL)
    assert set(table["comparison"].to_list()) == {"k"} and set(table["protocol"].to_list()) == {"id"}
    pairs = table.filter(pl.col("metric") == "oa").select("a", "b").rows()
    assert pairs == [("10", "100"), ("10", "900"), ("100", "900")]  # sorted as text, pairs k_a < k_b
    assert set(table["backbone"].to_list()) == {"ssl4eo"} and table["k"].null_count() == table.height
    assert row(table, metric="oa", a="10", b="900")["supported"]
    COMPARISONS_SCHEMA.validate(table)


# ------------------------------------------------------------------ schemas, errors, speed


def test_schemas_refuse_duplicates_and_bad_values() -> None:
    chips, runs = two_backbones()
    table = intervals(chips, runs, CLASSES, SMALL)
    with pytest.raises(Exception, match="unique"):
        INTERVALS_SCHEMA.validate(pl.concat([table, table.head(1)]))
    with pytest.raises(Exception, match=r"in \[0, 1\]"):
        INTERVALS_SCHEMA.validate(table.with_columns(pl.col("mean") + 2.0))
    paired = comparisons(chips, runs, CLASSES, SMALL)
    with pytest.raises(Exception, match="supported"):
        COMPARISONS_SCHEMA.validate(paired.with_columns(pl.lit(False).alias("supported")))
    empty = intervals(chips.head(0), runs, CLASSES, SMALL)
    assert empty.height == 0 and empty.schema == table.schema
    COMPARISONS_SCHEMA.validate(comparisons(chips.head(0), runs, CLASSES, SMALL))


def test_bad_inputs_are_named() -> None:
    chips, runs = two_backbones()
    renamed = chips.with_columns(pl.col("predicted_class").replace("maize", "corn"))
    with pytest.raises(ValueError, match=r"\['corn'\]"):
        intervals(renamed, runs, CLASSES, SMALL)
    with pytest.raises(ValueError, match="not in runs: \\['id-ssl4eo-cdl-k100-s0'\\]"):
        intervals(chips, runs.filter(pl.col("backbone") == "imagenet"), CLASSES, SMALL)
    with pytest.raises(ValueError, match="more than once"):
        intervals(chips, pl.concat([runs, runs]), CLASSES, SMALL)
    with pytest.raises(ValueError, match="same seed"):
        comparisons(chips, runs.with_columns(pl.lit("x").alias("backbone")), CLASSES, SMALL)
    with pytest.raises(ValueError, match="unknown metric"):
        intervals(chips, runs, CLASSES, SMALL, metrics=("oa", "kappa"))
    with pytest.raises(ValueError, match="lacks columns \\['pixels'\\]"):
        intervals(chips.drop("pixels"), runs, CLASSES, SMALL)
    with pytest.raises(ValueError, match="level"):
        BootstrapSettings(level=1.0)


def test_one_run_of_100_chips_and_1000_resamples_takes_well_under_a_second() -> None:
    chips = chips_frame(chip_rows("r", "cdl", chip_counts(np.random.default_rng(6), 100, 0.8)))
    runs = runs_frame([("r", "id", "ssl4eo", "cdl", 100, 0)])
    intervals(chips, runs, CLASSES, BootstrapSettings())  # warm
    start = time.perf_counter()
    intervals(chips, runs, CLASSES, BootstrapSettings())
    assert time.perf_counter() - start < 1.0
