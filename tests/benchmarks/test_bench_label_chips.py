"""Smoke test of benchmarks/bench_label_chips.py on a tiny raster (the real run is minutes; this is seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmarks.scripts import load_benchmark


def load_script() -> ModuleType:
    return load_benchmark("bench_label_chips")


def test_tiny_run_reports_a_finite_ratio_on_identical_chips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script()
    out = tmp_path / "result.json"
    argv = ["--size", "600", "--chips", "5", "--chip-px", "64", "--repeats", "1", "--workdir", str(tmp_path)]
    result = bench.main([*argv, "--json", str(out)])

    assert result["identical_chips"] == 5
    assert math.isfinite(result["speedup"]) and result["speedup"] > 0
    for key in ("a_windowed_lut", "b_study_whole_raster"):
        assert len(result[key]["times_s"]) == 1
        assert result[key]["median_s"] > 0
    assert (tmp_path / "cdl" / "2023_30m_cdls.tif").is_file()
    assert json.loads(out.read_text())["speedup"] == pytest.approx(result["speedup"])
    printed = capsys.readouterr().out
    assert "speed-up: " in printed and "chips identical: 5/5" in printed


def test_the_synthetic_raster_is_cached_and_chips_lie_inside_it(tmp_path: Path) -> None:
    bench = load_script()
    path = tmp_path / "cdl" / "2023_30m_cdls.tif"
    bench.write_cdl(path, 300, 1)
    first = path.stat().st_mtime_ns
    bench.write_cdl(path, 300, 1)
    assert path.stat().st_mtime_ns == first
    grids = bench.chip_grids(300, 4, 32, 1)
    assert [g.crs.to_epsg() for g in grids] == [3857, 32615, 3857, 32615]
    assert len({g.transform for g in grids}) == 4
