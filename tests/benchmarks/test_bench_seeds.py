"""bench_seeds.py: its help, and a tiny run on a generated chip world with a narrowed params file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.benchmarks.scripts import load_benchmark
from tests.training.conftest import ROOT, train_section
from tests.training.world import BANDS, SOURCES, make_world


def test_help_describes_the_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        load_benchmark("bench_seeds").main(["--help"])
    assert "extra seed" in capsys.readouterr().out


def test_tiny_run_times_every_seed_count(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _, subsets = make_world(data / "chips")
    (data / "subsets").mkdir()
    subsets.write_parquet(data / "subsets" / "subsets.parquet")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"] = train_section()
    params["shared"]["sources"] = {name: params["shared"]["sources"][name] for name in SOURCES}
    params["shared"].update(bands=list(BANDS), legends_dir=str(ROOT / params["shared"]["legends_dir"]))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["--seeds", "2", "--entry", "id", "ssl4eo", "cdl", "2", "--params", str(tmp_path / "params.yaml")]
    result = load_benchmark("bench_seeds").main([*argv, "--data", str(data)])
    one, two = result["rows"]
    assert (one["seeds"], one["runs"], two["seeds"], two["runs"]) == (1, 1, 2, 2)
    assert one["total_s"] > 0 and two["total_s"] > 0 and one["extra_seed_share"] == 0.0
    assert two["extra_seed_share"] == pytest.approx((two["total_s"] - one["total_s"]) / one["total_s"])
    assert two["scaling"] == pytest.approx(two["total_s"] / (2 * one["total_s"]))
    assert result["peak_rss_mb"] > 0


def test_without_subsets_it_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="dvc repro subsets"):
        load_benchmark("bench_seeds").main(["--data", str(tmp_path)])
