"""Vector readers on real-world file faults: a layer read once (zip and extracted copy), a layer without a year,
missing shapefile sidecars, upper-case extensions, the unused files of a root, and invalid parcels repaired."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.transform import from_origin

from curation.sources.base import ChipGrid, SourceError
from curation.sources.eurocrops import EuroCrops, layer_year
from curation.sources.files import UNUSED
from curation.sources.vector import repaired

DATA = Path(__file__).resolve().parents[2] / "data" / "eurocrops"
LAYER = DATA / "SI" / "SI_2021" / "SI_2021_EC21.shp"
PARTS = sorted(LAYER.parent.iterdir())  # .cpg .dbf .prj .shp .shx


def copy_layer(folder: Path, stem: str = "SI_2021_EC21", suffix_case: str = "lower") -> Path:
    """The fixture's shapefile copied into `folder` under another stem; returns the .shp."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        suffix = part.suffix.upper() if suffix_case == "upper" else part.suffix
        shutil.copy(part, folder / f"{stem}{suffix}")
    return folder / f"{stem}{'.SHP' if suffix_case == 'upper' else '.shp'}"


def zip_layer(path: Path, members: dict[str, str], skip: tuple[str, ...] = ()) -> Path:
    """A release zip holding the fixture's shapefile under each `folder/stem` of `members` (minus `skip` suffixes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, stem in members.items():
            for part in PARTS:
                if part.suffix not in skip:
                    archive.write(part, f"{folder}/{stem}{part.suffix}")
    return path


def rows_by_file(source: EuroCrops) -> dict[str, tuple[str, str, str]]:
    return {row.file: (row.rule, row.detail, row.fix) for row in source.unused_files()}


def centre_grid(size: int = 160) -> ChipGrid:
    minx, miny, maxx, maxy = pyogrio.read_info(LAYER)["total_bounds"]
    x, y = (minx + maxx) / 2, (miny + maxy) / 2
    return ChipGrid(CRS.from_epsg(3794), from_origin(x - size * 5, y + size * 5, 10, 10), size, size, "c")


# ---------------------------------------------------------------- one layer, read once


def test_zip_and_its_extracted_layer_are_read_once_from_the_extracted_file(tmp_path: Path) -> None:
    extracted = copy_layer(tmp_path / "SI_2021")
    archive = zip_layer(tmp_path / "SI_2021.zip", {"SI_2021": "SI_2021_EC21"})
    source = EuroCrops(tmp_path)
    assert source.files() == [extracted]
    assert source.layer_uris() == [(str(extracted), extracted)]
    np.testing.assert_array_equal(source.read_labels(centre_grid()), EuroCrops(DATA).read_labels(centre_grid()))
    rule, detail, fix = rows_by_file(source)[str(archive)]
    assert rule == UNUSED
    assert f"SI_2021/SI_2021_EC21.shp: the same layer as {extracted}: read once, from the extracted file" in detail
    assert "remove the zip" in fix
    assert list(rows_by_file(source)) == [str(archive)]  # the extracted layer's sidecars are not rows


def test_a_zip_partly_extracted_is_read_for_its_other_layers(tmp_path: Path) -> None:
    extracted = copy_layer(tmp_path / "SI_2021")
    archive = zip_layer(tmp_path / "SI.zip", {"SI_2021": "SI_2021_EC21", "SI_2020": "SI_2020_EC21"})
    source = EuroCrops(tmp_path)
    assert source.files() == [archive, extracted]  # sorted
    assert [uri for uri, _ in source.layer_uris()] == [f"/vsizip/{archive}/SI_2020/SI_2020_EC21.shp", str(extracted)]
    member = f"/vsizip/{archive}/SI_2021/SI_2021_EC21.shp"
    assert rows_by_file(source) == {
        member: (
            UNUSED,
            f"the same layer as {extracted}: read once, from the extracted file",
            "remove the zip, or the extracted copy to read the layer from the zip",
        )
    }


def test_two_copies_of_a_layer_are_read_once(tmp_path: Path) -> None:
    first = copy_layer(tmp_path / "a")
    second = copy_layer(tmp_path / "backup")
    source = EuroCrops(tmp_path)
    assert source.files() == [first]
    assert rows_by_file(source) == {
        str(second): (UNUSED, f"the same layer as {first}: read once, from there", "remove the copy")
    }


# ---------------------------------------------------------------- a layer without a year


def test_layer_year_from_the_name() -> None:
    assert layer_year("SI_2021_EC21.shp") == 2021
    assert layer_year("DE_LS_2021_EC21.shp") == 2021
    assert layer_year("RO_ny_EC21.shp") is None
    assert layer_year("PT_EC21.shp") is None


def test_a_layer_without_a_year_is_read_with_no_year_and_reported_with_one(tmp_path: Path) -> None:
    si = copy_layer(tmp_path / "SI_2021")
    ro = copy_layer(tmp_path / "RO", "RO_ny_EC21")
    assert EuroCrops(tmp_path).files() == [ro, si]
    source = EuroCrops(tmp_path, year=2021)
    assert source.files() == [si]
    rule, detail, fix = rows_by_file(source)[str(ro)]
    assert (rule, detail) == (UNUSED, "no year in the name (RO_ny): read only when no year is set")
    assert "rename it <CC>_<year>_EC*.shp" in fix
    assert list(rows_by_file(source)) == [str(ro)]  # once, and its .dbf/.shx/.prj/.cpg go with it
    assert rows_by_file(EuroCrops(tmp_path)) == {}


def test_another_years_layer_is_reported_with_its_year(tmp_path: Path) -> None:
    copy_layer(tmp_path / "SI_2021")
    old = copy_layer(tmp_path / "SI_2020", "SI_2020_EC21")
    rows = rows_by_file(EuroCrops(tmp_path, year=2021))
    assert rows == {str(old): (UNUSED, "a layer of 2020: read only for chips of 2020", rows[str(old)][2])}


def test_no_file_of_the_year_names_the_files_it_left(tmp_path: Path) -> None:
    ro = copy_layer(tmp_path / "RO", "RO_ny_EC21")
    archive = zip_layer(tmp_path / "RO_ny.zip", {"RO": "RO_ny_EC21"})
    with pytest.raises(SourceError, match=r"file pattern: no file matches .* for 2021") as info:
        EuroCrops(tmp_path, year=2021).files()
    message = str(info.value)
    assert f"{ro}: no year in the name (RO_ny)" in message
    assert f"/vsizip/{archive}/RO/RO_ny_EC21.shp: no year in the name (RO_ny)" in message
    assert message.count(str(ro)) == 1


def test_a_zip_of_another_year_is_one_row(tmp_path: Path) -> None:
    copy_layer(tmp_path / "SI_2021")
    archive = zip_layer(tmp_path / "SI_2020.zip", {"SI_2020": "SI_2020_EC21"})
    rows = rows_by_file(EuroCrops(tmp_path, year=2021))
    assert list(rows) == [str(archive)]
    assert rows[str(archive)][1] == (
        "every layer inside is left (SI_2020/SI_2020_EC21.shp: a layer of 2020: read only for chips of 2020)"
    )


# ---------------------------------------------------------------- files that are not layers


def test_other_files_are_reported_and_documentation_is_not(tmp_path: Path) -> None:
    copy_layer(tmp_path / "SI_2021")
    shutil.copy(DATA / "HCAT2.csv", tmp_path / "HCAT2.csv")
    (tmp_path / "README.md").write_text("about")
    (tmp_path / "LICENSE").write_text("CC BY")
    (tmp_path / "notes.csv").write_text("a,b\n")
    (tmp_path / "parcels.geojson").write_text("{}")
    (tmp_path / ".DS_Store").write_bytes(b"")
    orphan = tmp_path / "SI_2021" / "lost.dbf"
    orphan.write_bytes(b"")
    with zipfile.ZipFile(tmp_path / "docs.zip", "w") as archive:
        archive.writestr("readme.txt", "no layer")
    rows = rows_by_file(EuroCrops(tmp_path))
    assert set(rows) == {str(tmp_path / n) for n in ("notes.csv", "parcels.geojson", "docs.zip")} | {str(orphan)}
    assert rows[str(tmp_path / "docs.zip")][1] == "a zip holding no EuroCrops layer (*_EC*.shp)"
    assert rows[str(tmp_path / "notes.csv")][1].startswith("not a EuroCrops product file (the reader reads <root>/**/")
    assert all(rule == UNUSED for rule, _, _ in rows.values())
    assert [row.file for row in EuroCrops(tmp_path).unused_files()] == sorted(rows)


def test_upper_case_extensions_are_found_and_read(tmp_path: Path) -> None:
    upper = copy_layer(tmp_path / "SI_2021", suffix_case="upper")
    source = EuroCrops(tmp_path)
    assert source.files() == [upper]
    np.testing.assert_array_equal(source.read_labels(centre_grid()), EuroCrops(DATA).read_labels(centre_grid()))
    assert rows_by_file(source) == {}


def test_a_corrupt_zip_is_an_error_of_the_read_not_an_unused_file(tmp_path: Path) -> None:
    copy_layer(tmp_path / "SI_2021")
    (tmp_path / "SI_2020.zip").write_bytes(b"PK not really a zip")
    source = EuroCrops(tmp_path)
    with pytest.raises(SourceError, match="readable zip"):
        source.files()
    assert rows_by_file(source) == {}


# ---------------------------------------------------------------- shapefile sidecars


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ((".dbf",), "SI_2021_EC21.dbf is missing"),
        ((".shx",), "SI_2021_EC21.shx is missing"),
        ((".shx", ".dbf"), "SI_2021_EC21.shx and SI_2021_EC21.dbf are missing"),
    ],
)
def test_a_missing_sidecar_is_one_clear_error_naming_the_shp(
    tmp_path: Path, missing: tuple[str, ...], named: str
) -> None:
    shp = copy_layer(tmp_path / "SI_2021")
    for suffix in missing:
        shp.with_suffix(suffix).unlink()
    for call in (lambda s: s.layer_uris(), lambda s: s.layers(), lambda s: s.read_labels(centre_grid())):
        with pytest.raises(SourceError) as info:
            call(EuroCrops(tmp_path))
        message = str(info.value)
        assert message.startswith(f"{shp}: shapefile sidecars: {named}. Fix: copy the ")
        assert "that came with it" in message and message.count(named) == 1


def test_a_missing_sidecar_inside_a_zip_names_the_member(tmp_path: Path) -> None:
    archive = zip_layer(tmp_path / "SI_2021.zip", {"SI_2021": "SI_2021_EC21"}, skip=(".dbf",))
    with pytest.raises(SourceError, match=r"shapefile sidecars: SI_2021_EC21\.dbf is missing") as info:
        EuroCrops(tmp_path).layers()
    assert str(info.value).startswith(f"/vsizip/{archive}/SI_2021/SI_2021_EC21.shp: ")


def test_upper_case_sidecars_count(tmp_path: Path) -> None:
    shp = copy_layer(tmp_path / "SI_2021")
    shp.with_suffix(".dbf").rename(shp.with_suffix(".DBF"))
    assert len(EuroCrops(tmp_path).layers()) == 1


# ---------------------------------------------------------------- invalid parcels


X0, Y0 = 500000.0, 100000.0
BOWTIE = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10), (X0, Y0)])
LOOP = shapely.Polygon(  # a ring that runs round a square and back across it: GDAL's even-odd fill leaves a hole
    [(20, 0), (30, 0), (30, 10), (20, 10), (20, 2), (28, 2), (28, 8), (22, 8), (22, 0), (20, 0)]
)
LOOP = shapely.affinity.translate(LOOP, X0, Y0)


def invalid_root(tmp_path: Path) -> tuple[Path, gpd.GeoDataFrame]:
    frame = gpd.GeoDataFrame({"EC_hcat_c": ["3301010101", "3301010600"]}, geometry=[BOWTIE, LOOP], crs="EPSG:3794")
    (tmp_path / "XX_2021").mkdir()
    path = tmp_path / "XX_2021" / "XX_2021_EC21.shp"
    frame.to_file(path, engine="pyogrio")
    back = pyogrio.read_dataframe(path)
    assert not shapely.is_valid(back.geometry.to_numpy()).any()  # the layer holds them as invalid as drawn
    return tmp_path, back


def test_invalid_parcels_rasterize_to_their_repaired_geometry(tmp_path: Path) -> None:
    root, frame = invalid_root(tmp_path)
    grid = ChipGrid(CRS.from_epsg(3794), from_origin(X0 - 2, Y0 + 12, 0.5, 0.5), 72, 28, "bowtie")
    labels = EuroCrops(root).read_labels(grid)
    codes = [3301010101, 3301010600]
    fixed = shapely.make_valid(frame.geometry.to_numpy(), method="structure", keep_collapsed=False)
    expected = rasterize(list(zip(fixed, codes, strict=True)), out_shape=grid.shape, transform=grid.transform,
                         dtype="int64")  # fmt: skip
    np.testing.assert_array_equal(labels, expected)
    bowtie = rasterize([(fixed[0], 1)], out_shape=grid.shape, transform=grid.transform)
    assert (labels == codes[0]).sum() == bowtie.sum() > 150  # both lobes, 10 x 10 m at 0.5 m: ~200 pixels
    as_drawn = rasterize([(frame.geometry.iloc[1], 1)], out_shape=grid.shape, transform=grid.transform)
    assert (labels == codes[1]).sum() > as_drawn.sum()  # the loop is filled, not cut by the even-odd rule


def test_repaired_keeps_valid_and_missing_geometries_and_polygons_only() -> None:
    square = shapely.box(0, 0, 1, 1)
    line_only = shapely.Polygon([(0, 0), (5, 0), (10, 0), (0, 0)])
    overlap = shapely.MultiPolygon([shapely.box(0, 0, 6, 6), shapely.box(3, 3, 10, 10)])
    out = repaired(np.array([square, None, BOWTIE, line_only, overlap], dtype=object))
    assert out[0] is square and out[1] is None and out[3] is None
    assert out[2].geom_type == "MultiPolygon" and out[2].area == pytest.approx(50) and out[2].is_valid
    assert out[4].area == pytest.approx(76)  # the union: the overlap stays in the parcel
