"""Smoke test of benchmarks/bench_chips.py on a tiny world (the real run is minutes; this is seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmarks.scripts import load_benchmark


def load_script() -> ModuleType:
    return load_benchmark("bench_chips")


def test_tiny_run_reports_a_finite_scaling_on_identical_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script()
    out = tmp_path / "result.json"
    argv = ["--chip-px", "16", "--chips-per-source", "1", "--repeats", "1", "--no-fixed-cost"]
    result = bench.main([*argv, "--workdir", str(tmp_path), "--json", str(out)])

    assert result["chips"] == 6 and result["identical_manifests"] == 3
    assert set(result["modes"]) == {"local_1", "local_2", "synchronous"}
    for row in result["modes"].values():
        assert len(row["times_s"]) == 1 and row["median_s"] > 0
        assert row["chips_per_s"] == pytest.approx(6 / row["median_s"])
        assert "fixed_s" not in row
    assert math.isfinite(result["scaling"]) and result["scaling"] > 0
    assert result["scaling"] == pytest.approx(
        result["modes"]["local_2"]["chips_per_s"] / result["modes"]["local_1"]["chips_per_s"]
    )
    assert json.loads(out.read_text())["scaling"] == pytest.approx(result["scaling"])
    for mode in ("local_1", "local_2", "synchronous"):
        assert (tmp_path / f"chips-{mode}" / "manifest.parquet").is_file()
    assert (tmp_path / "reports" / "chips.json").is_file()  # the stage's report lands in the work folder
    printed = capsys.readouterr().out
    assert "scaling (2 workers / 1 worker): " in printed and "manifests identical: 3/3" in printed
    assert "synchronous (in-process, reference)" in printed
    assert len(result["floor_per_chip_s_runs"]) == 1 and result["floor_per_chip_s"] > 0
    assert result["floor_ratio"] == pytest.approx(result["per_chip_1_worker_s"] / result["floor_per_chip_s"])
    assert result["per_chip_1_worker_s"] == pytest.approx(result["modes"]["local_1"]["median_s"] / 6)
    assert "floor_ratio_without_fixed" not in result  # --no-fixed-cost: no rate without it
    assert "1 worker per chip / floor (copy the image, read the labels: " in printed
    assert not (tmp_path / "floor").exists()  # the floor's copies are removed


def test_the_world_is_cached_while_its_params_match(tmp_path: Path) -> None:
    bench = load_script()
    args = bench.parse_args(["--chip-px", "16", "--chips-per-source", "1", "--workdir", str(tmp_path)])
    params = bench.demo_params(args, tmp_path / "raw")
    assert bench.ensure_world(params) > 0
    stamp = tmp_path / "raw" / "DEMO_WORLD.json"
    first = stamp.stat().st_mtime_ns
    assert bench.ensure_world(params) == 0.0 and stamp.stat().st_mtime_ns == first
    assert bench.ensure_world(params.model_copy(update={"seed": 1})) > 0
    assert json.loads(stamp.read_text())["seed"] == 1


def test_the_in_process_stage_run_counts_every_chip(tmp_path: Path) -> None:
    bench = load_script()
    args = bench.parse_args(["--chip-px", "16", "--chips-per-source", "2", "--workdir", str(tmp_path)])
    params = bench.demo_params(args, tmp_path / "raw")
    bench.ensure_world(params)
    shared = bench.shared_params(params.out, 16, "synchronous", 1)
    seconds, done = bench.run_stage(shared, tmp_path / "chips", tmp_path)
    assert done == 12 and seconds > 0
    row = bench.mode_row([seconds, 2 * seconds], done, [seconds / 2])
    assert row["median_s"] == pytest.approx(1.5 * seconds) and row["fixed_s"] == pytest.approx(seconds / 2)
    assert row["chips_per_s_without_fixed"] == pytest.approx(done / seconds)


def test_one_worker_is_not_a_comparison() -> None:
    bench = load_script()
    with pytest.raises(SystemExit):
        bench.parse_args(["--workers", "1"])
