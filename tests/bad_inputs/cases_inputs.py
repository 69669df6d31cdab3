"""Bad inputs of validate and chips: label products, image chips and crosswalks as real downloads break them."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyogrio
import rasterio
import shapely
import yaml

from tests.bad_inputs.harness import Case, write_bytes, write_text

RAW = Path("data") / "real"  # a raw root no stage owns, as a user's real products
LAYER = RAW / "eurocrops" / "LV_2021" / "LV_2021_EC21.shp"
CDL_CHIPS = RAW / "sentinel2" / "cdl"
NCCM = RAW / "nccm" / "CDL2019_clip.tif"
VALIDATE = ("curation.validate",)
CHIPS = ("curation.chips",)
REPORTS = ("reports/validation",)


def on_real_root(breaks: Callable[[Path], None]) -> Callable[[Path], None]:
    """Copy the demo world to `data/real`, point `shared.raw_root` at it, then break it."""

    def prepare(root: Path) -> None:
        shutil.copytree(root / "data" / "demo", root / RAW)
        path = root / "params.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        raw["shared"]["raw_root"] = RAW.as_posix()
        write_text(path, yaml.safe_dump(raw, sort_keys=False))
        breaks(root)

    return prepare


def _first_chip(root: Path) -> Path:
    return sorted((root / CDL_CHIPS).glob("*.tif"))[0]


def _rewrite_chip(root: Path, change: object) -> None:
    """Rewrite the first CDL chip through `change(profile, data) -> (profile, data, descriptions)`."""
    path = _first_chip(root)
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    profile, data, descriptions = change(profile, data)  # type: ignore[operator]
    path.unlink()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, text in enumerate(descriptions or (), start=1):
            dst.set_band_description(i, text)


def _unknown_hcat(root: Path) -> None:
    path = root / LAYER
    frame = pyogrio.read_dataframe(path)
    frame["EC_hcat_c"] = "9999999999"  # every parcel: chips meets it in every chip
    pyogrio.write_dataframe(frame, path)


def _bowtie(root: Path) -> None:
    path = root / LAYER
    frame = pyogrio.read_dataframe(path)
    minx, miny, maxx, maxy = frame.geometry.iloc[0].bounds
    frame.loc[frame.index[0], "geometry"] = shapely.Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])
    pyogrio.write_dataframe(frame, path)


def _linked_folder(root: Path) -> None:
    folder = root / RAW / "sentinel2" / "nccm"
    shutil.move(folder, root / "elsewhere")
    folder.symlink_to(root / "elsewhere", target_is_directory=True)


def _rename_first_chip(name: str) -> object:
    def breaks(root: Path) -> None:
        path = _first_chip(root)
        path.rename(path.with_name(name))

    return breaks


def _duplicate_id(root: Path) -> None:
    path = _first_chip(root)
    shutil.copy(path, path.with_suffix(".TIF"))


def _reversed_bands(root: Path) -> None:
    from curation.core.bands import S2_FILE_ORDER

    _rewrite_chip(root, lambda p, d: (p, d, list(reversed(S2_FILE_ORDER))))


def _per_band_files(root: Path) -> None:
    path = _first_chip(root)
    with rasterio.open(path) as src:
        profile, data = src.profile, src.read()
    path.unlink()
    profile.update(count=1)
    for i in range(data.shape[0]):
        with rasterio.open(path.with_name(f"{path.stem}_B{i + 1:02d}.tif"), "w", **profile) as dst:
            dst.write(data[i : i + 1])


def _nodata_share(share: float) -> object:
    def change(profile: dict[str, object], data: np.ndarray) -> tuple[dict[str, object], np.ndarray, None]:
        data = np.maximum(data, 1)
        rows = round(data.shape[1] * share)
        data[:, :rows, :] = 0
        return {**profile, "nodata": 0}, data, None

    return lambda root: _rewrite_chip(root, change)


def _huge_chip(root: Path) -> None:
    path = _first_chip(root)
    with rasterio.open(path) as src:
        profile = src.profile
    path.unlink()
    profile.update(width=6000, height=6000, compress="deflate", tiled=True, blockxsize=512, blockysize=512)
    with rasterio.open(path, "w", **profile):
        pass  # every block empty: a 1 MB file of 6000 x 6000 x 13 pixels


def _truncated_chip(root: Path) -> None:
    path = _first_chip(root)
    write_bytes(path, path.read_bytes()[:300])


def _nodata_is_maize(root: Path) -> None:
    with rasterio.open(root / NCCM, "r+") as dst:
        dst.nodata = 1  # 1 is maize in the NCCM legend


def _missing(suffix: str) -> object:
    return lambda root: (root / LAYER).with_suffix(suffix).unlink()


def _broken_zip(root: Path) -> None:
    write_bytes(root / RAW / "eurocrops" / "FR_2021.zip", b"PK\x03\x04 not really a zip")


def _zip_beside_extracted(root: Path) -> None:
    folder = root / LAYER.parent
    with zipfile.ZipFile(folder.parent / "LV_2021.zip", "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"LV_2021/{file.name}")


def _no_year_layer(root: Path) -> None:
    folder = root / RAW / "eurocrops" / "RO_ny"
    folder.mkdir()
    for file in sorted((root / LAYER.parent).iterdir()):
        shutil.copy(file, folder / file.name.replace("LV_2021", "RO_ny"))


def _second_year(root: Path) -> None:
    shutil.copy(root / NCCM, (root / NCCM).with_name("CDL2018_clip.tif"))


def _stray_image_file(root: Path) -> None:
    write_text(root / CDL_CHIPS / "preview.jpg", "not a chip")


def _unlisted_crosswalk(root: Path) -> None:
    write_text(root / "curation" / "legends" / "brazil.csv", "code,name,target,note\n1,soja,soybean,\n")


def validate(id_: str, breaks: Callable[[Path], None], rule: str, file: str, **more: object) -> Case:
    """A validate case on a real raw root: validate writes its reports (errors included), then fails or warns."""
    return Case(id_, VALIDATE, on_real_root(breaks), rule, file, writes=REPORTS, **more)  # type: ignore[arg-type]


def chips(id_: str, breaks: Callable[[Path], None], rule: str, file: str, **more: object) -> Case:
    """A chips case on a real raw root: chips stops before it writes anything."""
    return Case(id_, CHIPS, on_real_root(breaks), rule, file, **more)  # type: ignore[arg-type]


def _cache_is_a_file(root: Path) -> None:
    write_text(root / "cache-here", "a file where the cache folder should be\n")


CACHE_IS_A_FILE = (("CROPHARMONY_CACHE", "{root}/cache-here"),)


CASES = [
    validate("the cache folder is a file", _cache_is_a_file, "writable cache", "cache-here", env=CACHE_IS_A_FILE),
    chips("chips: the cache folder is a file", _cache_is_a_file, "writable cache", "cache-here", env=CACHE_IS_A_FILE),
    validate(
        "validate: an unknown HCAT code",
        _unknown_hcat,
        "code in crosswalk",
        "LV_2021_EC21",
        extra=("9999999999",),
        dvc_stage="validate",
    ),
    chips("chips: an unknown HCAT code", _unknown_hcat, "unmapped codes", "eurocrops.csv"),
    validate("a symlinked folder in the raw root", _linked_folder, "no symbolic links", "sentinel2/nccm"),
    chips("chips: a symlinked folder in the raw root", _linked_folder, "no symbolic links", "sentinel2/nccm"),
    validate("a comma in a chip id", _rename_first_chip("2023_1,2.tif"), "chip id", "2023_1,2.tif"),
    validate("a newline in a chip id", _rename_first_chip("2023_1\n2.tif"), "chip id", "2023_1"),
    validate("two files, one chip id", _duplicate_id, "unique chip id", "sentinel2/cdl"),
    validate("band descriptions in another order", _reversed_bands, "band order", "sentinel2/cdl"),
    validate("one file per band", _per_band_files, "one file per chip", "sentinel2/cdl", extra=("gdal_merge.py",)),
    validate("an all-nodata chip", _nodata_share(1.0), "not all nodata", "sentinel2/cdl"),
    chips("chips: an all-nodata chip", _nodata_share(1.0), "not all nodata", "sentinel2/cdl"),
    validate("a 6000 px chip", _huge_chip, "px high", "sentinel2/cdl"),
    validate("a truncated chip", _truncated_chip, "readable GeoTIFF", "sentinel2/cdl"),
    validate("label nodata mapped to maize", _nodata_is_maize, "nodata maps to ignore", "CDL2019_clip.tif"),
    validate(
        "a shapefile without its .dbf",
        _missing(".dbf"),
        "shapefile sidecars",
        "LV_2021_EC21",
        extra=(".dbf is missing",),
    ),
    chips(
        "chips: a shapefile without its .shx", _missing(".shx"), "shapefile sidecars", "LV_2021_EC21", extra=(".shx",)
    ),
    validate("a broken release zip", _broken_zip, "readable zip", "FR_2021.zip"),
    validate("warning: a self-intersecting parcel", _bowtie, "valid geometry", "LV_2021_EC21", warning=True),
    validate("warning: a mostly-nodata chip", _nodata_share(0.75), "nodata share", "sentinel2/cdl", warning=True),
    validate(
        "warning: a zip beside its extracted layer", _zip_beside_extracted, "unused file", "LV_2021.zip", warning=True
    ),
    validate("warning: a layer without a year (RO_ny)", _no_year_layer, "unused file", "RO_ny_EC21", warning=True),
    validate("warning: a second year's raster", _second_year, "unused file", "CDL2018_clip.tif", warning=True),
    validate("warning: a stray file among the chips", _stray_image_file, "unused file", "preview.jpg", warning=True),
    validate("warning: a crosswalk not in sources.csv", _unlisted_crosswalk, "unused file", "brazil.csv", warning=True),
]
