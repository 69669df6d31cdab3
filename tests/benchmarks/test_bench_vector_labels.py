"""Smoke test of benchmarks/bench_vector_labels.py on tiny layers (the real run is minutes; this is seconds)."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pyogrio
import pytest
import shapely

from curation.sources.eurocrops import EuroCrops
from tests.benchmarks.scripts import load_benchmark

SIZES = (2_000, 6_000)


def load_script() -> ModuleType:
    return load_benchmark("bench_vector_labels")


def tiny(workdir: Path, *sizes: int) -> list[str]:
    parcels = [str(n) for n in sizes]
    return ["--parcels", *parcels, "--chips", "4", "--chip-px", "64", "--repeats", "1", "--workdir", str(workdir)]


def test_tiny_run_compares_identical_chips_and_reuses_the_layers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script()
    out = tmp_path / "result.json"
    result = bench.main([*tiny(tmp_path, *SIZES), "--json", str(out)])

    assert [s["parcels"] for s in result["sizes"]] == list(SIZES)
    for size in result["sizes"]:
        assert size["chips"] == 4 and size["baseline_chips"] == 4 and size["identical_chips"] == 4
        assert len(size["a_per_chip_s"]) == 4 and len(size["b_per_chip_s"]) == 4
        assert math.isfinite(size["ratio_b_over_a"]) and size["ratio_b_over_a"] > 0
        assert size["layer"]["written_now"] and size["layer"]["zip_bytes"] > 0
        assert size["index"]["build_s"] >= 0 and (size["index"]["build_s"] > 0) == size["index"]["has_index_layers"]
    assert math.isfinite(result["a_growth"]) and result["a_growth"] > 0
    assert json.loads(out.read_text())["a_growth"] == pytest.approx(result["a_growth"])
    printed = capsys.readouterr().out
    assert "chips identical: 8/8" in printed and "speed-up B/A at 6,000 parcels: " in printed

    zipped = bench.layer_root(tmp_path, 2_000, 0) / "SI_2021.zip"
    before = zipped.stat().st_mtime_ns
    again = bench.main(tiny(tmp_path, 2_000))
    assert not again["sizes"][0]["layer"]["written_now"]
    assert zipped.stat().st_mtime_ns == before
    assert again["sizes"][0]["b_per_chip_s"] != []


def test_the_layer_is_a_eurocrops_release_zip_of_valid_hcat_codes(tmp_path: Path) -> None:
    bench = load_script()
    root, record, written = bench.ensure_layer(tmp_path, 2_000, 3)
    assert written and record["parcels"] == 2_000
    assert sorted(p.name for p in root.iterdir()) == ["HCAT2.csv", "SI_2021.zip"]
    with zipfile.ZipFile(root / "SI_2021.zip") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == [f"SI_2021_EC21{ext}" for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg")]
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    assert EuroCrops(root, year=2021).files() == [root / "SI_2021.zip"]

    frame = pyogrio.read_dataframe(f"/vsizip/{root}/SI_2021.zip/SI_2021_EC21.shp")
    assert len(frame) == 2_000 and frame.crs.to_epsg() == 3794
    assert frame["EC_hcat_c"].dropna().map(type).eq(str).all()  # text, as the releases keep it
    codes = bench.frozen_parse_codes(frame["EC_hcat_c"].to_list())
    assert set(codes.tolist()) - {0} <= set(bench.legend_names()) and (codes == 0).any()
    kinds = set(frame.geom_type)
    assert kinds == {"Polygon", "MultiPolygon"}
    assert (~shapely.is_valid(frame.geometry.to_numpy())).sum() < 0.01 * len(frame)
    area_ha = frame.area.to_numpy() / 1e4
    assert 1.0 < np.median(area_ha) < 3.0

    assert bench.ensure_layer(tmp_path, 2_000, 3)[2] is False  # cached by size and seed
    assert bench.ensure_layer(tmp_path, 2_000, 4)[2] is True


def test_chips_sit_at_the_same_relative_places_in_every_size(tmp_path: Path) -> None:
    bench = load_script()
    places = bench.chip_places(6, 0)
    small = bench.chip_grids((0.0, 0.0, 10_000.0, 10_000.0), places, 64)
    large = bench.chip_grids((0.0, 0.0, 40_000.0, 40_000.0), places, 64)
    assert [g.crs.to_epsg() for g in small] == [3794, 3857] * 3
    for a, b in zip(small[::2], large[::2], strict=True):  # layer-CRS chips: the same share of the extent
        for axis, (lo, hi) in ((0, (0, 2)), (1, (1, 3))):  # the chip's centre less the margin, over the range
            u_small = ((a.bounds[lo] + a.bounds[hi]) / 2 - 640) / 8_720
            u_large = ((b.bounds[lo] + b.bounds[hi]) / 2 - 640) / 38_720
            assert u_large == pytest.approx(u_small, abs=2e-3), axis
    with pytest.raises(ValueError, match="need a layer wider"):
        bench.chip_grids((0.0, 0.0, 1_000.0, 1_000.0), places, 64)
