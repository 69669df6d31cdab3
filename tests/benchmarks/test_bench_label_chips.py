"""Smoke test of benchmarks/bench_label_chips.py on a tiny raster (the real run is minutes; this is seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest
import rasterio

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


@pytest.mark.parametrize("evict", [True, False], ids=["evict", "no-evict"])
def test_conus_mode_on_a_small_mosaic_reports_the_ratio_on_identical_chips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], evict: bool
) -> None:
    bench = load_script()
    out = tmp_path / "conus.json"
    argv = ["--conus", "--conus-size", "8192x4096", "--tile", "2048", "--block", "256", "--chips", "6",
            "--gdal-chips", "4", "--repeats", "2", "--synthetic-tile", "--workdir", str(tmp_path)]  # fmt: skip
    result = bench.main([*argv, *([] if evict else ["--no-evict"]), "--json", str(out)])

    assert result["evict"] is evict
    assert result["raster_px"] == [8192, 4096] and result["tile"] == "synthetic"
    assert result["identical_to_gdal"] == 4
    assert len(result["ratio_runs"]) == 2 and all(math.isfinite(r) and r > 0 for r in result["ratio_runs"])
    assert result["ours_per_chip_s"] > 0 and result["plain_read_per_chip_s"] > 0
    assert result["study_memory_gb"] == pytest.approx(16 * 8192 * 4096 / 1e9)
    vrt = tmp_path / "conus" / "2023_30m_cdls.tif"
    assert vrt.read_text(encoding="utf-8").startswith("<VRTDataset") and vrt.stat().st_size < 100_000
    with rasterio.open(vrt) as src:
        assert (src.width, src.height, src.crs.to_epsg()) == (8192, 4096, 5070)
    assert json.loads(out.read_text())["ratio"] == pytest.approx(result["ratio"])
    printed = capsys.readouterr().out
    assert "ratio ours / plain read: " in printed and "chips identical: 4/4" in printed
    assert ("another window read before each timed read" in printed) is evict


def test_conus_chips_alternate_web_mercator_and_their_utm_zone() -> None:
    bench = load_script()
    grids = bench.conus_grids(151552, 98304, 6, 256, 0)
    assert [g.crs.to_epsg() == 3857 for g in grids] == [True, False] * 3
    assert all(32610 <= g.crs.to_epsg() <= 32619 for g in grids[1::2])
    assert all(g.transform.c % 10 == 0 and g.transform.f % 10 == 0 for g in grids)
