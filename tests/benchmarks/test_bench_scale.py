"""Smoke test of benchmarks/bench_scale.py on a tiny world (the real run is about half an hour; this is a minute)."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.benchmarks.scripts import load_benchmark

TINY = ["--chips-per-source", "6", "--chip-px", "64", "--parcels", "2000", "--repeats", "1"]


def load_script() -> ModuleType:
    return load_benchmark("bench_scale")


def test_tiny_run_measures_both_stages_the_copy_and_dvc_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script()
    out = tmp_path / "result.json"
    result = bench.main([*TINY, "--workdir", str(tmp_path / "work"), "--json", str(out)])

    assert result["chips"] == 36
    for stage in ("validate", "chips"):  # every chip of every source went through both stages (which exited 0)
        assert result["chips_processed"][stage] == dict.fromkeys(result["sources"], 6)
        row = result["stages"][stage]
        for key in ("wall_s", "ms_per_chip", "ratio_vs_copy", "maxrss_mb", "stage_peak_mb", "worker_peak_mb"):
            assert math.isfinite(row[key]) and row[key] > 0, key
        assert row["ms_per_chip"] == pytest.approx(row["wall_s"] * 1000 / 36)
        assert row["ratio_vs_copy"] == pytest.approx(row["ms_per_chip"] / result["copy"]["ms_per_chip"])
        assert row["ratio_vs_fastest_copy"] == pytest.approx(row["ms_per_chip"] / result["copy"]["fastest_ms_per_chip"])
        assert row["workers_seen"] == 2  # the profile's local cluster: its worker processes were measured
    world = result["world"]
    assert world["generated"] and world["imagery_files"] == 4 * 6 + 2 * 6 * 12  # chip files + products' band files
    assert 1.0 < world["disk_ratio"] < 10 and world["peak_disk_bytes"] >= world["disk_bytes"] > 0
    footprint = result["footprint"]
    assert footprint["disk_bytes"] == sum(footprint["parts_disk_bytes"].values()) >= world["disk_bytes"]
    assert footprint["parts_disk_bytes"]["world"] == world["disk_bytes"] and footprint["disk_ratio"] > 1.0
    assert result["targets"]["disk_le_1_2x"] == (footprint["disk_ratio"] <= 1.2)
    assert result["copy"]["files"] == world["imagery_files"] and result["copy"]["median_s"] > 0
    assert result["dvc"]["up_to_date"] and math.isfinite(result["dvc"]["status_median_s"])
    assert "demo" not in result["dvc"]["status_all_stages_listed"]  # committed: only never-run stages are listed
    assert result["targets"]["rss_lt_2gb"] and result["targets"]["dvc_status_lt_10s"]
    assert json.loads(out.read_text())["stages"]["chips"]["wall_s"] == pytest.approx(
        result["stages"]["chips"]["wall_s"]
    )
    assert not (tmp_path / "work" / "copy-scratch").exists()  # the baseline's copy is removed
    printed = capsys.readouterr().out
    assert "footprint of the run (each inode once)" in printed
    assert "plain copy (168 image files)" in printed and "'Data and pipelines are up to date.'" in printed

    project = tmp_path / "work" / "project"
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert bench.world_matches(project / "data" / "demo", params["demo"])  # a second run reuses it
    assert not bench.world_matches(project / "data" / "demo", params["demo"] | {"parcels": 3000})
    assert json.loads((project / "data" / "demo" / "DEMO_WORLD.json").read_text())["parcels"] == 2000


def test_the_profile_is_the_study_size_and_the_options_override_it() -> None:
    bench = load_script()
    profile = yaml.safe_load(bench.PROFILE.read_text())
    demo = profile["demo"]
    assert (demo["chip_px"], demo["chips_per_source"], demo["parcels"]) == (256, 1100, 1_000_000)
    assert profile["shared"]["chip_px"] == 256
    assert profile["shared"]["raw_root"] == profile["demo"]["out"]
    params = bench.project_params(bench.parse_args([*TINY, "--workers", "1"]))
    assert (params["shared"]["chip_px"], params["demo"]["chip_px"], params["demo"]["parcels"]) == (64, 64, 2000)
    assert params["demo"]["chips_per_source"] == 6 and params["shared"]["dask"]["workers"] == 1
    with pytest.raises(SystemExit):
        bench.parse_args(["--parcels", "0"])


def test_imagery_and_disk_use_count_hard_links_once(tmp_path: Path) -> None:
    bench = load_script()
    world = tmp_path / "world"
    chip = world / "sentinel2" / "cdl" / "2023_1_2.tif"
    band = world / "agrifieldnet" / "source" / "x" / "x_B8A_10m.tif"
    label = world / "agrifieldnet" / "train_labels" / "x.tif"
    for path in (chip, band, label):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10_000)
    os.link(chip, tmp_path / "linked.tif")
    keep = bench.is_imagery(world)
    assert [keep(p) for p in (chip, band, label)] == [True, True, False]
    usage = bench.DiskUse()
    disk, apparent, files = usage.add(world, keep)
    assert files == 2 and apparent == 20_000 and disk >= 20_000
    assert usage.add(tmp_path, lambda p: p.name == "linked.tif") == (0, 10_000, 1)  # same inode as the chip


def test_measure_polls_every_process_of_the_tree(tmp_path: Path) -> None:
    bench = load_script()
    code = (
        "import multiprocessing as mp, time\n"
        "def hold():\n    block = bytearray(200 * 1024 * 1024); time.sleep(1.5)\n"
        "if __name__ == '__main__':\n"
        "    mp.set_start_method('spawn'); p = mp.Process(target=hold); p.start(); p.join(); raise SystemExit(3)\n"
    )
    script = tmp_path / "tree.py"
    script.write_text(code)
    run = bench.measure([sys.executable, str(script)], tmp_path, dict(os.environ), tmp_path / "log.txt")
    assert run.returncode == 3 and run.wall_s > 1.5
    assert run.count("stage") == 1 and run.count("worker") == 1
    assert run.peak("worker") > 200 and run.maxrss_mb > 200  # polled and exact (wait4) peaks see the child
    with pytest.raises(SystemExit, match="exit 3"):
        bench.require_ok(run, "tree")
