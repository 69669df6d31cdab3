"""Smoke test of benchmarks/bench_training_input.py on a tiny synthetic world (seconds; the real run is minutes)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.benchmarks.scripts import load_benchmark

TINY = ["--world", "synthetic", "--chip-px", "32", "--chips-per-source", "6", "--crop-px", "32", "--batch-size", "4"]


def load_script() -> ModuleType:
    return load_benchmark("bench_training_input")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script()


def test_tiny_run_yields_equal_batches_on_both_paths_and_a_ratio(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = [*TINY, "--batches", "3", "--repeats", "1", "--workers", "0", "--gpu", "--workdir", str(tmp_path)]
    result = bench.main([*argv, "--json", str(out)])

    assert result["world"] == "synthetic" and result["chips"] == 6 and result["chip_px"] == 32
    assert result["batch"] == {
        "image": {"shape": [4, 13, 32, 32], "dtype": "torch.float32"},
        "mask": {"shape": [4, 32, 32], "dtype": "torch.int64"},
    }
    assert set(result["paths"]) == {"ours", "torchgeo_w0"}
    for row in result["paths"].values():
        assert row["batch"] == result["batch"]
        assert row["samples_per_s"] > 0 and 0 < row["samples_per_s_with_one_off"] < row["samples_per_s"]
    ours, theirs = result["paths"]["ours"], result["paths"]["torchgeo_w0"]
    assert theirs["samples"] == 12 and ours["samples"] == 4 + 2 + 4  # ours: epochs of 6 chips, batches of 4 and 2
    assert ours["load_s_median"] > 0 and theirs["index_s_median"] > 0
    ratio = result["ratios"]["torchgeo_w0"]
    assert math.isfinite(ratio["ours_over_torchgeo"])
    assert ratio["ours_over_torchgeo"] == pytest.approx(ours["samples_per_s"] / theirs["samples_per_s"])
    reads = result["torchgeo_reads"]
    assert reads["files_per_query"] == {"1": 500} and reads["warped"] is False and reads["handles_needed"] == 12
    if not torch.cuda.is_available():
        assert "skipped" in result["gpu"]
    written = json.loads(out.read_text())
    assert written["ratios"]["torchgeo_w0"] == pytest.approx(ratio) and written["batch"] == result["batch"]
    assert (tmp_path / "world" / "manifest.parquet").is_file()
    printed = capsys.readouterr().out
    assert "ratio ours / torchgeo_w0: " in printed and "(identical on every path)" in printed


def test_the_world_is_cached_and_chips_do_not_touch(bench: ModuleType, tmp_path: Path) -> None:
    assert bench.synthetic_world(tmp_path, "cdl", 4, 32, 0) > 0
    stamp = tmp_path / "SYNTHETIC_WORLD.json"
    first = stamp.stat().st_mtime_ns
    assert bench.synthetic_world(tmp_path, "cdl", 4, 32, 0) == 0.0 and stamp.stat().st_mtime_ns == first
    manifest = bench.pl.read_parquet(tmp_path / "manifest.parquet")
    assert manifest.columns == ["chip_id", "source", "image_path", "label_path"] and manifest.height == 4
    dataset = bench.torchgeo_dataset(tmp_path, manifest)
    assert len(dataset.index) == 4  # one image-label pair per chip, no neighbour overlaps


def test_the_train_step_timer_runs_on_the_cpu(bench: ModuleType, tmp_path: Path) -> None:
    args = bench.parse_args([*TINY, "--batch-size", "2", "--repeats", "1", "--workdir", str(tmp_path)])
    root, manifest, _, _ = bench.resolve_world(args)
    bank = bench.load_bank(root, manifest, manifest["chip_id"].to_list())
    result = bench.train_step_rates(bank, args, torch.device("cpu"), steps=1, warmup=0)
    assert result["device"] == "cpu" and result["steps"] == 1 and result["batch_size"] == 2
    assert result["harness"]["samples_per_s"] > 0 and result["synthetic"]["samples_per_s"] > 0
    assert result["ratio"] == pytest.approx(result["harness"]["samples_per_s"] / result["synthetic"]["samples_per_s"])


def test_help_and_bad_crops(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        bench.parse_args(["--help"])
    assert done.value.code == 0 and "--crop-px" in capsys.readouterr().out
    for bad in (["--crop-px", "48"], ["--crop-scale", "0.6", "0.5"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
