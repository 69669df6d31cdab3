"""Chip products read with a folder of 13-band chips: labels cut from the product on each chip's own grid.

Tiny seeded fixtures written by the tests: South Africa fields of 16 x 16 px at 10 m in UTM 34S (two side by side,
one far away) and one AgriFieldNet chip in UTM 43N. The reference cut is GDAL's own nearest warp of each label
raster onto the chip grid (`rasterio.warp.reproject`), mosaicked the field the chip id names first.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import reproject
from rasterio.warp import transform as warp_points

from curation.demo.writers import write_agrifieldnet_field, write_sact_field
from curation.sources import ChipGrid, SourceError
from curation.sources.agrifieldnet import AgriFieldNet
from curation.sources.agrifieldnet import label_path as afn_label_path
from curation.sources.chip_product import ChipProductSource
from curation.sources.south_africa_crop_type import SouthAfricaCropType, labels_dir

SIZE = 16
UTM34S = CRS.from_epsg(32734)
UTM43N = CRS.from_epsg(32643)
MERCATOR = CRS.from_epsg(3857)
FIELDS = {"10": (345000.0, 6230000.0), "11": (345160.0, 6230000.0), "12": (360000.0, 6218000.0)}  # (left, top)


def _labels(seed: int) -> npt.NDArray[np.uint8]:
    """Codes 1..9 (never 0, so a pixel read as 0 is one no label raster covers)."""
    return np.random.default_rng(seed).integers(1, 10, size=(SIZE, SIZE), dtype=np.uint8)


def _image() -> npt.NDArray[np.uint16]:
    return np.ones((13, SIZE, SIZE), dtype=np.uint16)


@pytest.fixture
def sact(tmp_path: Path) -> SouthAfricaCropType:
    for seed, (field, (left, top)) in enumerate(FIELDS.items()):
        write_sact_field(tmp_path, field, "2017_07_01", _labels(seed), _image(), UTM34S, from_origin(left, top, 10, 10))
    return SouthAfricaCropType(tmp_path)


def reference_cut(product: ChipProductSource, grid: ChipGrid, order: list[Path]) -> npt.NDArray[np.int64]:
    """GDAL's nearest warp of each label raster in `order` onto `grid`, first raster first; -1 where none covers."""
    out = np.full(grid.shape, -1, dtype=np.int64)
    for path in order:
        with rasterio.open(path) as src:
            warped = np.full(grid.shape, -1, dtype=np.int64)
            reproject(
                src.read(1).astype(np.int64), warped, src_transform=src.transform, src_crs=src.crs,
                dst_transform=grid.transform, dst_crs=grid.crs, resampling=Resampling.nearest, src_nodata=None,
                dst_nodata=-1, init_dest_nodata=False,
            )  # fmt: skip
        empty = out < 0
        out[empty] = warped[empty]
    return out


def mercator_grid_over(path: Path, px: int, chip_id: str, shift: tuple[float, float] = (0.0, 0.0)) -> ChipGrid:
    """A `px` x `px` chip at 10 m in EPSG:3857 centred on a label raster (moved by `shift` metres)."""
    with rasterio.open(path) as src:
        b = src.bounds
        x, y = warp_points(src.crs, MERCATOR, [(b.left + b.right) / 2], [(b.bottom + b.top) / 2])
    left = round((x[0] + shift[0]) / 10) * 10 - px * 5
    top = round((y[0] + shift[1]) / 10) * 10 + px * 5
    return ChipGrid(MERCATOR, Affine(10, 0, left, 0, -10, top), px, px, chip_id)


def test_labels_on_a_chip_grid_equal_a_reference_cut(sact: SouthAfricaCropType) -> None:
    path = labels_dir(sact.root) / "10.tif"
    grid = mercator_grid_over(path, 12, "2017_10")  # 120 m of Web Mercator: about 100 m on the ground, inside 160 m
    cut = sact.cut_labels(grid)
    assert cut.outside == 0 and cut.codes.dtype == np.uint8 and cut.codes.shape == (12, 12)
    expected = reference_cut(sact, grid, [path])
    assert (expected >= 0).all()
    np.testing.assert_array_equal(cut.codes, expected)
    assert sact._boxes is None  # its own field covered it whole: no other label raster's header was read


def test_a_chip_over_two_fields_takes_each_pixel_from_the_field_under_it(sact: SouthAfricaCropType) -> None:
    folder = labels_dir(sact.root)
    grid = ChipGrid(UTM34S, from_origin(345080.0, 6229920.0, 10, 10), 16, 8, "2017_10")  # half on 10, half on 11
    cut = sact.cut_labels(grid)
    expected = reference_cut(sact, grid, [folder / "10.tif", folder / "11.tif"])
    assert cut.outside == 0
    np.testing.assert_array_equal(cut.codes, expected)
    np.testing.assert_array_equal(cut.codes[:, :8], _labels(0)[8:16, 8:16])  # field 10's east half
    np.testing.assert_array_equal(cut.codes[:, 8:], _labels(1)[8:16, :8])  # field 11's west half
    anonymous = sact.cut_labels(replace(grid, chip_id="2017_033_-18"))
    np.testing.assert_array_equal(anonymous.codes, cut.codes)  # the place decides, not the name


def test_the_field_the_chip_id_names_is_read_first(tmp_path: Path) -> None:
    """Where two label rasters overlap, the chip's own field gives the pixel (torchgeo's first-file mosaic)."""
    ones, twos = np.full((SIZE, SIZE), 1, np.uint8), np.full((SIZE, SIZE), 2, np.uint8)
    write_sact_field(tmp_path, "1", "2017_07_01", ones, _image(), UTM34S, from_origin(345000, 6230000, 10, 10))
    write_sact_field(tmp_path, "2", "2017_07_01", twos, _image(), UTM34S, from_origin(345080, 6230000, 10, 10))
    sact = SouthAfricaCropType(tmp_path)
    grid = ChipGrid(UTM34S, from_origin(345080, 6230000, 10, 10), 8, 8)
    assert set(np.unique(sact.cut_labels(replace(grid, chip_id="2017_1")).codes)) == {1}
    assert set(np.unique(sact.cut_labels(replace(grid, chip_id="2017_2")).codes)) == {2}
    assert set(np.unique(sact.cut_labels(grid).codes)) == {1}  # no field named: field-id order


def test_a_chip_partly_outside_the_product_counts_the_pixels_no_label_covers(sact: SouthAfricaCropType) -> None:
    path = labels_dir(sact.root) / "12.tif"
    grid = mercator_grid_over(path, 16, "2017_12", shift=(0.0, 130.0))  # its top rows lie north of the field
    cut = sact.cut_labels(grid)
    expected = reference_cut(sact, grid, [path])
    uncovered = expected < 0
    assert 0 < int(uncovered.sum()) < grid.width * grid.height
    assert cut.outside == int(uncovered.sum())
    assert cut.outside_share == pytest.approx(uncovered.mean())
    assert (cut.codes[uncovered] == SouthAfricaCropType.no_data_code).all()
    np.testing.assert_array_equal(cut.codes[~uncovered], expected[~uncovered])


def test_a_chip_entirely_outside_the_product_is_refused_by_name(sact: SouthAfricaCropType) -> None:
    path = labels_dir(sact.root) / "12.tif"
    far = mercator_grid_over(path, 16, "2017_12", shift=(5000.0, 0.0))
    with pytest.raises(SourceError) as raised:
        sact.cut_labels(far)
    text = str(raised.value)
    assert "chip 2017_12: inside product labels: its bounds (" in text
    assert "in EPSG:3857 (lon/lat (19." in text
    assert f"touch none of the 3 label rasters of south_africa_crop_type under {sact.root}" in text
    assert "its id names 12.tif, which lies at (360000, 6.21784e+06, 360160, 6.218e+06) in EPSG:32734" in text
    assert "Fix: check the chip's georeference (its CRS and transform), or move the chip out of the image" in text
    anonymous = replace(far, chip_id="2017_somewhere")
    with pytest.raises(SourceError, match=r"chip 2017_somewhere: inside product labels: .*lon/lat \(19\.[^;]*$"):
        sact.cut_labels(anonymous)  # no field named: no sentence about one


def test_agrifieldnet_chips_cut_across_the_crs(tmp_path: Path) -> None:
    labels = _labels(7)
    write_agrifieldnet_field(tmp_path, "f2eb7", labels, _image(), UTM43N, from_origin(500000, 2960000, 10, 10))
    product = AgriFieldNet(tmp_path)
    path = afn_label_path(tmp_path, "f2eb7")
    grid = mercator_grid_over(path, 12, "2021_ref_agrifieldnet_competition_v1_labels_train_f2eb7")
    cut = product.cut_labels(grid)
    assert cut.outside == 0
    np.testing.assert_array_equal(cut.codes, reference_cut(product, grid, [path]))
    assert set(np.unique(cut.codes)) <= set(np.unique(labels))  # never a field number of the *_field_ids raster
