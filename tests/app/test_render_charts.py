"""Chip pictures (tiny GeoTIFFs written here) and the Altair chart specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import rasterio
from rasterio.transform import from_origin

from app import charts, render

BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
COLORS = {"ignore": "#000000", "maize": "#ffd300", "soybean": "#267000", "rice": "#00a8e2"}
ORDER = ["ignore", "maize", "soybean", "rice"]


def write_chip(path: Path, descriptions: tuple[str, ...] | None) -> Path:
    """13 bands of 4 x 4 pixels: band i is dark but for one bright pixel at flat position i, so bands are told apart."""
    data = np.full((13, 4, 4), 500, dtype=np.uint16)
    for i in range(13):
        data[i].flat[i] = 9000
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 13, "dtype": "uint16", "crs": "EPSG:32633"}
    with rasterio.open(path, "w", transform=from_origin(500000, 4000000, 10, 10), **profile) as dst:
        dst.write(data)
        for i, name in enumerate(descriptions or ()):
            dst.set_band_description(i + 1, name)
    return path


def bright_pixel(channel: np.ndarray) -> int:
    assert sorted(np.unique(channel).tolist()) == [0, 255]
    return int(np.flatnonzero(channel == 255)[0])


def test_band_indexes_from_descriptions_or_declared_order() -> None:
    assert render.band_indexes(BANDS, ("x",) * 13) == [4, 3, 2]
    assert render.band_indexes((None,) * 13, BANDS) == [4, 3, 2]
    satlas = ("B04", "B03", "B02", "B05", "B06", "B07", "B08", "B11", "B12")
    assert render.band_indexes((None,) * 9, satlas) == [1, 2, 3]
    # descriptions missing one RGB band: the declared order is used instead
    assert render.band_indexes(("B04", "B03", None), ("B02", "B03", "B04")) == [3, 2, 1]


def test_band_indexes_missing_band_is_named() -> None:
    with pytest.raises(ValueError, match=r"bands B03 not found: the chip's bands are B04, B02, B08"):
        render.band_indexes((None, None, None), ("B04", "B02", "B08"))


def test_rgb_composite_uses_band_descriptions(tmp_path: Path) -> None:
    chip = write_chip(tmp_path / "named.tif", BANDS)
    rgb = render.rgb_composite(chip, tuple(reversed(BANDS)))  # the file's own names win over a wrong order
    assert rgb.shape == (4, 4, 3)
    assert rgb.dtype == np.uint8
    assert [bright_pixel(rgb[..., c]) for c in range(3)] == [3, 2, 1]  # file bands 4, 3, 2


def test_rgb_composite_falls_back_to_declared_order(tmp_path: Path) -> None:
    chip = write_chip(tmp_path / "plain.tif", None)
    assert [bright_pixel(render.rgb_composite(chip, BANDS)[..., c]) for c in range(3)] == [3, 2, 1]
    swapped = ("B02", "B03", "B04", *BANDS[4:], "B01")
    assert [bright_pixel(render.rgb_composite(chip, swapped)[..., c]) for c in range(3)] == [2, 1, 0]


def test_stretch_maps_percentiles_to_0_255() -> None:
    ramp = np.arange(101, dtype=np.uint16).reshape(1, 1, 101)
    image = np.concatenate([ramp, ramp * 10 + 1000, np.full_like(ramp, 7)])
    out = render.stretch(image)
    assert out.dtype == np.uint8
    assert out[0, 0, [0, 2, 50, 98, 100]].tolist() == [0, 0, 127, 255, 255]
    assert np.array_equal(out[1], out[0])  # each band stretched on its own range
    assert out[2].max() == 0  # a flat band is black, not NaN


def test_palette_parses_hex() -> None:
    table = render.palette([0, 1, 3], ["#000000", "#ffd300", "#00A8e2"])
    assert table.shape == (256, 3)
    assert table.dtype == np.uint8
    assert table[1].tolist() == [255, 211, 0]
    assert table[3].tolist() == [0, 168, 226]
    assert table[2].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="zip"):
        render.palette([0, 1], ["#000000"])


def test_label_overlay_dims_ignore_and_colours_the_rest() -> None:
    table = render.palette([0, 1, 2], ["#000000", "#ffd300", "#267000"])
    rgb = np.array([[[100, 200, 40], [100, 200, 40], [10, 20, 20]]], dtype=np.uint8)
    labels = np.array([[0, 1, 2]], dtype=np.uint8)
    out = render.label_overlay(rgb, labels, table)
    assert out.dtype == np.uint8
    assert out[0, 0].tolist() == [40, 80, 16]  # ignore: the picture at 40%
    assert out[0, 1].tolist() == [201, 207, 14]  # 0.65 * (255, 211, 0) + 0.35 * (100, 200, 40)
    assert out[0, 2].tolist() == [28, 80, 7]  # 0.65 * (38, 112, 0) + 0.35 * (10, 20, 20)
    other_ignore = render.label_overlay(rgb, labels, table, ignore_id=2)
    assert other_ignore[0, 2].tolist() == [4, 8, 8]
    assert other_ignore[0, 0].tolist() == [35, 70, 14]  # class 0 is now coloured (black) at 65%


def test_read_labels(tmp_path: Path) -> None:
    labels = np.array([[0, 1], [5, 3]], dtype=np.uint8)
    path = tmp_path / "label.tif"
    profile = {"driver": "GTiff", "width": 2, "height": 2, "count": 1, "dtype": "uint8", "crs": "EPSG:4326"}
    with rasterio.open(path, "w", transform=from_origin(100, 200, 1, 1), **profile) as dst:
        dst.write(labels, 1)
    read = render.read_labels(path)
    assert read.dtype == np.uint8
    assert read.tolist() == [[0, 1], [5, 3]]


def data_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    (values,) = spec["datasets"].values()
    return values


def test_stacked_shares_spec() -> None:
    frame = pl.DataFrame(
        {"subset": ["all chips"] * 2, "class": ["maize", "rice"], "pixel_share": [0.4, 0.6], "pixels": [4, 6]}
    ).with_columns(chips=pl.lit(1))
    spec = charts.stacked_shares(frame, "subset", "pixel_share", COLORS, ["wheat", *ORDER], "Pixels").to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["title"] == "Pixels"
    enc = spec["encoding"]
    assert (enc["x"]["field"], enc["y"]["field"]) == ("subset", "pixel_share")
    assert enc["y"]["scale"]["domain"] == [0, 1]
    assert enc["color"]["scale"] == {"domain": ORDER, "range": [COLORS[c] for c in ORDER]}  # no colour, no entry
    assert spec["transform"][0]["calculate"].startswith("indexof(['wheat', 'ignore', 'maize'")
    assert [row["pixel_share"] for row in data_of(spec)] == [0.4, 0.6]


def test_native_shares_spec() -> None:
    frame = pl.DataFrame(
        {"subset": ["all chips"] * 2, "code": [5, 1], "name": ["Soybeans", "Corn"], "target": ["soybean", "maize"]}
    ).with_columns(share=pl.Series([0.6, 0.4]), pixels=pl.Series([6, 4]))
    spec = charts.native_shares(frame, "subset", COLORS, ORDER, "Native").to_dict()
    enc = spec["encoding"]
    assert enc["color"]["field"] == "target"
    assert enc["detail"]["field"] == "code"
    assert enc["order"] == {"field": "pixels", "sort": "descending", "type": "quantitative"}
    assert [row["code"] for row in data_of(spec)] == [5, 1]


@pytest.mark.parametrize(("diverging", "scale"), [(False, {"scheme": "viridis", "domain": [0, 1]}), (True, None)])
def test_heatmap_spec(diverging: bool, scale: dict[str, Any] | None) -> None:
    frame = pl.DataFrame({"target_source": ["a", "a"], "test_source": ["a", "b"], "gap": [0.0, -0.3]})
    spec = charts.heatmap(frame, "gap", "Gap", diverging=diverging).to_dict()
    cells, text = spec["layer"]
    assert cells["mark"]["type"] == "rect"
    assert cells["encoding"]["color"]["field"] == "gap"
    expected = scale or {"scheme": "redblue", "domainMid": 0}
    assert cells["encoding"]["color"]["scale"] == expected
    assert text["encoding"]["text"] == {"field": "gap", "format": ".2f", "type": "quantitative"}
    assert [row["gap"] for row in data_of(spec)] == [0.0, -0.3]


def test_learning_curves_and_class_recall_specs() -> None:
    curves = pl.DataFrame({"backbone": ["ssl4eo", "ssl4eo"], "k": [10, 100], "value": [0.8, 0.9], "sources": [2, 2]})
    spec = charts.learning_curves(curves, "oa", "Curves").to_dict()
    assert spec["mark"] == {"type": "line", "point": {"filled": True, "size": 70}}
    assert spec["encoding"]["y"]["title"] == "oa"
    assert spec["encoding"]["color"]["field"] == "backbone"
    assert spec["encoding"]["x"]["axis"]["values"] == [10, 100]  # a tick at each k run, none between
    recall = pl.DataFrame(
        {"target_source": ["a", "a"], "test_source": ["a", "a"], "class": ["maize", "rice"], "recall": [0.9, None]}
    ).with_columns(status=pl.Series(["measured", "absent"]), label=pl.Series(["0.9", "absent"]))
    spec = charts.class_recall(recall, COLORS, ORDER, "Recall").to_dict()
    assert spec["facet"]["column"]["field"] == "test_source"
    assert spec["spec"]["layer"][0]["encoding"]["x"]["sort"] == ORDER
    labels = [(row["class"], row["label"]) for row in data_of(spec)]
    assert labels == [("maize", "0.9"), ("rice", "absent")]  # the labels layer: every row, absent named
