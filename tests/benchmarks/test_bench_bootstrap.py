"""Smoke test of benchmarks/bench_bootstrap.py at a tiny size (the real run is seconds; this is under one)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from tests.benchmarks.scripts import load_benchmark
from training.intervals import batch_scores

TINY = ["--chips", "8", "--resamples", "40", "--test-sources", "2", "--backbones", "2", "--sizes", "10", "100"]


def load_script() -> ModuleType:
    return load_benchmark("bench_bootstrap")


def test_tiny_run_matches_the_baseline_and_reports_the_report_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script()
    out = tmp_path / "result.json"
    result = bench.main([*TINY, "--seeds", "2", "--repeats", "1", "--json", str(out)])

    one = result["one_run"]
    assert one["chips"] == 8 and one["resamples"] == 40 and one["intervals_identical"] == 3
    assert one["target_met"] and math.isfinite(one["speedup"]) and one["speedup"] > 0
    assert len(one["ours_s"]) == 1 and len(one["baseline_s"]) == 1
    report = result["report"]
    assert report["runs"] == 2 * 2 * 2 * 2  # targets x backbones x sizes x seeds
    assert report["scored_pairs"] == report["runs"] * 2  # every run on every test source
    assert report["intervals_rows"] == 2 * 2 * 2 * 2 * 3  # cells (targets x backbones x sizes x tests) x metrics
    assert report["comparisons_rows"] == 2 * (2 + 2) * 3  # per target: a backbone pair per k, a k pair per backbone
    assert result["rss_peak_mb"] >= result["rss_after_one_run_mb"] > 0
    assert set(result["threads"]) >= {"OMP_NUM_THREADS", "POLARS_MAX_THREADS"}
    assert json.loads(out.read_text())["one_run"]["intervals_identical"] == 3
    printed = capsys.readouterr().out
    assert "intervals identical: 3/3; speed-up B/A: " in printed and "A under 1 s: met" in printed
    assert "OMP_NUM_THREADS=" in printed and "peak RSS MB" in printed and "report: 16 runs x 2 test sources" in printed


def test_skip_report_times_the_one_run_case_only() -> None:
    result = load_script().main([*TINY, "--repeats", "1", "--skip-report"])
    assert "report" not in result and result["one_run"]["intervals_identical"] == 3


def test_help_describes_the_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        load_script().main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--resamples" in text and "--machine-speed" in text and "baseline" in text


def test_synthetic_chips_are_valid_confusions_of_the_asked_accuracy() -> None:
    bench = load_script()
    counts = bench.chip_counts(np.random.default_rng(0), 200, 0.8)
    assert counts.shape == (200, 6, 6) and (counts >= 0).all() and (counts[:, 0] == 0).all()
    assert (counts[:, 1:].sum(axis=(1, 2)) > 0).all() and counts[:, 1:, 0].sum() > 0  # ignore predicted sometimes
    assert batch_scores(counts.sum(axis=0)[None], ["oa"])["oa"][0] == pytest.approx(0.8, abs=0.03)
    frame = bench.chip_frame("r", "cdl", counts)
    assert frame.columns == ["run_id", "test_source", "chip_id", "target_class", "predicted_class", "pixels"]
    assert frame["pixels"].sum() == counts.sum() and (frame["pixels"] > 0).all()
    assert frame["chip_id"].n_unique() == 200 and frame["chip_id"].min() == "cdl_0000"
