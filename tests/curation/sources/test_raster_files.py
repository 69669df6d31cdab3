"""Raster and chip-product readers on real-world roots: several years under one root, upper-case extensions,
sidecars, zips and stray files, each found and read or reported unused with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation.sources.agrifieldnet import AgriFieldNet
from curation.sources.base import SourceError
from curation.sources.cdl import CDL
from curation.sources.files import UNUSED, any_case, is_sidecar, name_matches
from curation.sources.nccm import NCCM
from curation.sources.south_africa_crop_type import SouthAfricaCropType
from curation.sources.south_america_soybean import SouthAmericaSoybean

DATA = Path(__file__).resolve().parents[2] / "data"
CDL_2023 = DATA / "cdl" / "2023_30m_cdls" / "2023_30m_cdls.tif"
NCCM_2019 = DATA / "nccm" / "CDL2019_clip.tif"
SAS_2021 = DATA / "south_america_soybean" / "SouthAmerica_Soybean_2021.tif"


def place(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    return target


def rows(reader: CDL | NCCM | SouthAmericaSoybean | SouthAfricaCropType | AgriFieldNet) -> dict[str, str]:
    found = reader.unused_files()
    assert all(row.rule == UNUSED and row.fix for row in found)
    assert [row.file for row in found] == sorted(row.file for row in found)
    return {row.file: row.detail for row in found}


# ---------------------------------------------------------------- helpers


def test_any_case_globs_only_the_extension() -> None:
    assert any_case("*_EC*.shp") == "*_EC*.[sS][hH][pP]"
    assert any_case("CDL*_clip*.tif") == "CDL*_clip*.[tT][iI][fF]"
    assert any_case("noext") == "noext"
    assert name_matches("2023_30m_cdls.TIF", "*_30m_cdls.tif") and name_matches("x.Tif", "*.tif")
    assert not name_matches("2023_30M_CDLS.tif", "*_30m_cdls.tif")  # the name itself as the layout writes it


def test_sidecars_belong_to_a_file_beside_them(tmp_path: Path) -> None:
    tif, shp = tmp_path / "a.tif", tmp_path / "p.shp"
    for name in ("a.tif.ovr", "a.tif.aux.xml", "a.aux.xml", "a.tfw", "a.tif.vat.dbf"):
        assert is_sidecar(tmp_path / name, tif), name
    for name in ("p.dbf", "p.shx", "p.prj", "p.cpg", "p.shp.xml"):
        assert is_sidecar(tmp_path / name, shp), name
    assert not is_sidecar(tmp_path / "b.dbf", shp)
    assert not is_sidecar(tmp_path / "sub" / "p.dbf", shp)
    assert not is_sidecar(tmp_path / "p.prj", tmp_path / "p.dbf")  # a sidecar owns nothing: both are reported


# ---------------------------------------------------------------- years under one root


def test_years_lists_every_year_and_each_year_reads_its_files(tmp_path: Path) -> None:
    for name in ("CDL2017_clip.tif", "CDL2018_clip1.tif", "CDL2019_clip.tif"):
        place(NCCM_2019, tmp_path / name)
    source = NCCM(tmp_path)
    assert source.years() == [2017, 2018, 2019]
    with pytest.raises(SourceError, match="one year per read: nccm files of 2017, 2018, 2019"):
        source.files()
    assert [NCCM(tmp_path, year=y).files() for y in source.years()] == [
        [tmp_path / "CDL2017_clip.tif"],
        [tmp_path / "CDL2018_clip1.tif"],
        [tmp_path / "CDL2019_clip.tif"],
    ]
    assert rows(source) == {}  # with no year set, every year's files are inputs (each of a reader of its year)


def test_years_of_both_cdl_layouts_and_of_an_empty_root(tmp_path: Path) -> None:
    assert CDL(DATA / "cdl").years() == [2022, 2023]
    place(SAS_2021, tmp_path / "SouthAmerica_Soybean_2002.tif")
    place(SAS_2021, tmp_path / "SouthAmerica_Soybean_2021.tif")
    assert SouthAmericaSoybean(tmp_path).years() == [2002, 2021]
    with pytest.raises(SourceError, match=r"file pattern: no file matches \*\*/CDL\*_clip\*\.tif"):
        NCCM(tmp_path).years()


def test_another_years_file_is_reported_with_its_year(tmp_path: Path) -> None:
    place(SAS_2021, tmp_path / "SouthAmerica_Soybean_2002.tif")
    place(SAS_2021, tmp_path / "SouthAmerica_Soybean_2021.tif")
    assert rows(SouthAmericaSoybean(tmp_path, year=2021)) == {
        str(tmp_path / "SouthAmerica_Soybean_2002.tif"): "a file of 2002: read only for chips of 2002"
    }


# ---------------------------------------------------------------- upper-case extensions


@pytest.mark.parametrize("suffix", [".TIF", ".Tif"])
def test_upper_case_extensions_are_product_files(tmp_path: Path, suffix: str) -> None:
    nested = place(CDL_2023, tmp_path / "2023_30m_cdls" / f"2023_30m_cdls{suffix}")
    flat = place(NCCM_2019, tmp_path / "nccm" / f"CDL2019_clip{suffix}")
    assert CDL(tmp_path, year=2023).files() == [nested]
    assert CDL(tmp_path).years() == [2023]
    assert NCCM(tmp_path / "nccm").files() == [flat]
    labels = NCCM(tmp_path / "nccm").index()
    assert labels[0].path == flat
    assert rows(CDL(tmp_path / "2023_30m_cdls")) == {}


# ---------------------------------------------------------------- what a raster root holds besides its files


def test_a_torchgeo_cdl_root_reports_the_zip_and_strays_but_not_sidecars_or_docs(tmp_path: Path) -> None:
    product = place(CDL_2023, tmp_path / "2023_30m_cdls" / "2023_30m_cdls.tif")
    for name in ("2023_30m_cdls.tif.ovr", "2023_30m_cdls.tif.aux.xml", "2023_30m_cdls.tfw",
                 "2023_30m_cdls.tif.vat.dbf", "2023_30m_cdls_metadata.htm", "README.txt"):  # fmt: skip
        (product.parent / name).write_bytes(b"")
    (tmp_path / "2023_30m_cdls.zip").write_bytes(b"PK")
    place(CDL_2023, tmp_path / "tiles" / "tile_0.tif")
    place(CDL_2023, tmp_path / "2023_30m_CDLS.tif")  # the name's case is the layout's
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.bin").write_bytes(b"")
    found = rows(CDL(tmp_path, year=2023))
    assert set(found) == {str(tmp_path / n) for n in ("2023_30m_cdls.zip", "tiles/tile_0.tif", "2023_30m_CDLS.tif")}
    assert found[str(tmp_path / "2023_30m_cdls.zip")].startswith("a zip: USDA NASS Cropland Data Layer is read from")
    assert found[str(tmp_path / "tiles" / "tile_0.tif")] == (
        "not a USDA NASS Cropland Data Layer product file (the reader reads "
        "<root>/<year>_30m_cdls/<year>_30m_cdls.tif or <root>/<year>_30m_cdls.tif)"
    )


def test_a_root_without_product_files_reports_every_file(tmp_path: Path) -> None:
    place(NCCM_2019, tmp_path / "NCCM2019.tif")
    with pytest.raises(SourceError, match="file pattern"):
        NCCM(tmp_path).files()
    assert list(rows(NCCM(tmp_path))) == [str(tmp_path / "NCCM2019.tif")]


# ---------------------------------------------------------------- chip products: the label folders


def test_chip_products_report_stray_label_files_but_not_field_ids(tmp_path: Path) -> None:
    sa = tmp_path / "sa"
    shutil.copytree(DATA / "south_africa_crop_type", sa, ignore=shutil.ignore_patterns("*.py", "imagery"))
    labels = sa / "train" / "labels"
    shutil.copy(labels / "17.tif", labels / "17_field_ids.tif")
    shutil.copy(labels / "17.tif", labels / "18.TIF")
    shutil.copy(labels / "17.tif", labels / "17a.tif")
    (sa / "train" / "imagery").mkdir()
    (sa / "train" / "imagery" / "stray.bin").write_bytes(b"")  # imagery is checked chip by chip, not here
    source = SouthAfricaCropType(sa)
    assert "18" in source.fields()  # an upper-case extension is a label raster
    assert rows(source) == {
        str(labels / "17a.tif"): "not a South Africa Crop Type Competition label raster (the reader reads "
        "train/labels/<field_id>.tif (digits))"
    }
    afn = tmp_path / "afn"
    shutil.copytree(DATA / "agrifieldnet", afn, ignore=shutil.ignore_patterns("*.py", "source"))
    assert rows(AgriFieldNet(afn)) == {}  # the *_field_ids.tif beside each label are companions, by design
    stray = afn / "train_labels" / "labels.csv"
    stray.write_text("id\n")
    assert list(rows(AgriFieldNet(afn))) == [str(stray)]


def test_readers_of_the_fixtures_use_every_file() -> None:
    for reader in (CDL(DATA / "cdl"), NCCM(DATA / "nccm"), SouthAmericaSoybean(DATA / "south_america_soybean")):
        assert rows(reader) == {}, reader
    assert rows(SouthAfricaCropType(DATA / "south_africa_crop_type")) == {}
    assert rows(AgriFieldNet(DATA / "agrifieldnet")) == {}
