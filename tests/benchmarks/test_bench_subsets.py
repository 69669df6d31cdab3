"""Smoke test of benchmarks/bench_subsets.py on a small manifest (the real run is 10^6 rows; this is 6,000)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmarks.scripts import load_benchmark


def load_script() -> ModuleType:
    return load_benchmark("bench_subsets")


def test_small_run_compares_identical_pools_and_reports_a_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script()
    out = tmp_path / "result.json"
    argv = ["--rows", "6000", "--repeats", "1", "--test-size", "20", "--train-sizes", "5", "50", "200"]
    result = bench.main([*argv, "--json", str(out)])

    assert result["rows"] == 6000 and result["identical_pools"] == 6
    assert result["subsets_rows"] == 6 * (20 + 5 + 50 + 200)
    assert result["excluded_by_buffer"] > 0
    for key in ("speedup_exclusion", "speedup_select", "stage_plan_median_s"):
        assert math.isfinite(result[key]) and result[key] > 0
    assert json.loads(out.read_text())["pool_chips"] == result["pool_chips"]
    printed = capsys.readouterr().out
    assert "training pools identical: 6/6" in printed and "speed-up: exclusion " in printed


def test_the_baseline_exclusion_matches_the_spatial_hash() -> None:
    bench = load_script()
    frame = bench.manifest(1200, 0.5, 3)
    assert frame.height == 1200 and frame["source"].n_unique() == 6
    chips = bench.subsets.source_chips(frame.filter(frame["source"] == "cdl").sort("chip_id"), bench.CLASSES, 0.01)
    pool, test = chips.quads[50:], chips.quads[:50]
    for buffer_m in (0.0, 2560.0, 9000.0):
        assert (bench.naive_near(pool, test, buffer_m) == bench.splits.near(pool, test, buffer_m)).all()
