"""The fast raster read (`sample`, `warp_window`, `read_labels`) against GDAL's warp (`warp_window_gdal`), pixel for
pixel on seeded random grids, and the dataset handles it keeps open (once per process, thread and reader)."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform
from rasterio.windows import Window
from rasterio.windows import transform as rasterio_window_transform

from curation.sources import raster, raster_bulk, raster_grid, raster_warp
from curation.sources.base import ChipGrid, SourceError
from curation.sources.cdl import CDL
from curation.sources.raster import RasterFile, RasterLabelSource, open_raster_file, warp_window, warp_window_gdal
from curation.sources.south_america_soybean import SouthAmericaSoybean

ALBERS, WEB, UTM15, UTM21, WGS84 = (CRS.from_epsg(c) for c in (5070, 3857, 32615, 32721, 4326))
CDL_ORIGIN = (105.0, 2_299_995.0)  # on CDL's 30 m grid, in Iowa
SAS_ORIGIN = (-55.5, -12.5)  # Mato Grosso, as the fixture
SAS_RES = 0.00025
SIZE = 400  # product pixels a side


def write_product(path: Path, crs: CRS, affine: Affine, seed: int, size: int = SIZE) -> Path:
    """A seeded product: blocky fields of many codes with speckle, tiled like the real ones."""
    rng = np.random.default_rng(seed)
    fields = rng.integers(1, 250, size=(size // 9 + 1, size // 9 + 1), dtype=np.uint8)
    data = np.repeat(np.repeat(fields, 9, axis=0), 9, axis=1)[:size, :size]
    speckle = rng.random((size, size)) < 0.05
    data[speckle] = rng.integers(1, 250, size=int(speckle.sum()), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "dtype": "uint8", "count": 1, "width": size, "height": size, "crs": crs,
               "transform": affine, "tiled": True, "blockxsize": 128, "blockysize": 128,
               "compress": "deflate"}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


@pytest.fixture(scope="module")
def cdl_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cdl")
    write_product(root / "2023_30m_cdls.tif", ALBERS, from_origin(*CDL_ORIGIN, 30, 30), seed=1)
    return root


@pytest.fixture(scope="module")
def sas_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sas")
    write_product(root / "SouthAmerica_Soybean_2021.tif", WGS84, from_origin(*SAS_ORIGIN, SAS_RES, SAS_RES), seed=2)
    return root


class Fallbacks:
    """Counts the chips the fast read hands to GDAL (where its steps cannot be repeated with certainty)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = raster.nearest

        def counted(*args: Any) -> object:  # noqa: ANN401
            try:
                return original(*args)
            except raster_grid.NotReproducible:
                self.count += 1
                raise

        monkeypatch.setattr(raster, "nearest", counted)


def product(root: Path) -> RasterFile:
    (path,) = sorted(root.glob("*.tif"))
    return open_raster_file(path)


def random_grid(rng: np.random.Generator, file: RasterFile, crs: CRS, res: float, size: int, edge: bool) -> ChipGrid:
    """A chip of `size` px at `res` in `crs`, at a seeded place: inside the product, or over one of its edges."""
    left, bottom, right, top = file.bounds
    if edge:  # a centre within a chip's width of an edge, either side
        side = rng.integers(4)
        reach = size * res if crs == file.crs else size * res / (111_000 if file.crs.is_geographic else 1)
        across = rng.uniform(-0.6, 0.6) * reach
        along = rng.uniform(0.1, 0.9)
        cx = [left + across, right + across, left + along * (right - left), left + along * (right - left)][side]
        cy = [bottom + along * (top - bottom)] * 2 + [bottom + across, top + across]
        cy = cy[side]
    else:
        cx = rng.uniform(left + 0.3 * (right - left), right - 0.3 * (right - left))
        cy = rng.uniform(bottom + 0.3 * (top - bottom), top - 0.3 * (top - bottom))
    (x,), (y,) = transform(file.crs, crs, [cx], [cy])
    x0, y0 = x - size * res / 2 + rng.uniform(-1, 1) * res, y + size * res / 2 + rng.uniform(-1, 1) * res
    return ChipGrid(crs, Affine(res, 0, x0, 0, -res, y0), size, size, "chip")


def same(file: RasterFile, grid: ChipGrid) -> None:
    """The fast read gives GDAL's pixels, or both give nothing."""
    expected, got = warp_window_gdal(file, grid), warp_window(file, grid)
    assert (expected is None) == (got is None), grid
    if expected is not None and got is not None:
        differ = int((expected != got).sum())
        assert differ == 0, f"{differ} pixels differ on {grid.crs.to_string()} {grid.transform} {grid.shape}"


def run(grids: Iterator[ChipGrid], file: RasterFile) -> int:
    n = 0
    for grid in grids:
        same(file, grid)
        n += 1
    return n


# ---------------------------------------------------------------- one CRS: GDAL's arithmetic, bit for bit


@pytest.mark.parametrize("edge", [False, True], ids=["inside", "over-an-edge"])
def test_one_crs_aligned_shifted_and_odd_resolutions(
    cdl_root: Path, edge: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = product(cdl_root)
    fallbacks = Fallbacks(monkeypatch)
    rng = np.random.default_rng(10 + edge)
    left, top = CDL_ORIGIN

    def grids() -> Iterator[ChipGrid]:
        for i in range(60):
            res = [30.0, 10.0, 7.3, 13.7, 45.1, 20.0][i % 6]
            size = [64, 128, 256, 37][i % 4]
            grid = random_grid(rng, file, ALBERS, res, size, edge)
            if i % 3 == 0:  # on the product's own grid (10 m chips: on its 10 m sub-grid), or half a pixel off it
                step = 10.0 if res == 10.0 else 30.0
                shift = [0.0, step / 2][i % 2]
                x0 = left + round((grid.transform.c - left) / step) * step + shift
                y0 = top + round((grid.transform.f - top) / step) * step + shift
                grid = ChipGrid(ALBERS, Affine(res, 0, x0, 0, -res, y0), size, size)
            yield grid

    assert run(grids(), file) == 60
    assert fallbacks.count == 0


def test_one_crs_rotated_chip(cdl_root: Path) -> None:
    file = product(cdl_root)
    left, top = CDL_ORIGIN
    for angle in (0.5, 7.0, -20.0):
        rotated = Affine.translation(left + 3000, top - 3000) @ Affine.rotation(angle) @ Affine.scale(10, -10)
        same(file, ChipGrid(ALBERS, rotated, 200, 150))


# ---------------------------------------------------------------- other CRSs: PROJ within rounding, edges exact


@pytest.mark.parametrize("crs", [WEB, UTM15], ids=["EPSG:3857", "UTM-15N"])
@pytest.mark.parametrize("edge", [False, True], ids=["inside", "over-an-edge"])
def test_chips_in_another_crs_on_an_albers_product(
    cdl_root: Path, crs: CRS, edge: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = product(cdl_root)
    fallbacks = Fallbacks(monkeypatch)
    rng = np.random.default_rng(20 + edge + 2 * (crs == UTM15))
    n = 40
    grids = (
        random_grid(rng, file, crs, [10.0, 10.0, 30.0, 7.3][i % 4], [256, 64, 130, 33][i % 4], edge) for i in range(n)
    )
    assert run(grids, file) == n
    assert fallbacks.count <= (n // 10 if edge else 0)


@pytest.mark.parametrize("crs", [WEB, UTM21, WGS84], ids=["EPSG:3857", "UTM-21S", "EPSG:4326"])
@pytest.mark.parametrize("edge", [False, True], ids=["inside", "over-an-edge"])
def test_chips_on_a_geographic_product(sas_root: Path, crs: CRS, edge: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    file = product(sas_root)
    fallbacks = Fallbacks(monkeypatch)
    rng = np.random.default_rng(30 + edge + 2 * [WEB, UTM21, WGS84].index(crs))
    n = 30
    res = [SAS_RES / 3, SAS_RES * 0.77] if crs == WGS84 else [10.0, 25.0]
    grids = (random_grid(rng, file, crs, res[i % 2], [256, 64, 120][i % 3], edge) for i in range(n))
    assert run(grids, file) == n
    assert fallbacks.count <= (n // 10 if edge else 0)


def test_a_chip_hanging_over_a_corner_is_halved_as_gdal_halves_it(cdl_root: Path) -> None:
    file = product(cdl_root)
    left, bottom, _, _ = file.bounds
    (x,), (y,) = transform(ALBERS, WEB, [left + 300], [bottom + 300])
    grid = ChipGrid(WEB, from_origin(x - 2300, y + 300, 10, 10), 256, 256)  # a small share of it on the product
    window = raster.padded_window(file, raster.chip_box(grid, file.crs))
    assert window is not None
    data = raster.read_window(file, window)
    mapping = raster_warp.Mapping(grid.transform, raster.window_affine(file.transform, window), None)
    bulk, _ = raster._projections(grid, file.crs)
    mapping.project = bulk
    plan = raster_warp.chunks(mapping, data.shape[1], data.shape[0], (0, 0, 256, 256))
    assert len(plan) > 1
    same(file, grid)


def test_rows_near_a_pixel_edge_are_mapped_again_as_gdal_maps_them(
    cdl_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a screen that flags every row, every row goes through GDAL's own CRS transformation: same pixels."""
    file = product(cdl_root)
    monkeypatch.setattr(raster_bulk, "RISK", 0.49)
    rng = np.random.default_rng(40)
    for i in range(6):
        same(file, random_grid(rng, file, [WEB, UTM15][i % 2], 10.0, 96, edge=False))


class Paths:
    """Counts the chips `across` leaves to the exact path (it returns None), and the rows it maps again exactly."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.general = self.rows = 0
        across, map_rows = raster_grid.across, raster_bulk.map_rows

        def counted_across(*args: Any) -> object:  # noqa: ANN401
            got = across(*args)
            self.general += got is None
            return got

        def counted_rows(*args: Any) -> object:  # noqa: ANN401
            self.rows += 1
            return map_rows(*args)

        monkeypatch.setattr(raster_grid, "across", counted_across)
        monkeypatch.setattr(raster_bulk, "map_rows", counted_rows)


def test_a_screen_flagging_some_rows_maps_those_again_and_keeps_the_others(
    cdl_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At RISK 1e-4 px about one row in twenty has a coordinate that close to an edge: both kinds of row are GDAL's."""
    file = product(cdl_root)
    monkeypatch.setattr(raster_bulk, "RISK", 1e-4)
    paths = Paths(monkeypatch)
    rng = np.random.default_rng(41)
    for i in range(8):
        same(file, random_grid(rng, file, [WEB, UTM15][i % 2], 10.0, 128, edge=False))
    assert paths.general == 0
    assert 0 < paths.rows < 8 * 128 // 4


def test_fixed_point_floors_are_exact_away_from_edges_and_flag_every_row_near_one() -> None:
    """`floor_index` against float64 floors, with coordinates put at 0 to 10 RISK from a pixel edge, either side."""
    rng = np.random.default_rng(42)
    h, w, width, risk = 60, 50, 97, raster_bulk.RISK
    start = rng.uniform(25, 60, (2, h))
    step = rng.uniform(-0.4, 0.4, (2, h))
    for r, off in enumerate([0.0, 0.3, -0.3, 0.9, -0.9, 1.5, -1.5, 3.5, -3.5, 10.0] * 3):
        axis, j = r % 2, int(rng.integers(w))
        value = start[axis, r] + step[axis, r] * j + raster_warp.FLOOR_EPS
        start[axis, r] += np.floor(value) + 1 + off * risk - value  # that pixel's coordinate `off` RISK from an edge
    index, near = raster_bulk.floor_index(start, step, w, width)
    coords = start[:, :, None] + step[:, :, None] * np.arange(w) + raster_warp.FLOOR_EPS  # (2, h, w), as GDAL floors
    expected = np.floor(coords[1]).astype(np.intp) * width + np.floor(coords[0]).astype(np.intp)
    closest = np.abs(coords - np.rint(coords)).min(axis=(0, 2))  # per row, the coordinate nearest a pixel edge
    flagged = np.zeros(h, dtype=bool) if near is None else near
    assert flagged[closest < risk].all() and flagged[closest < risk].size >= 9  # within RISK: mapped again, always
    assert not flagged[closest > 3 * risk].any()  # the screen is 2 RISK wide: rows farther off keep their floors
    assert np.array_equal(index[~flagged], expected[~flagged])


def test_windows_beyond_the_fixed_point_range_take_the_exact_path(
    cdl_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = product(cdl_root)
    monkeypatch.setattr(raster_bulk, "LIMIT", 16)  # every window is larger: none is held in fixed point
    paths = Paths(monkeypatch)
    fallbacks = Fallbacks(monkeypatch)
    rng = np.random.default_rng(43)
    for i in range(6):
        same(file, random_grid(rng, file, [WEB, UTM15][i % 2], 10.0, 96, edge=False))
    assert paths.general == 6 and fallbacks.count == 0


# ---------------------------------------------------------------- read_labels: mosaics and the product's edge


def oracle_labels(source: RasterLabelSource, grid: ChipGrid) -> npt.NDArray[np.integer]:
    """read_labels as it was: GDAL's warp per file, first file first, fill_code beyond the product."""
    index = source.index()
    mosaic: npt.NDArray[np.int64] | None = None
    for file in index:
        warped = warp_window_gdal(file, grid)
        if warped is None:
            continue
        if mosaic is None:
            mosaic = warped
        else:
            empty = mosaic < 0
            mosaic[empty] = warped[empty]
    assert mosaic is not None and not (mosaic < 0).all()
    mosaic[mosaic < 0] = source.fill_code
    return mosaic.astype(np.dtype(index[0].dtype))


@pytest.fixture(scope="module")
def tiled_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four overlapping tiles of different codes, named so that they sort in a known order (first file first)."""
    root = tmp_path_factory.mktemp("tiles")
    left, top = CDL_ORIGIN
    for k, (col, row) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        corner = (left + col * 150 * 30, top - row * 150 * 30)  # 200 px tiles every 150 px: 50 px overlaps
        write_product(root / "tiles" / f"{k}" / "2023_30m_cdls.tif", ALBERS, from_origin(*corner, 30, 30), k, 200)
    return root


def test_a_mosaic_of_overlapping_tiles_first_file_first(tiled_root: Path) -> None:
    source = CDL(tiled_root, year=2023)
    assert len(source.files()) == 4
    left, top = CDL_ORIGIN
    bounds = (left, top - 350 * 30, left + 350 * 30, top)
    union = RasterFile(Path("mosaic"), ALBERS, from_origin(left, top, 30, 30), 350, 350, bounds, "uint8")
    rng = np.random.default_rng(50)
    for i in range(24):
        crs = [ALBERS, WEB, UTM15][i % 3]
        grid = random_grid(rng, union, crs, [10.0, 30.0][i % 2], [128, 64, 200][i % 3], edge=i % 4 == 0)
        try:
            expected = oracle_labels(source, grid)
        except AssertionError:
            continue  # entirely off the mosaic
        assert np.array_equal(source.read_labels(grid), expected), grid


@pytest.mark.parametrize("reader", [CDL, SouthAmericaSoybean])
def test_read_labels_fills_beyond_the_product(reader: type[RasterLabelSource], cdl_root: Path, sas_root: Path) -> None:
    root = cdl_root if reader is CDL else sas_root
    source = reader(root)
    file = source.index()[0]
    rng = np.random.default_rng(60)
    for i in range(10):
        grid = random_grid(rng, file, [WEB, UTM15 if reader is CDL else UTM21][i % 2], 10.0, 200, edge=True)
        try:
            expected = oracle_labels(source, grid)
        except AssertionError:
            with pytest.raises(SourceError, match="inside product"):
                source.read_labels(grid)
            continue
        got = source.read_labels(grid)
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


# ---------------------------------------------------------------- the helpers keep rasterio's numbers


def test_chip_box_and_window_affine_are_rasterios(cdl_root: Path, sas_root: Path) -> None:
    rng = np.random.default_rng(70)
    for root in (cdl_root, sas_root):
        file = product(root)
        for crs in (WEB, UTM15, WGS84, file.crs):
            grid = random_grid(rng, file, crs, 10.0 if not crs.is_geographic else 1e-4, 100, edge=False)
            assert raster.chip_box(grid, file.crs) == grid.bounds_in(file.crs)
    window = Window(17, 33, 90, 91)
    affine = from_origin(*CDL_ORIGIN, 30, 30)
    with pytest.warns(PendingDeprecationWarning):  # rasterio multiplies with `*`: the reason for window_affine
        expected = rasterio_window_transform(window, affine)
    assert raster.window_affine(affine, window) == expected


# ---------------------------------------------------------------- dataset handles


class Opens:
    """Counts rasterio.open calls, by path."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        original = rasterio.open

        def counted(path: object, *args: Any, **kwargs: Any) -> object:  # noqa: ANN401
            self.paths.append(str(path))
            return original(path, *args, **kwargs)

        monkeypatch.setattr(rasterio, "open", counted)


def chips(file: RasterFile, n: int) -> list[ChipGrid]:
    rng = np.random.default_rng(80)
    return [random_grid(rng, file, WEB, 10.0, 64, edge=False) for _ in range(n)]


def test_a_reader_opens_each_file_once_for_its_header_and_every_chip(
    cdl_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opens = Opens(monkeypatch)
    source = CDL(cdl_root)
    grids = chips(source.index()[0], 20)
    for grid in grids:
        source.read_labels(grid)
    assert len(opens.paths) == 1
    raster.close_datasets()  # closed handles reopen on the next read, once
    for grid in grids:
        source.read_labels(grid)
    assert len(opens.paths) == 2


_FORKED: dict[str, Any] = {}  # what a forked child finds in its copy of the parent's memory


def _read_in_child() -> tuple[int, int, list[bytes]]:
    source, grids, opens = _FORKED["source"], _FORKED["grids"], _FORKED["opens"]
    before = len(opens.paths)
    labels = [source.read_labels(grid).tobytes() for grid in grids]
    return os.getpid(), len(opens.paths) - before, labels


def test_a_fork_opens_its_own_handle_and_leaves_the_parents_alone(
    cdl_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    opens = Opens(monkeypatch)
    source = CDL(cdl_root)
    grids = chips(source.index()[0], 5)
    expected = [source.read_labels(grid).tobytes() for grid in grids]
    assert len(opens.paths) == 1
    _FORKED.update(source=source, grids=grids, opens=opens)  # the very objects, not pickled copies
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pid, child_opens, labels = pool.apply(_read_in_child)
    _FORKED.clear()
    assert pid != os.getpid() and child_opens == 1 and labels == expected
    assert [source.read_labels(grid).tobytes() for grid in grids] == expected  # the parent's handle still reads
    assert len(opens.paths) == 1


def test_threads_read_through_handles_of_their_own(cdl_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opens = Opens(monkeypatch)
    source = CDL(cdl_root)
    grids = chips(source.index()[0], 8)
    expected = [source.read_labels(grid) for grid in grids]
    got: dict[int, list[npt.NDArray[np.integer]]] = {}

    def work(k: int) -> None:
        got[k] = [source.read_labels(grid) for grid in grids]

    workers = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert all(np.array_equal(a, b) for k in got for a, b in zip(got[k], expected, strict=True))
    assert len(opens.paths) == 1 + 3


@pytest.mark.parametrize("how", ["renamed over", "rewritten in place"])
def test_a_file_replaced_on_disk_is_read_afresh_by_a_new_reader(tmp_path: Path, how: str) -> None:
    path = write_product(tmp_path / "2023_30m_cdls.tif", ALBERS, from_origin(*CDL_ORIGIN, 30, 30), seed=3)
    old = CDL(tmp_path)
    grid = chips(old.index()[0], 1)[0]
    before = old.read_labels(grid)
    if how == "renamed over":
        new_file = write_product(tmp_path / "new" / "x.tif", ALBERS, from_origin(*CDL_ORIGIN, 30, 30), seed=4)
        new_file.replace(path)
    else:
        write_product(path, ALBERS, from_origin(*CDL_ORIGIN, 30, 30), seed=4)
    fresh = CDL(tmp_path)
    after = fresh.read_labels(grid)
    assert not np.array_equal(before, after)
    assert np.array_equal(after, oracle_labels(fresh, grid))


def test_a_read_error_names_the_file_and_drops_the_handle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_product(tmp_path / "2023_30m_cdls.tif", ALBERS, from_origin(*CDL_ORIGIN, 30, 30), seed=5)
    source = CDL(tmp_path)
    file = source.index()[0]
    grid = chips(file, 1)[0]

    def broken(*args: object, **kwargs: object) -> None:
        raise rasterio.errors.RasterioIOError("Read or write failed")

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", broken)
    with pytest.raises(SourceError, match="readable GeoTIFF") as info:
        source.read_labels(grid)
    assert str(path) in str(info.value)
    monkeypatch.undo()
    assert np.array_equal(source.read_labels(grid), oracle_labels(source, grid))


def test_many_files_keep_a_bounded_number_open(tmp_path: Path) -> None:
    files = [
        open_raster_file(write_product(tmp_path / f"{k}.tif", ALBERS, from_origin(*CDL_ORIGIN, 30, 30), k, 64))
        for k in range(raster.MAX_HANDLES + 5)
    ]
    for file in files:
        raster.dataset(file)
    assert len(raster._handles()) <= raster.MAX_HANDLES
