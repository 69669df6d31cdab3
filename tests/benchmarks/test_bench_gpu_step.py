"""Smoke test of benchmarks/bench_gpu_step.py at its --tiny size on the CPU (seconds; the GPU run is minutes)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest
import torch

from tests.benchmarks.scripts import load_benchmark

CONFIGS = {"32-true", "32-true, channels_last", "bf16-mixed", "bf16-mixed, channels_last"}


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("bench_gpu_step")


def finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def test_tiny_run_prints_and_returns_finite_ratios(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = ["--tiny", "--device", "cpu", "--repeats", "1", "--warmup", "1", "--steps", "2", "--input-batches", "2"]
    threads = torch.get_num_threads()
    try:
        result = bench.main([*argv, "--workdir", str(tmp_path), "--json", str(out)])
    finally:  # --tiny runs torch on 1 thread; the tests after this one get theirs back
        torch.set_num_threads(threads)

    assert result["size"] == "tiny" and result["device"] == "cpu" and result["chip_px"] == 64
    assert result["model"]["encoder_depth"] == 3 and result["model"]["in_channels"] == 13
    assert result["batch"] == {
        "image": {"shape": [4, 13, 64, 64], "dtype": "torch.float32"},
        "mask": {"shape": [4, 64, 64], "dtype": "torch.int64"},
    }
    assert set(result["configs"]) == CONFIGS
    for row in result["configs"].values():
        assert "error" not in row, row
        assert len(row["ours"]["step_s_runs"]) == 1 and len(row["ceiling"]["step_s_runs"]) == 1
        assert row["ceiling_over_ours"] == pytest.approx(row["ceiling"]["step_s"] / row["ours"]["step_s"])
    ratios = result["ratios"]
    for kind in ("step_ceiling_over_ours", "step_best_runs", "ours_speedup_vs_fp32", "ceiling_speedup_vs_fp32"):
        assert set(ratios[kind]) == CONFIGS and all(finite_positive(v) for v in ratios[kind].values())
    assert ratios["ours_speedup_vs_fp32"]["32-true"] == 1.0
    assert set(ratios["input_ours_over_torchgeo"]) == {"torchgeo_w0"}
    assert finite_positive(ratios["input_ours_over_torchgeo"]["torchgeo_w0"])
    paths = result["input"]["paths"]
    assert paths["ours"]["batch"] == paths["torchgeo_w0"]["batch"] == result["batch"]
    assert paths["ours"]["samples"] == paths["torchgeo_w0"]["samples"] == 8
    assert result["torch_threads"] == 1 and result["rss_peak_mb"]["at_end"] > 0
    written = json.loads(out.read_text())
    for kind, values in ratios.items():
        assert written["ratios"][kind] == pytest.approx(values)
    printed = capsys.readouterr().out
    assert "gpu step (tiny) on cpu" in printed and "threads: torch " in printed
    assert "ratio ceiling / ours step time (target >= 0.9): 32-true " in printed
    assert "ratio ours / torchgeo_w0: " in printed


def test_sizes_fill_what_the_command_line_leaves(bench: ModuleType) -> None:
    tiny = bench.parse_args(["--tiny"])
    assert (tiny.size, tiny.batch_size, tiny.chip_px, tiny.crop_px, tiny.encoder_depth) == ("tiny", 4, 64, 64, 3)
    assert tiny.decoder_channels == (32, 16, 16) and tiny.workers == [0] and tiny.threads == 1
    full = bench.parse_args(["--full", "--device", "cpu", "--batch-size", "8", "--encoder-depth", "4"])
    assert (full.size, full.batch_size, full.chip_px, full.encoder_depth) == ("full", 8, 256, 4)
    assert full.decoder_channels == (256, 128, 64, 32) and full.threads == 0  # smp's default, cut to the depth
    assert bench.parse_args([]).size == ("full" if torch.cuda.is_available() else "tiny")


def test_help_and_bad_options(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        bench.parse_args(["--help"])
    printed = capsys.readouterr().out
    assert done.value.code == 0 and "--tiny" in printed and "--full" in printed and "--precisions" in printed
    bad = [
        ["--chip-px", "48"],
        ["--tiny", "--decoder-channels", "32", "16"],
        ["--precisions", "bf16-mixed"],
        ["--memory-formats", "channels_last"],
        ["--tiny", "--full"],
    ]
    if not torch.cuda.is_available():
        bad.append(["--device", "cuda"])
    for argv in bad:
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
