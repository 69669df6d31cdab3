"""The chip grid, box overlap and the shared reader behaviour in curation.sources.base."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform

from curation.core.errors import CropharmonyError
from curation.core.registry import SourceInfo
from curation.sources.base import Bounds, ChipGrid, LabelSource, SourceError, format_bounds, intersects

UTM = CRS.from_epsg(32633)


def write_chip(path: Path, crs: CRS | None, transform_: Affine, width: int = 7, height: int = 5) -> None:
    profile = {"driver": "GTiff", "dtype": "uint16", "count": 2, "width": width, "height": height}
    with rasterio.open(path, "w", **profile, crs=crs, transform=transform_) as dst:
        dst.write(np.zeros((2, height, width), dtype=np.uint16))


def test_bounds_and_shape_of_a_north_up_grid() -> None:
    grid = ChipGrid(UTM, from_origin(500000, 5100000, 10, 10), width=256, height=128)
    assert grid.bounds == (500000, 5100000 - 1280, 500000 + 2560, 5100000)
    assert grid.shape == (128, 256)
    assert grid.chip_id == ""


def test_bounds_of_a_south_up_grid_are_still_min_max() -> None:
    grid = ChipGrid(UTM, Affine(10, 0, 500000, 0, 10, 5100000), width=4, height=3)
    assert grid.bounds == (500000, 5100000, 500040, 5100030)


def test_bounds_in_another_crs_cover_every_pixel_centre() -> None:
    grid = ChipGrid(UTM, from_origin(420000, 5110000, 10, 10), 256, 256)
    minx, miny, maxx, maxy = grid.bounds_in(CRS.from_epsg(4326))
    assert 13.9 < minx < maxx < 14.1 and 46.0 < miny < maxy < 46.2
    rows, cols = np.indices(grid.shape)
    xs, ys = (grid.transform * Affine.translation(0.5, 0.5)) @ (cols.ravel(), rows.ravel())
    lons, lats = (np.asarray(v) for v in transform(UTM, CRS.from_epsg(4326), xs, ys))
    assert lons.min() > minx and lons.max() < maxx and lats.min() > miny and lats.max() < maxy
    # the densified box is tight: within one 10 m pixel of the centres
    assert lons.min() - minx < 0.0002 and maxx - lons.max() < 0.0002
    assert lats.min() - miny < 0.0001 and maxy - lats.max() < 0.0001
    assert grid.bounds_in(UTM) == grid.bounds


def test_of_raster_reads_the_grid_and_the_stem(tmp_path: Path) -> None:
    path = tmp_path / "2021_chip_0042.tif"
    write_chip(path, UTM, from_origin(500000, 5100000, 10, 10))
    grid = ChipGrid.of_raster(path)
    assert grid == ChipGrid(UTM, from_origin(500000, 5100000, 10, 10), 7, 5, "2021_chip_0042")
    assert grid.bounds == (500000, 5099950, 500070, 5100000)
    assert ChipGrid.of_raster(path, chip_id="custom").chip_id == "custom"


def test_of_raster_without_crs_raises(tmp_path: Path) -> None:
    path = tmp_path / "no_crs.tif"
    write_chip(path, None, from_origin(0, 0, 10, 10))
    with pytest.raises(SourceError, match="CRS present: the raster has no CRS") as info:
        ChipGrid.of_raster(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, CropharmonyError)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (5, 5, 15, 15), True),  # overlap
        ((0, 0, 10, 10), (2, 2, 3, 3), True),  # containment
        ((0, 0, 10, 10), (-5, 4, 20, 6), True),  # a band across
        ((0, 0, 10, 10), (10, 0, 20, 10), False),  # shared edge: no area
        ((0, 0, 10, 10), (10, 10, 20, 20), False),  # shared corner
        ((0, 0, 10, 10), (11, 0, 20, 10), False),  # apart in x
        ((0, 0, 10, 10), (0, -8, 10, -1), False),  # apart in y
        ((0, 0, 10, 10), (3, 12, 4, 14), False),  # overlapping in x only
    ],
)
def test_intersects(a: Bounds, b: Bounds, expected: bool) -> None:
    assert intersects(a, b) is expected
    assert intersects(b, a) is expected


def test_format_bounds() -> None:
    assert format_bounds((-106095.0, 1792605.0, 0.000123456789, 45.5)) == "(-106095, 1.7926e+06, 0.000123457, 45.5)"


class Dummy(LabelSource):
    info = SourceInfo(
        name="dummy",
        title="Dummy",
        region="Nowhere",
        continent="Europe",
        years=(2021,),
        licence="CC0",
        citation="-",
        doi="",
        kind="raster",
        layout="<root>/dummy_<year>.tif",
        study_name="dummy",
    )

    def files(self) -> Sequence[Path]:
        found = sorted(self.root.glob("dummy_*.tif"))
        if not found:
            raise self._no_files("dummy_*.tif")
        return found

    def read_labels(self, grid: ChipGrid) -> npt.NDArray[np.integer]:
        return np.zeros(grid.shape, dtype=np.uint8)


def test_source_info_defaults_the_crosswalk_to_the_name() -> None:
    assert Dummy.info.crosswalk == "dummy.csv"
    assert SourceInfo(**{**Dummy.info.__dict__, "crosswalk": "paper/dummy.csv"}).crosswalk == "paper/dummy.csv"


def test_missing_root_names_the_source_and_the_layout(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        Dummy(tmp_path / "absent")
    message = str(info.value)
    assert str(tmp_path / "absent") in message
    assert "source 'dummy'" in message and "<root>/dummy_<year>.tif" in message


def test_a_file_is_not_a_root(tmp_path: Path) -> None:
    (tmp_path / "dummy_2021.tif").write_bytes(b"")
    with pytest.raises(SourceError, match="raw root exists"):
        Dummy(tmp_path / "dummy_2021.tif")


def test_no_files_message_names_root_pattern_and_layout(tmp_path: Path) -> None:
    source = Dummy(tmp_path)
    assert repr(source) == f"Dummy(root={str(tmp_path)!r})"
    with pytest.raises(SourceError) as info:
        source.files()
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: file pattern: no file matches dummy_*.tif for source 'dummy'")
    assert "<root>/dummy_<year>.tif" in message
