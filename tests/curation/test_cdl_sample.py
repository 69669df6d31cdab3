"""Harmonizes the real CDL 2021 clip in ../shared/samples (skipped when absent)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio

from curation.core.legends import CrosswalkSet
from curation.core.remap import class_counts, remap_raster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip(samples: Path) -> np.ndarray:
    with rasterio.open(samples / "cdl_2021_clip" / "2021_30m_cdls.tif") as src:
        return src.read(1)


def csv_mapping(path: Path) -> dict[int, str]:
    with path.open(newline="") as handle:
        return {int(r["code"]): r["target"] for r in csv.DictReader(handle)}


def expected_counts(native: np.ndarray, mapping: dict[int, str], names: tuple[str, ...]) -> dict[str, int]:
    totals = dict.fromkeys(names, 0)
    for code in np.flatnonzero(native).tolist():
        totals[mapping[code]] += int(native[code])
    return totals


@pytest.mark.parametrize("set_name", ["toolkit", "paper"])
def test_harmonized_counts_equal_native_counts_summed_under_the_crosswalk(
    clip: np.ndarray, set_name: str, toolkit: CrosswalkSet, paper: CrosswalkSet
) -> None:
    crosswalk_set = toolkit if set_name == "toolkit" else paper
    native = np.bincount(clip.ravel(), minlength=256)
    assert native[1] == 95008 and native[5] == 203274 and native[26] == 37673  # facts in samples/README.md
    harmonized = remap_raster(clip, crosswalk_set["cdl"], where="2021_30m_cdls.tif")
    csv_path = ROOT / "curation" / "legends" / ("cdl.csv" if set_name == "toolkit" else "paper/cdl.csv")
    expected = expected_counts(native, csv_mapping(csv_path), crosswalk_set.taxonomy.names)
    assert class_counts(harmonized, crosswalk_set.taxonomy) == expected
    assert sum(expected.values()) == clip.size


def test_paper_set_sends_rice_and_code_26_to_other(
    clip: np.ndarray, toolkit: CrosswalkSet, paper: CrosswalkSet
) -> None:
    native = np.bincount(clip.ravel(), minlength=256)
    ours = class_counts(remap_raster(clip, toolkit["cdl"]), toolkit.taxonomy)
    theirs = class_counts(remap_raster(clip, paper["cdl"]), paper.taxonomy)
    assert ours["rice"] == native[3]
    assert theirs["rice"] == 0
    moved_to_other = [
        c
        for c in np.flatnonzero(native).tolist()
        if toolkit["cdl"].target_name(c) != "other" and paper["cdl"].target_name(c) == "other"
    ]
    assert 26 in moved_to_other
    assert theirs["other"] - ours["other"] == sum(int(native[c]) for c in moved_to_other)
    assert ours["ignore"] - theirs["ignore"] >= native[26] == 37673
    for cls in ("maize", "soybean", "wheat"):
        assert ours[cls] == theirs[cls]


def test_windowed_tiles_add_up_to_the_whole_clip(samples: Path, clip: np.ndarray, toolkit: CrosswalkSet) -> None:
    whole = class_counts(remap_raster(clip, toolkit["cdl"]), toolkit.taxonomy)
    tiles = dict.fromkeys(whole, 0)
    for path in sorted((samples / "cdl_2021_clip" / "tiles").glob("*.tif")):
        with rasterio.open(path) as src:
            for _, window in src.block_windows(1):
                counts = class_counts(remap_raster(src.read(1, window=window), toolkit["cdl"]), toolkit.taxonomy)
                for name, n in counts.items():
                    tiles[name] += n
    assert tiles == whole
