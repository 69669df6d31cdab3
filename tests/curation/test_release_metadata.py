"""Croissant and STAC metadata of a release: valid offline, counts read back through mlcroissant and pystac, stable."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pystac
import pytest
import rasterio
from polars.testing import assert_frame_equal
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_points
from shapely.geometry import Point, shape

from curation.core.outputs import OWNER_MARKER
from curation.core.schemas import manifest_schema, subsets_schema
from curation.publish.croissant import spdx_licence
from curation.publish.info import ReleaseInfo
from curation.publish.metadata import (
    croissant_class_counts,
    croissant_problems,
    stac_class_counts,
    stac_problems,
    write_croissant,
    write_stac,
)
from curation.sources import SOURCES

CLASSES = ("ignore", "maize", "soybean", "rice", "wheat", "other")
PX, RES = 8, 10.0
GRIDS = {"cdl": ("EPSG:32615", 500_000.0, 4_650_000.0), "eurocrops": ("EPSG:3857", 1_113_194.9, 6_446_275.8)}


def _tif(path: Path, data: np.ndarray, crs: str, left: float, top: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "width": PX, "height": PX, "count": data.shape[0], "dtype": data.dtype.name}
    with rasterio.open(path, "w", crs=crs, transform=from_origin(left, top, RES, RES), **profile) as dst:
        dst.write(data)


def build_release(root: Path) -> None:
    """Two sources x three chips of 8x8 px with their manifest, subsets and class counts, as `publish` lays them out."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    for source, (crs, x0, top) in GRIDS.items():
        info = SOURCES[source].info
        for i in range(3):
            chip_id = f"{source}_{i:04d}"
            left = x0 + i * 1_000.0
            label = rng.integers(0, len(CLASSES), size=(1, PX, PX), dtype=np.uint8)
            _tif(root / "chips" / source / "images" / f"{chip_id}.tif",
                 rng.integers(0, 10_000, size=(13, PX, PX), dtype=np.uint16), crs, left, top)  # fmt: skip
            _tif(root / "chips" / source / "labels" / f"{chip_id}.tif", label, crs, left, top)
            half = PX * RES / 2
            lon, lat = warp_points(crs, "EPSG:4326", [left + half], [top - half])
            counts = {f"px_{name}": int((label == k).sum()) for k, name in enumerate(CLASSES)}
            rows.append(
                {
                    "chip_id": chip_id, "source": source, "region": info.region, "continent": info.continent,
                    "year": 2019 + i, "crs": crs, "minx": left, "miny": top - 2 * half, "maxx": left + 2 * half,
                    "maxy": top, "lon": lon[0], "lat": lat[0], "height": PX, "width": PX, **counts,
                    "dominant": max(CLASSES, key=lambda c: counts[f"px_{c}"]),
                    "image_path": f"{source}/images/{chip_id}.tif", "label_path": f"{source}/labels/{chip_id}.tif",
                    "grid": "g", "label_grid": "g", "crosswalk_set": "toolkit",
                }
            )  # fmt: skip
    manifest = manifest_schema(CLASSES, list(GRIDS)).validate(pl.DataFrame(rows))  # the stage's own manifest rules
    manifest.write_parquet(root / "manifest.parquet")
    splits = [("train", 2), ("train", 2), ("test", 1)]
    subsets = pl.DataFrame(
        [(row["chip_id"], row["source"], *splits[i % 3]) for i, row in enumerate(rows)],
        schema={"chip_id": pl.String, "source": pl.String, "split": pl.String, "size": pl.Int64},
        orient="row",
    )
    subsets_schema().validate(subsets)
    (root / "subsets").mkdir()
    subsets.write_parquet(root / "subsets" / "subsets.parquet")
    joined = subsets.join(manifest, on=["source", "chip_id"])
    counts = pl.concat(
        joined.group_by("source", "split", "size").agg(
            pl.lit(name).alias("class"),
            pl.col(f"px_{name}").sum().cast(pl.Int64).alias("pixels"),
            (pl.col(f"px_{name}") > 0).sum().cast(pl.Int64).alias("chips"),
        )
        for name in CLASSES
    ).sort("source", "split", "size", "class")
    (root / "class_counts.csv").write_text(counts.write_csv(), encoding="utf-8")


INFO = ReleaseInfo(
    version="1.2.0",
    title="cropharmony test release",
    description="Two sources, three chips each.",
    date="2026-11-25",
    licence="CC-BY-4.0",
    url=None,
    changelog=(("1.2.0", "test"),),
    crosswalk_set="toolkit",
    class_ids=tuple(range(len(CLASSES))),
    class_names=CLASSES,
    class_colors=("#000000",) * len(CLASSES),
    sources=(SOURCES["cdl"].info, SOURCES["eurocrops"].info),
    differences=(),
    decisions=(),
    synthetic=None,
    bands=tuple(f"B{i:02d}" for i in range(1, 14)),
    chip_px=PX,
    resolution_m=RES,
    path="releases/1.2.0",
    tag="data-v1.2.0",
)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A release folder with both metadata written (tests that change files work on a copy)."""
    root = tmp_path_factory.mktemp("release")
    build_release(root)
    write_croissant(root, INFO)
    write_stac(root, INFO)
    return root


@pytest.fixture
def copy(release: Path, tmp_path: Path) -> Path:
    target = tmp_path / "release"
    shutil.copytree(release, target)
    return target


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_croissant_is_valid_and_class_counts_read_back_equal_the_csv(release: Path) -> None:
    assert croissant_problems(release / "croissant.json") == []
    expected = pl.read_csv(release / "class_counts.csv")
    assert_frame_equal(croissant_class_counts(release / "croissant.json"), expected)
    jsonld = json.loads((release / "croissant.json").read_text())
    assert jsonld["datePublished"] == INFO.date and jsonld["version"] == INFO.version
    assert jsonld["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    assert "url" not in jsonld  # no URL configured: left out rather than invented
    files = {d["@id"]: d for d in jsonld["distribution"]}
    assert (
        files["subsets.parquet"]["contentUrl"] == "subsets/subsets.parquet"
        and len(files["subsets.parquet"]["sha256"]) == 64
    )
    assert files["image-chips"]["includes"] == "chips/*/images/*.tif"
    assert {r["@id"] for r in jsonld["recordSet"]} == {"class_counts", "chips", "subsets"}


def _drop_sha256(data: dict[str, Any]) -> None:
    data["distribution"][0].pop("sha256")


def _wrong_sha256(data: dict[str, Any]) -> None:
    data["distribution"][1]["sha256"] = "0" * 64


def _split_as_integer(data: dict[str, Any]) -> None:
    fields = next(r for r in data["recordSet"] if r["@id"] == "class_counts")["field"]
    next(f for f in fields if f["name"] == "split")["dataType"] = "sc:Integer"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_drop_sha256, "At least one of these properties should be defined: ['md5', 'sha256']"),
        (_wrong_sha256, "Hash of downloaded file"),
        (_split_as_integer, "invalid literal for int()"),
    ],
)
def test_a_broken_croissant_file_yields_problems(
    copy: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    edit_json(copy / "croissant.json", change)
    problems = croissant_problems(copy / "croissant.json")
    assert problems and all(p.startswith("error: ") for p in problems)
    assert any(expected in p for p in problems), problems


def test_stac_is_valid_and_per_chip_counts_equal_the_manifest(release: Path) -> None:
    collection_path = release / "stac" / "collection.json"
    assert stac_problems(collection_path) == []
    manifest = pl.read_parquet(release / "manifest.parquet")
    expected = manifest.unpivot([f"px_{c}" for c in CLASSES], index=["source", "chip_id"], variable_name="class")
    expected = expected.select(
        "source", "chip_id", pl.col("class").str.strip_prefix("px_"), pl.col("value").alias("count")
    )
    got = stac_class_counts(collection_path)
    assert_frame_equal(got, expected, check_row_order=False)
    collection = pystac.Collection.from_file(str(collection_path))
    assert collection.id == "cropharmony-1.2.0" and collection.license == "CC-BY-4.0"
    years = collection.extent.temporal.intervals[0]
    assert [d.isoformat() if d else None for d in years] == ["2019-01-01T00:00:00+00:00", "2021-12-31T23:59:59+00:00"]
    items = {item.id: item for item in collection.get_items(recursive=True)}
    assert len(items) == manifest.height
    for row in manifest.iter_rows(named=True):
        item = items[f"{row['source']}-{row['chip_id']}"]
        assert item.get_self_href() == str(release / "stac" / row["source"] / f"{row['chip_id']}.json")
        assert shape(item.geometry).contains(Point(row["lon"], row["lat"]))
        assert item.datetime is None and item.common_metadata.start_datetime.year == row["year"]  # type: ignore[union-attr]
        assert item.assets["image"].get_absolute_href() == str(release / "chips" / row["image_path"])
        assert item.assets["labels"].href == f"../../chips/{row['label_path']}"
    box = collection.extent.spatial.bboxes[0]
    assert box[0] <= manifest["lon"].min() and box[2] >= manifest["lon"].max()


def _negative_count(item: dict[str, Any]) -> None:
    item["properties"]["label:overviews"][0]["counts"][1]["count"] = -3


def _no_label_type(item: dict[str, Any]) -> None:
    item["properties"].pop("label:type")


def _unknown_class(item: dict[str, Any]) -> None:
    item["properties"]["label:overviews"][0]["counts"][0]["name"] = "barley"


def _bad_bbox(item: dict[str, Any]) -> None:
    item["bbox"] = "everywhere"


def _missing_asset(item: dict[str, Any]) -> None:
    item["assets"]["image"]["href"] = "../../chips/nowhere.tif"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_negative_count, "label:overviews[0].counts[1].count: -3 is negative"),
        (_no_label_type, "label:type: required, missing"),
        (_unknown_class, "'barley' is not among label:classes"),
        (_bad_bbox, "core schema: bbox: 'everywhere' is not of type 'array'"),
        (_missing_asset, "asset image: ../../chips/nowhere.tif does not exist"),
    ],
)
def test_a_broken_stac_item_yields_problems(
    copy: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    edit_json(copy / "stac" / "eurocrops" / "eurocrops_0001.json", change)
    problems = stac_problems(copy / "stac" / "collection.json")
    assert problems and all(p.startswith("eurocrops/eurocrops_0001.json: ") for p in problems), problems
    assert any(expected in p for p in problems), problems


def test_a_missing_item_file_is_a_problem(copy: Path) -> None:
    (copy / "stac" / "cdl" / "cdl_0002.json").unlink()
    assert stac_problems(copy / "stac" / "collection.json")[0].startswith("cdl/cdl_0002.json: cannot be read")


def test_writing_twice_gives_identical_bytes_and_leaves_no_temporary_files(
    release: Path, copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(copy.parent)  # publish passes a relative folder (releases/.<version>.tmp)
    write_croissant(Path(copy.name), INFO)
    write_stac(Path(copy.name), INFO)
    written = sorted(p.relative_to(release) for p in release.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(copy) for p in copy.rglob("*") if p.is_file())
    metadata = [p for p in written if p.parts[0] in ("stac", "croissant.json") and p.name != OWNER_MARKER]
    assert len(metadata) == 1 + 1 + 6  # croissant.json, collection.json and one item per chip: nothing else
    assert [p for p in written if p.name == OWNER_MARKER] == [Path("stac", OWNER_MARKER)]  # stage_output's marker
    for path in metadata:
        assert (copy / path).read_bytes() == (release / path).read_bytes(), path


def test_a_licence_that_is_not_spdx_and_a_synthetic_release(copy: Path) -> None:
    info = replace(INFO, licence="U.S. public domain", url="https://example.org/cropharmony", synthetic={"seed": 1})
    write_croissant(copy, info)
    write_stac(copy, info)
    assert croissant_problems(copy / "croissant.json") == []
    assert stac_problems(copy / "stac" / "collection.json") == []
    jsonld = json.loads((copy / "croissant.json").read_text())
    assert jsonld["license"] == "U.S. public domain" and jsonld["url"] == info.url
    assert "Synthetic data" in jsonld["description"]
    collection = json.loads((copy / "stac" / "collection.json").read_text())
    assert collection["license"] == "other" and "Synthetic data" in collection["description"]
    assert {"rel": "license", "href": "../README.md"}.items() <= next(
        link for link in collection["links"] if link["rel"] == "license"
    ).items()


def test_spdx_licence() -> None:
    assert spdx_licence("CC-BY-4.0") == "CC-BY-4.0"
    assert spdx_licence("cc-by-4.0") == "CC-BY-4.0"
    assert spdx_licence("CC BY 4.0") is None and spdx_licence("U.S. public domain") is None
    assert spdx_licence("MIT OR Apache-2.0") is None and spdx_licence("LicenseRef-custom") is None
