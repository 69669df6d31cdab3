"""Label windows are read once: validate's reads are reused by chips, and a cached window is always a fresh read's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from curation.core.cache import cache_root
from curation.inputs import label_windows
from curation.sources.base import ChipGrid, LabelSource
from curation.sources.cdl import CDL
from curation.validate import stage as validate
from tests.curation.stage_world import ALL_SOURCES, CHIP_PRODUCTS, demo_world, shared_params
from tests.curation.test_chips import run_chips
from tests.curation.test_validate import validate_params

CDL_CRS = "EPSG:5070"


def write_cdl(root: Path, seed: int) -> Path:
    """A small seeded CDL-like raster with many distinct codes (so the packed index needs more than a few values)."""
    path = root / "2023_30m_cdls.tif"
    root.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 256, size=(200, 200), dtype=np.uint8)
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 1, "width": 200, "height": 200, "crs": CDL_CRS,
               "transform": from_origin(105.0, 2_299_995.0, 30, 30)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def grid() -> ChipGrid:
    return ChipGrid(rasterio.crs.CRS.from_string(CDL_CRS), from_origin(1_000.0, 2_298_000.0, 10, 10), 64, 64, "c")


class Counting:
    """Counts a reader's `read_labels` calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type[LabelSource]) -> None:
        self.calls = 0
        original = cls.read_labels

        def counted(reader: LabelSource, grid: ChipGrid) -> np.ndarray:
            self.calls += 1
            return original(reader, grid)

        monkeypatch.setattr(cls, "read_labels", counted)


def test_a_window_is_read_once_and_equals_a_fresh_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    write_cdl(tmp_path / "cdl", seed=0)
    fresh = CDL(tmp_path / "cdl", year=2023).read_labels(grid())
    counter = Counting(monkeypatch, CDL)
    first = label_windows.read_window(CDL(tmp_path / "cdl", year=2023), grid())
    again = label_windows.read_window(CDL(tmp_path / "cdl", year=2023), grid())  # a new reader: another process
    assert counter.calls == 1
    assert first.dtype == again.dtype == fresh.dtype and np.array_equal(again, fresh)
    stored = list((cache_root() / "labels").rglob("*.npz"))
    assert len(stored) == 1 and stored[0].stat().st_size < fresh.nbytes


def test_a_changed_product_or_another_grid_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    write_cdl(tmp_path / "cdl", seed=0)
    counter = Counting(monkeypatch, CDL)
    before = label_windows.read_window(CDL(tmp_path / "cdl", year=2023), grid())
    write_cdl(tmp_path / "cdl", seed=1)  # the same file name, other codes
    after = label_windows.read_window(CDL(tmp_path / "cdl", year=2023), grid())
    assert counter.calls == 2 and not np.array_equal(before, after)
    assert np.array_equal(after, CDL(tmp_path / "cdl", year=2023).read_labels(grid()))
    shifted = ChipGrid(grid().crs, from_origin(1_010.0, 2_298_000.0, 10, 10), 64, 64, "c")
    label_windows.read_window(CDL(tmp_path / "cdl", year=2023), shifted)
    assert counter.calls == 4  # 3 through the cache, 1 direct read above


def test_a_torn_entry_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    write_cdl(tmp_path / "cdl", seed=0)
    reader = CDL(tmp_path / "cdl", year=2023)
    expected = label_windows.read_window(reader, grid())
    (entry,) = (cache_root() / "labels").rglob("*.npz")
    entry.write_bytes(entry.read_bytes()[:40])
    counter = Counting(monkeypatch, CDL)
    assert np.array_equal(label_windows.read_window(CDL(tmp_path / "cdl", year=2023), grid()), expected)
    assert counter.calls == 1


def test_chips_reuses_every_window_validate_read(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the tiny world (every source, in process): after validate, chips reads no label window of a product."""
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    world = demo_world(tmp_path_factory)
    shared = shared_params(world)
    validate.check(shared, validate_params(tmp_path))
    from curation.sources import SOURCES

    counters = {name: Counting(monkeypatch, SOURCES[name]) for name in ALL_SOURCES}
    built = run_chips(tmp_path, shared)
    assert built.manifest.height > 0
    for name, counter in counters.items():
        if name in CHIP_PRODUCTS:
            assert counter.calls > 0, name  # a chip's labels are one small file of its own: not cached
        else:
            assert counter.calls == 0, name


def test_a_change_in_a_sidecar_alone_is_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An .aux.xml beside the raster can change what GDAL reads (here: nothing), so it is part of the key."""
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    tif = write_cdl(tmp_path / "cdl", seed=0)
    before = CDL(tmp_path / "cdl", year=2023).content_key()
    tif.with_name(tif.name + ".aux.xml").write_text("<PAMDataset></PAMDataset>\n", encoding="utf-8")
    after = CDL(tmp_path / "cdl", year=2023).content_key()
    assert before is not None and after is not None and before != after
