"""Parcel-layer spatial indexes: indexed reads equal a full-scan oracle; built once per content; bounded per chip.

The layers are generated here (seeded): overlapping parcels (so rasterizing order matters), a bowtie the reader
repairs, an empty geometry, parcels without a code, multipolygons, in a national CRS, on disk and in a release zip.
"""

from __future__ import annotations

import multiprocessing
import os
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyogrio
import pytest
import shapely
from pyogrio.errors import DataSourceError
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import from_origin

from curation.core.cache import cache_root
from curation.core.errors import SourceError
from curation.sources import layer_index as index_module
from curation.sources.base import ChipGrid
from curation.sources.eurocrops import EuroCrops
from curation.sources.vector import repaired

CRS_SI = "EPSG:3794"  # Slovenia's national CRS, as the real release
ORIGIN = (450_000.0, 100_000.0)
CELL = 150.0  # a parcel per 150 m cell: about 2 ha
SIDE = 60  # 60 x 60 cells: a 9 km square layer
CODES = ["3301010100", "3301010600", "3301060701", "3302000000", None, ""]


def write_layer(folder: Path, seed: int = 0, side: int = SIDE) -> Path:
    """A seeded EuroCrops-like shapefile: jittered quadrilaterals that overlap their neighbours a little."""
    rng = np.random.default_rng(seed)
    geoms: list[shapely.Geometry | None] = []
    for i in range(side * side):
        x0, y0 = ORIGIN[0] + (i % side) * CELL, ORIGIN[1] + (i // side) * CELL
        jitter = rng.uniform(-20, 20, size=(4, 2))
        corners = np.array([[0, 0], [CELL, 0], [CELL, CELL], [0, CELL]]) * 1.08 + jitter + (x0, y0)
        geoms.append(shapely.Polygon(corners))
    geoms[7] = shapely.Polygon([(ORIGIN[0], ORIGIN[1]), (ORIGIN[0] + 300, ORIGIN[1] + 300),
                                (ORIGIN[0] + 300, ORIGIN[1]), (ORIGIN[0], ORIGIN[1] + 300)])  # fmt: skip
    geoms[11] = shapely.Polygon()  # an empty geometry
    x, y = ORIGIN
    parts = [shapely.box(x + 1e3, y, x + 1.1e3, y + 90), shapely.box(x + 2e3, y, x + 2.1e3, y + 90)]
    geoms[13] = shapely.MultiPolygon(parts)
    codes = [CODES[k] for k in rng.integers(0, len(CODES), size=len(geoms))]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "SI_2021_EC21.shp"
    frame = gpd.GeoDataFrame({"EC_hcat_c": codes, "EC_trans_n": ["x"] * len(codes)}, geometry=geoms, crs=CRS_SI)
    pyogrio.write_dataframe(frame, path)
    return path


def zip_layer(shp: Path, target: Path) -> Path:
    """The layer in a release zip (inside a folder, as the real releases), the extracted files removed."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(shp.parent.glob(shp.stem + ".*")):
            archive.write(part, f"SI_2021/{part.name}")
            part.unlink()
    return target


def oracle(shp_or_uri: str, grid: ChipGrid) -> npt.NDArray[np.int64]:
    """Labels from the whole layer read into memory, no bbox filter, no index: every parcel rasterized in fid order."""
    frame = pyogrio.read_dataframe(shp_or_uri, columns=["EC_hcat_c"])
    out = np.zeros(grid.shape, dtype=np.int64)
    codes = [int(c) if isinstance(c, str) and c.strip() else 0 for c in frame["EC_hcat_c"]]
    fixed = gpd.GeoSeries(repaired(frame.geometry.to_numpy()), crs=frame.crs).to_crs(grid.crs.to_wkt())
    shapes = [(g, i + 1) for i, g in enumerate(fixed) if g is not None and not g.is_empty]
    index = rasterize(shapes, out_shape=grid.shape, transform=grid.transform, fill=0, dtype="int32")
    out[index > 0] = np.asarray(codes)[index[index > 0] - 1]
    return out


def random_grids(count: int, seed: int) -> list[ChipGrid]:
    """Grids of 64 px at 10 m in the layer's CRS, UTM 33N and Web Mercator, some straddling the layer's edge."""
    rng = np.random.default_rng(seed)
    crss = [CRS.from_user_input(CRS_SI), CRS.from_epsg(32633), CRS.from_epsg(3857)]
    grids = []
    extent = SIDE * CELL
    for i in range(count):
        x = ORIGIN[0] + rng.uniform(-400, extent - 200)  # some start west of (or run past) the layer's edge
        y = ORIGIN[1] + rng.uniform(-400, extent - 200)
        crs = crss[i % len(crss)]
        xs, ys = gpd.GeoSeries([shapely.Point(x, y)], crs=CRS_SI).to_crs(crs.to_wkt()).iloc[0].coords[0]
        grids.append(ChipGrid(crs, from_origin(xs, ys + 640, 10, 10), 64, 64, f"chip{i}"))
    return grids


@pytest.fixture(scope="module")
def disk_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_layer(tmp_path_factory.mktemp("si") / "SI" / "SI_2021")


def test_indexed_reads_equal_the_full_scan_oracle_on_disk_and_in_a_zip(disk_layer: Path, tmp_path: Path) -> None:
    root = disk_layer.parents[1]
    reader = EuroCrops(root, year=2021)
    grids = random_grids(12, seed=1)
    for grid in grids:
        assert np.array_equal(reader.read_labels(grid), oracle(str(disk_layer), grid)), grid.chip_id
    zipped_root = tmp_path / "zipped"
    zipped_root.mkdir()
    zip_layer(write_layer(tmp_path / "parts"), zipped_root / "SI_2021.zip")
    zipped = EuroCrops(zipped_root, year=2021)
    uri = f"/vsizip/{zipped_root / 'SI_2021.zip'}/SI_2021/SI_2021_EC21.shp"
    assert [layer.uri for layer in zipped.layers()] == [uri]
    for grid in grids:
        assert np.array_equal(zipped.read_labels(grid), oracle(uri, grid)), grid.chip_id


def test_overlapping_parcels_keep_the_source_order(disk_layer: Path) -> None:
    """The index is sorted by Hilbert code; a read sorts back by source feature id, so later parcels win."""
    reader = EuroCrops(disk_layer.parents[1], year=2021)
    layer = reader.layers()[0]
    frame = reader.layer_index(layer).read(layer.bounds, "EC_hcat_c")
    assert frame.index.to_list() == sorted(frame.index.to_list())
    assert len(frame) == SIDE * SIDE - 1  # the empty geometry has no extent, so no bbox holds it


def test_a_chip_reads_a_bounded_number_of_parcels(disk_layer: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read = index_module.LayerIndex.read
    seen: list[int] = []

    def counting(self: index_module.LayerIndex, bbox: tuple[float, float, float, float], column: str) -> object:
        frame = read(self, bbox, column)
        seen.append(len(frame))
        return frame

    monkeypatch.setattr(index_module.LayerIndex, "read", counting)
    reader = EuroCrops(disk_layer.parents[1], year=2021)
    grid = ChipGrid(CRS.from_user_input(CRS_SI), from_origin(ORIGIN[0] + 3000, ORIGIN[1] + 3640, 10, 10), 64, 64)
    reader.read_labels(grid)
    cells = (640 / CELL + 2) ** 2  # parcels whose jittered extent can meet a 640 m chip
    assert 0 < seen[0] <= cells < SIDE * SIDE / 50


def test_the_index_is_built_once_and_rebuilt_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    builds: list[str] = []
    build = index_module._build

    def counted(uri: str, columns: list[str], path: Path) -> dict[str, object]:
        builds.append(uri)
        return build(uri, columns, path)

    monkeypatch.setattr(index_module, "_build", counted)
    shp = write_layer(tmp_path / "root" / "SI", seed=0)
    grid = random_grids(1, seed=2)[0]
    first = EuroCrops(tmp_path / "root", year=2021).read_labels(grid)
    again = EuroCrops(tmp_path / "root", year=2021).read_labels(grid)  # a new reader, as a new process: cached
    os.utime(shp, ns=(1, 1))  # a touched file with the same bytes keeps its index (content, not time)
    EuroCrops(tmp_path / "root", year=2021).read_labels(grid)
    assert len(builds) == 1 and np.array_equal(first, again)
    write_layer(tmp_path / "root" / "SI", seed=5)  # new parcels and codes under the same name
    changed = EuroCrops(tmp_path / "root", year=2021).read_labels(grid)
    assert len(builds) == 2
    assert np.array_equal(changed, oracle(str(shp), grid)) and not np.array_equal(changed, first)
    assert len(list((tmp_path / "cache" / "layers").rglob("*.fgb"))) == 2
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]


def _build_in_child(root: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    reader = EuroCrops(root, year=2021)
    reader.index_layers()
    queue.put(str(reader.layer_index(reader.layers()[0]).path))


def test_concurrent_workers_build_one_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    write_layer(tmp_path / "root" / "SI")
    context = multiprocessing.get_context("spawn")  # as Dask's worker processes start
    queue = context.Queue()
    workers = [context.Process(target=_build_in_child, args=(str(tmp_path / "root"), queue)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0]
    paths = {queue.get(timeout=5) for _ in workers}
    assert len(paths) == 1 and len(list((tmp_path / "cache" / "layers").rglob("*.fgb"))) == 1


def test_the_build_counts_what_validate_reports(disk_layer: Path) -> None:
    reader = EuroCrops(disk_layer.parents[1], year=2021)
    layer = reader.layers()[0]
    index = reader.layer_index(layer)
    full = pyogrio.read_dataframe(str(disk_layer), columns=["EC_hcat_c"])
    geometry = full.geometry.to_numpy()
    empty = shapely.is_empty(geometry) | shapely.is_missing(geometry)
    assert index.features == len(full)
    assert index.invalid_geometries == int((~shapely.is_valid(geometry) & ~empty).sum()) == 1
    expected: dict[tuple[str | None, bool], int] = {}
    for value, is_empty in zip(full["EC_hcat_c"], empty, strict=True):
        code = value if isinstance(value, str) and value.strip() else None
        expected[(code, bool(is_empty))] = expected.get((code, bool(is_empty)), 0) + 1
    assert {(c.code, c.empty): c.parcels for c in index.codes} == expected
    assert all(list(c.examples) == sorted(c.examples) and len(c.examples) <= 5 for c in index.codes)
    assert next(c for c in index.codes if c.empty).examples == (11,)


def test_a_truncated_layer_counts_its_lost_parcels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL reads parcels past a cut .shp without geometry: counted as empty (validate's error), not dropped."""
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    shp = write_layer(tmp_path / "root" / "SI")
    with shp.open("r+b") as handle:
        handle.truncate(shp.stat().st_size // 2)
    reader = EuroCrops(tmp_path / "root", year=2021)
    index = reader.layer_index(reader.layers()[0])
    assert index.features == SIDE * SIDE
    assert sum(c.parcels for c in index.codes if c.empty) > SIDE * SIDE // 3


def test_a_failed_build_is_a_named_error_and_leaves_no_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "cache"))
    write_layer(tmp_path / "root" / "SI")

    def failing(uri: str, columns: list[str], target: Path, tally: object) -> None:
        target.write_bytes(b"half an index")
        raise DataSourceError("read error in 'SI_2021_EC21.dbf'")

    monkeypatch.setattr(index_module, "_convert", failing)
    with pytest.raises(SourceError) as caught:
        EuroCrops(tmp_path / "root", year=2021).read_labels(random_grids(1, seed=3)[0])
    assert "SI_2021_EC21.shp: readable layer: read error" in str(caught.value)
    assert [p.suffix for p in (tmp_path / "cache" / "layers").rglob("*") if p.is_file()] == [".lock"]


def test_the_cache_folder_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROPHARMONY_CACHE", str(tmp_path / "here"))
    assert cache_root() == tmp_path / "here"
    monkeypatch.delenv("CROPHARMONY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "cropharmony"
