"""EuroCrops reader on the seeded Slovenian fixture (release layout) and on the real Latvia 2021 sample zip."""

from __future__ import annotations

import importlib.util
import shutil
import zipfile
from pathlib import Path
from types import ModuleType

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyogrio
import pytest
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform

from curation.sources.base import ChipGrid, SourceError, format_bounds
from curation.sources.eurocrops import EuroCrops

DATA = Path(__file__).resolve().parents[2] / "data" / "eurocrops"
LAYER = DATA / "SI" / "SI_2021" / "SI_2021_EC21.shp"
UTM = "EPSG:32633"  # zone 33N holds Slovenia
EDGE = 1.0  # metres: pixel centres this close to a parcel edge are left out of the point-in-polygon oracle


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eurocrops_fixture_data", DATA / "data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parcels() -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(LAYER)


def code_of(value: object) -> int:
    return int(value) if isinstance(value, str) and value.strip() else 0


def grid_centred(x: float, y: float, src_crs: object, dst_crs: str, size: int, chip_id: str = "chip") -> ChipGrid:
    """A 10 m grid in `dst_crs` whose pixel (size // 2, size // 2) is centred on (x, y) given in `src_crs`."""
    xs, ys = transform(CRS.from_user_input(src_crs), CRS.from_user_input(dst_crs), [x], [y])
    half = size // 2 * 10 + 5
    return ChipGrid(CRS.from_user_input(dst_crs), from_origin(xs[0] - half, ys[0] + half, 10, 10), size, size, chip_id)


def pixel_of(x: float, y: float, src_crs: object, grid: ChipGrid) -> tuple[int, int]:
    xs, ys = transform(CRS.from_user_input(src_crs), grid.crs, [x], [y])
    col, row = ~grid.transform @ (xs[0], ys[0])
    return int(row), int(col)


def point_in_polygon_oracle(
    frame: gpd.GeoDataFrame, grid: ChipGrid
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Each pixel's code from the parcel holding its centre (in the layer's CRS), and where that is unambiguous."""
    rows, cols = np.indices(grid.shape)
    xs, ys = (grid.transform * Affine.translation(0.5, 0.5)) @ (cols.ravel(), rows.ravel())
    px, py = (np.asarray(v) for v in transform(grid.crs, CRS.from_user_input(frame.crs), xs, ys))
    points = shapely.points(px, py)
    codes = np.zeros(px.size, dtype=np.int64)
    hits = np.zeros(px.size, dtype=np.int64)
    near_edge = np.zeros(px.size, dtype=bool)
    for geometry, code in zip(frame.geometry, frame["EC_hcat_c"], strict=True):
        inside = shapely.contains_xy(geometry, px, py)
        codes[inside] = code_of(code)
        hits += inside
        near_edge |= shapely.dwithin(geometry.boundary, points, EDGE)
    trusted = (hits <= 1) & ~near_edge
    return codes.reshape(grid.shape), trusted.reshape(grid.shape)


def layer_centre() -> tuple[float, float]:
    minx, miny, maxx, maxy = parcels().total_bounds
    return (minx + maxx) / 2, (miny + maxy) / 2


def rewrite_layer(root: Path, frame: gpd.GeoDataFrame) -> Path:
    """The fixture copied to `root` with its layer replaced by `frame`."""
    shutil.copytree(DATA, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    target = root / LAYER.relative_to(DATA)
    for sidecar in target.parent.iterdir():
        sidecar.unlink()
    frame.to_file(target, engine="pyogrio")
    return target


# ---------------------------------------------------------------- fixture


def test_fixture_is_seeded_and_byte_identical(tmp_path: Path) -> None:
    generator = load_generator()
    generator.write_fixture(tmp_path / "a")
    generator.write_fixture(tmp_path / "b")
    written = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert Path("HCAT2.csv") in written and LAYER.relative_to(DATA) in written
    assert {p.suffix for p in written} == {".csv", ".shp", ".shx", ".dbf", ".prj", ".cpg"}
    for rel in written:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
        assert (tmp_path / "a" / rel).read_bytes() == (DATA / rel).read_bytes(), f"{rel}: rerun {DATA / 'data.py'}"
    assert LAYER.with_suffix(".dbf").read_bytes()[1:4] == bytes([121, 1, 1])  # pinned header date


def test_fixture_has_the_release_attributes() -> None:
    info = pyogrio.read_info(LAYER)
    assert CRS.from_user_input(info["crs"]) == CRS.from_epsg(3794)
    assert {"EC_trans_n", "EC_hcat_n", "EC_hcat_c"} <= set(info["fields"])
    assert info["dtypes"][list(info["fields"]).index("EC_hcat_c")] == "object"  # codes are text, as released
    codes = [code_of(c) for c in parcels()["EC_hcat_c"]]
    assert codes == [3301010101, 3301010600, 3301160000, 3302000000, 0, 3301010101]


# ---------------------------------------------------------------- discovery


def test_discovery_year_filter_and_hcat_table() -> None:
    assert EuroCrops(DATA).files() == [LAYER]
    assert EuroCrops(DATA, year=2021).files() == [LAYER]
    assert EuroCrops(DATA).hcat_table() == DATA / "HCAT2.csv"
    with pytest.raises(SourceError, match=r"file pattern: no file matches \*\*/\*_EC\*\.shp .* for 2020"):
        EuroCrops(DATA, year=2020).files()


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"raw root exists: no such folder for source 'eurocrops'"):
        EuroCrops(tmp_path / "missing")


def test_unmatched_pattern(tmp_path: Path) -> None:
    frame = parcels()
    frame.to_file(tmp_path / "SI_2021.shp", engine="pyogrio")  # no _EC in the name
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "no shapefile here")
    assert EuroCrops(tmp_path).hcat_table() is None
    with pytest.raises(SourceError, match=r"no file matches \*\*/\*_EC\*\.shp \(or a zip holding one\)") as info:
        EuroCrops(tmp_path).read_labels(grid_centred(*layer_centre(), "EPSG:3794", UTM, 8))
    assert str(tmp_path) in str(info.value)


def test_corrupt_zip(tmp_path: Path) -> None:
    (tmp_path / "SI_2021.zip").write_bytes(b"PK not really a zip")
    with pytest.raises(SourceError, match="readable zip") as info:
        EuroCrops(tmp_path).files()
    assert str(tmp_path / "SI_2021.zip") in str(info.value)


# ---------------------------------------------------------------- reading


@pytest.mark.parametrize("crs", [UTM, "EPSG:3857"])
def test_parcels_carry_their_codes_at_interior_points(crs: str) -> None:
    frame = parcels()
    grid = grid_centred(*layer_centre(), "EPSG:3794", crs, 160)  # 1.6 km around a 1.05 x 0.77 km layer
    labels = EuroCrops(DATA).read_labels(grid)
    assert labels.shape == (160, 160)
    for geometry, code in zip(frame.geometry, frame["EC_hcat_c"], strict=True):
        point = geometry.representative_point()
        row, col = pixel_of(point.x, point.y, "EPSG:3794", grid)
        assert labels[row, col] == code_of(code), (code, row, col)
    assert set(np.unique(labels).tolist()) == {0, 3301010101, 3301010600, 3301160000, 3302000000}


@pytest.mark.parametrize("crs", [UTM, "EPSG:3857"])
def test_every_pixel_matches_a_point_in_polygon_oracle(crs: str) -> None:
    frame = parcels()
    grid = grid_centred(*layer_centre(), "EPSG:3794", crs, 160)
    labels = EuroCrops(DATA).read_labels(grid)
    expected, trusted = point_in_polygon_oracle(frame, grid)
    assert trusted.mean() > 0.97
    np.testing.assert_array_equal(labels[trusted], expected[trusted])
    outside_parcels = trusted & (expected == 0)
    assert outside_parcels.sum() > 10000 and (labels[outside_parcels] == 0).all()
    assert (labels[trusted & (expected != 0)] != 0).sum() > 1500  # 18 ha of coded parcels


def test_parcel_without_a_code_is_zero() -> None:
    frame = parcels()
    empty = frame[frame["EC_hcat_c"].isna()].geometry.iloc[0]
    grid = grid_centred(empty.centroid.x, empty.centroid.y, "EPSG:3794", UTM, 8)  # 80 m inside the parcel
    expected, trusted = point_in_polygon_oracle(frame, grid)
    assert trusted.all() and (expected == 0).all()
    assert (EuroCrops(DATA).read_labels(grid) == 0).all()


def test_chip_across_a_parcel_edge() -> None:
    wheat = parcels().geometry.iloc[0]
    minx, miny, _, maxy = wheat.bounds
    assert maxy - miny > 70
    grid = grid_centred(minx, (miny + maxy) / 2, "EPSG:3794", UTM, 6)  # pixel column 3 is centred on the west edge
    labels = EuroCrops(DATA).read_labels(grid)
    assert (labels[:, :3] == 0).all()  # 10 to 30 m west of the parcel
    assert (labels[:, 4:] == 3301010101).all()  # 10 to 20 m inside it


def test_text_code_raises_naming_the_file(tmp_path: Path) -> None:
    frame = parcels()
    frame.loc[2, "EC_hcat_c"] = "abc"
    target = rewrite_layer(tmp_path / "root", frame)
    with pytest.raises(SourceError, match=r"HCAT code is an integer: feature \d+ has 'abc'") as info:
        EuroCrops(tmp_path / "root").read_labels(grid_centred(*layer_centre(), "EPSG:3794", UTM, 160))
    assert str(target) in str(info.value)


def test_layer_without_the_code_column_raises(tmp_path: Path) -> None:
    target = rewrite_layer(tmp_path / "root", parcels().drop(columns=["EC_hcat_c"]))
    with pytest.raises(SourceError, match=r"HCAT code column: no 'EC_hcat_c' field") as info:
        EuroCrops(tmp_path / "root").read_labels(grid_centred(*layer_centre(), "EPSG:3794", UTM, 16))
    assert str(target) in str(info.value) and "EC_hcat_n" in str(info.value)


def test_corrupt_shapefile_names_the_file(tmp_path: Path) -> None:
    target = rewrite_layer(tmp_path / "root", parcels())
    target.write_bytes(b"not a shapefile" * 20)
    with pytest.raises(SourceError, match="readable shapefile") as info:
        EuroCrops(tmp_path / "root").read_labels(grid_centred(*layer_centre(), "EPSG:3794", UTM, 16))
    assert str(target) in str(info.value)


def test_layer_without_a_prj_raises(tmp_path: Path) -> None:
    target = rewrite_layer(tmp_path / "root", parcels())
    target.with_suffix(".prj").unlink()
    with pytest.raises(SourceError, match=r"CRS known: the layer has no \.prj") as info:
        EuroCrops(tmp_path / "root").layers()
    assert str(target) in str(info.value)


def test_chip_outside_every_layer_names_chip_and_bounds() -> None:
    x, y = layer_centre()
    grid = grid_centred(x + 20000, y, "EPSG:3794", UTM, 16, chip_id="si_east_chip")
    with pytest.raises(SourceError, match="lie outside every EuroCrops layer") as info:
        EuroCrops(DATA).read_labels(grid)
    message = str(info.value)
    assert "si_east_chip" in message
    assert f"{LAYER} {format_bounds(tuple(parcels().total_bounds))} in EPSG:3794" in message


def test_chip_inside_the_layer_extent_but_between_parcels_is_all_zero() -> None:
    frame = parcels()
    # the gap between the first cell's parcel and the second's
    x = (frame.geometry.iloc[0].bounds[2] + frame.geometry.iloc[1].bounds[0]) / 2
    y = frame.geometry.iloc[0].bounds[3] + 30
    grid = grid_centred(x, y, "EPSG:3794", UTM, 2)
    expected, trusted = point_in_polygon_oracle(frame, grid)
    assert trusted.all() and (expected == 0).all()
    assert (EuroCrops(DATA).read_labels(grid) == 0).all()


def test_release_zip_is_read_in_place(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "SI_2021.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(LAYER.parent.iterdir()):
            archive.write(path, f"SI_2021/{path.name}")
    shutil.copy(DATA / "HCAT2.csv", tmp_path / "HCAT2.csv")
    source = EuroCrops(tmp_path)
    assert source.files() == [tmp_path / "SI_2021.zip"]
    assert [layer.uri for layer in source.layers()] == [f"/vsizip/{tmp_path / 'SI_2021.zip'}/SI_2021/SI_2021_EC21.shp"]
    grid = grid_centred(*layer_centre(), "EPSG:3794", UTM, 160)
    from_zip = source.read_labels(grid)
    np.testing.assert_array_equal(from_zip, EuroCrops(DATA).read_labels(grid))
    assert (from_zip == 3301160000).sum() > 50
    with pytest.raises(SourceError, match="file pattern"):
        EuroCrops(tmp_path, year=2019).files()


# ---------------------------------------------------------------- real sample


@pytest.fixture(scope="module")
def latvia(samples: Path) -> tuple[Path, gpd.GeoDataFrame]:
    path = samples / "eurocrops_lv_2021" / "LV_2021.zip"
    frame = pyogrio.read_dataframe(f"/vsizip/{path}/LV_2021/LV_2021_EC21.shp")
    return path, frame


def test_latvia_zip_is_found_and_read(latvia: tuple[Path, gpd.GeoDataFrame]) -> None:
    path, frame = latvia
    source = EuroCrops(path.parent, year=2021)
    assert source.files() == [path]
    (layer,) = source.layers()
    assert layer.crs == CRS.from_epsg(3059)
    assert layer.bounds == pytest.approx(tuple(frame.total_bounds))
    # the largest parcel east of 24 E (so inside UTM zone 35) with a code; the chip is centred on it
    east = frame[(frame.geometry.bounds.minx > 500000) & frame["EC_hcat_c"].notna()]
    parcel = east.loc[east.geometry.area.idxmax()]
    point = parcel.geometry.representative_point()
    grid = grid_centred(point.x, point.y, "EPSG:3059", "EPSG:32635", 256, chip_id="lv_chip")
    labels = source.read_labels(grid)
    assert labels.shape == (256, 256)
    assert labels[128, 128] == int(parcel["EC_hcat_c"]) != 0
    # every non-zero code belongs to a parcel that intersects the chip
    chip = shapely.box(*grid.bounds_in(CRS.from_epsg(3059)))
    near = frame[frame.geometry.intersects(chip)]
    assert len(near) >= 1
    assert set(np.unique(labels).tolist()) - {0} <= {code_of(c) for c in near["EC_hcat_c"]}
    # and the whole chip agrees with a point-in-polygon test of its pixel centres in the layer's CRS
    expected, trusted = point_in_polygon_oracle(near, grid)
    assert trusted.mean() > 0.95
    np.testing.assert_array_equal(labels[trusted], expected[trusted])
    assert (labels == int(parcel["EC_hcat_c"])).sum() >= parcel.geometry.area / 100 * 0.9
