"""The `subsets` stage end to end on small synthetic manifests (chips as 640 m squares on a grid)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from pyproj import Transformer

from curation.core.errors import CropharmonyError
from curation.core.failures import failures
from curation.core.params import load_section
from curation.core.schemas import class_column, manifest_schema, subsets_schema
from curation.subsets import stage as subsets
from curation.subsets.config import SubsetsParams
from curation.subsets.study_lists import list_bytes, list_name, read_list

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["ignore", "maize", "soybean", "rice", "wheat", "other"]
COMMON = ["maize", "soybean", "wheat", "other"]
CHIP_M, CHIP_PX = 640.0, 64
ORIGINS = {"cdl": (-93.5, 42.0, "EPSG:32615"), "nccm": (125.0, 45.0, "EPSG:32651")}
TO_WGS84: dict[str, Transformer] = {}


def _to_wgs84(crs: str) -> Transformer:
    if crs not in TO_WGS84:
        TO_WGS84[crs] = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return TO_WGS84[crs]


def make_manifest(
    seed: int = 0,
    chips: dict[str, int] | None = None,
    grid: int = 12,
    rare: dict[str, int] | None = None,
    absent: tuple[str, ...] = (),
    utm_every: int = 5,
) -> pl.DataFrame:
    """A valid manifest: `chips[source]` chips on distinct cells of a `grid`² Web Mercator grid of 640 m squares.

    Every `utm_every`-th chip of a source lies in that source's UTM zone instead (a 640 m square around the same
    centre), so sources mix CRSs. `rare[source]` chips of the source carry rice; classes in `absent` never occur.
    """
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for source, n in (chips or {"cdl": 120, "nccm": 90}).items():
        lon0, lat0, utm = ORIGINS[source]
        (ox,), (oy,) = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform([lon0], [lat0])
        cells = rng.choice(grid * grid, size=n, replace=False)
        rice = set(rng.choice(n, size=(rare or {}).get(source, 0), replace=False).tolist())
        common = [c for c in COMMON if c not in absent]
        to_utm = Transformer.from_crs("EPSG:3857", utm, always_xy=True)
        for i, cell in enumerate(cells.tolist()):
            col, row = divmod(cell, grid)
            minx, miny = ox + col * CHIP_M, oy + row * CHIP_M
            crs, chip_id = "EPSG:3857", f"2023_{col}_{row}"
            if utm_every and i % utm_every == utm_every - 1:
                (cx,), (cy,) = to_utm.transform([minx + CHIP_M / 2], [miny + CHIP_M / 2])
                crs, chip_id, minx, miny = utm, f"2023_u{col}_{row}", cx - CHIP_M / 2, cy - CHIP_M / 2
            (lon,), (lat,) = _to_wgs84(crs).transform([minx + CHIP_M / 2], [miny + CHIP_M / 2])
            area = CHIP_PX * CHIP_PX
            counts = dict.fromkeys(CLASSES, 0)
            for name in rng.choice(common, size=2, replace=False).tolist():
                counts[name] = int(rng.integers(area // 8, area // 3))
            if i in rice:
                counts["rice"] = area // 10
            counts["ignore"] = area - sum(counts.values())
            rows.append(
                {"chip_id": chip_id, "source": source, "region": "r", "continent": "c", "year": 2023, "crs": crs,
                 "minx": minx, "miny": miny, "maxx": minx + CHIP_M, "maxy": miny + CHIP_M, "lon": lon, "lat": lat,
                 "height": CHIP_PX, "width": CHIP_PX, **{class_column(c): counts[c] for c in CLASSES},
                 "dominant": max(CLASSES, key=lambda c: counts[c]), "image_path": f"{source}/images/{chip_id}.tif",
                 "label_path": f"{source}/labels/{chip_id}.tif", "grid": f"{crs}:{minx:.0f}:{miny:.0f}",
                 "label_grid": f"{crs}:{minx:.0f}:{miny:.0f}", "crosswalk_set": "toolkit"}
            )  # fmt: skip
    return pl.DataFrame(rows).with_columns(pl.col("year", "height", "width").cast(pl.Int64))


def write_project(tmp: Path, manifest: pl.DataFrame, **subsets_params: Any) -> Path:  # noqa: ANN401
    """params.yaml (the repo's, with a test `subsets` section) and the manifest, under `tmp`."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["shared"]["legends_dir"] = str(ROOT / "curation" / "legends")
    raw["subsets"] = {
        "seed": 0, "train_sizes": [4, 10, 20], "test_size": 8, "random_test_size": 0, "block_m": 1920.0,
        "buffer_m": 640.0, "min_class_share": 0.01, "allow_smaller": False, "published": None,
        "out": str(tmp / "subsets"), "report": str(tmp / "reports" / "subsets.json"),
        **subsets_params,
    }  # fmt: skip
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    manifest.write_parquet(tmp / "manifest.parquet")
    return params


def run_stage(tmp: Path, params: Path, out: str = "subsets", report: str = "report.json") -> dict[str, Any]:
    subsets.main(["--params", str(params), "--manifest", str(tmp / "manifest.parquet"), "--out", str(tmp / out),
                  "--report", str(tmp / report)])  # fmt: skip
    return dict(json.loads((tmp / report).read_text()))


def test_the_helper_manifest_is_valid() -> None:
    manifest = make_manifest()
    assert failures(manifest, manifest_schema(CLASSES, ["cdl", "nccm"])) == []
    assert manifest["crs"].n_unique() == 3


def stage_error(tmp: Path, params: Path, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_stage(tmp, params)
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def sets_of(frame: pl.DataFrame, source: str) -> dict[tuple[str, int], set[str]]:
    found: dict[tuple[str, int], set[str]] = {}
    for row in frame.filter(pl.col("source") == source).iter_rows(named=True):
        found.setdefault((row["split"], row["size"]), set()).add(row["chip_id"])
    return found


def test_training_sets_are_nested_and_disjoint_from_a_buffered_test_set(tmp_path: Path) -> None:
    report = run_stage(tmp_path, write_project(tmp_path, make_manifest()))
    out = tmp_path / "subsets"
    frame = pl.read_parquet(out / "subsets.parquet")
    assert failures(frame, subsets_schema(nested=True)) == []
    assert frame.rows() == frame.sort("source", "split", "size", "chip_id").rows()
    audit = json.loads((out / "leakage_audit.json").read_text())
    for source, study in (("cdl", "cdl_2023"), ("nccm", "nccm_2019")):
        sets = sets_of(frame, source)
        train = [sets[("train", k)] for k in (4, 10, 20)]
        assert [len(s) for s in train] == [4, 10, 20] and len(sets[("test", 8)]) == 8
        assert train[0] < train[1] < train[2]
        assert not train[2] & sets[("test", 8)]
        entry = audit["sources"][source]
        assert entry["clean"] and entry["shared_chips"] == 0 and entry["overlaps"] == 0
        assert entry["min_distance_m"] >= 640.0
        listed = read_list(out / "lists" / list_name(study, "train", 20))
        assert listed[:10] == read_list(out / "lists" / list_name(study, "train", 10))  # one ordering, prefixes
        assert set(listed) == train[2]
        assert (out / "lists" / list_name(study, "test", 8)).read_bytes().startswith(b"Test\r\n")
        counts = report["sources"][source]
        assert counts["pool"] + counts["excluded_by_buffer"] + counts["test_block_chips"] == counts["chips"]
        assert counts["excluded_by_buffer"] > 0
    assert audit["clean"] is True


def test_stratification_covers_the_pool_and_puts_a_one_chip_class_in_the_smallest_set(tmp_path: Path) -> None:
    report = run_stage(tmp_path, write_project(tmp_path, make_manifest(seed=1, rare={"cdl": 1})))
    cdl = report["sources"]["cdl"]
    assert "rice" in cdl["classes_in_pool"]  # the one rice chip lies in the pool with this seed
    assert "rice" in cdl["sets"]["train_4"]["classes_present"]
    assert cdl["sets"]["train_10"]["classes_present"] == cdl["classes_in_pool"]
    assert cdl["sets"]["train_4"]["chip_share"]["rice"] == 0.25
    nccm = report["sources"]["nccm"]
    assert nccm["sets"]["train_10"]["classes_missing"] == {"rice": "absent from the source"}


def test_classes_a_small_set_cannot_hold_are_reported_with_the_reason(tmp_path: Path) -> None:
    manifest = make_manifest(seed=1, rare={"cdl": 1})
    report = run_stage(tmp_path, write_project(tmp_path, manifest, train_sizes=[1, 10, 20]))
    small = report["sources"]["cdl"]["sets"]["train_1"]  # a chip holds at most 3 of the pool's 5 classes
    assert len(small["classes_present"]) < 5 and len(small["classes_missing"]) >= 1
    for reason in small["classes_missing"].values():
        assert reason.startswith("set too small: covering the 5 classes of the pool takes") and reason.endswith(
            "it has 1"
        )


def test_a_pool_too_small_fails_naming_source_size_and_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = write_project(tmp_path, make_manifest(chips={"cdl": 40, "nccm": 90}), train_sizes=[4, 10, 100])
    err = stage_error(tmp_path, params, capsys)
    assert (
        "pool size: source 'cdl' has" in err and "after blocking and buffering, 100-chip training set needs 100" in err
    )
    assert "source 'nccm'" in err  # every source's shortfall in one error
    assert "Fix: lower subsets.train_sizes or set subsets.allow_smaller: true" in err
    assert not (tmp_path / "subsets").exists() and not (tmp_path / "report.json").exists()


def test_allow_smaller_gives_the_pool_and_keeps_the_nominal_size(tmp_path: Path) -> None:
    manifest = make_manifest(chips={"cdl": 40, "nccm": 90})
    report = run_stage(tmp_path, write_project(tmp_path, manifest, train_sizes=[4, 10, 100], allow_smaller=True))
    cdl = report["sources"]["cdl"]
    assert cdl["sizes"]["train_100"] == {"nominal": 100, "actual": cdl["pool"]} and cdl["pool"] < 100
    assert (
        f"allow_smaller: the 100-chip training set has the {cdl['pool']} chips after blocking and buffering"
        in cdl["notes"]
    )
    frame = pl.read_parquet(tmp_path / "subsets" / "subsets.parquet")
    big = frame.filter((pl.col("source") == "cdl") & (pl.col("size") == 100))
    assert big.height == cdl["pool"]


def test_same_manifest_and_params_give_byte_identical_outputs(tmp_path: Path) -> None:
    manifest = make_manifest(seed=3)
    params = write_project(tmp_path, manifest)
    run_stage(tmp_path, params, out="first", report="first.json")
    manifest.sample(fraction=1.0, shuffle=True, seed=7).write_parquet(tmp_path / "manifest.parquet")
    run_stage(tmp_path, params, out="second", report="second.json")
    first = sorted(p.relative_to(tmp_path / "first") for p in (tmp_path / "first").rglob("*") if p.is_file())
    assert len(first) == 11  # manifest, audit, 2 sources x 4 lists, the owner marker
    for name in first:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
    assert (tmp_path / "first.json").read_bytes() == (tmp_path / "second.json").read_bytes()


def write_lists(folder: Path, study: str, sets: dict[str, list[str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, ids in sets.items():
        (folder / f"sentinel2_{study}_subsampled_{name}.csv").write_bytes(list_bytes(ids))


def published_world(tmp: Path, manifest: pl.DataFrame) -> tuple[Path, dict[str, dict[str, list[str]]]]:
    """Study-format lists for both sources: a 4-list outside the 10-list (as the study's), `_10_train` naming."""
    folder = tmp / "published"
    chosen: dict[str, dict[str, list[str]]] = {}
    for source, study in (("cdl", "cdl_2023"), ("nccm", "nccm_2019")):
        ids = sorted(manifest.filter(pl.col("source") == source)["chip_id"].to_list())
        chosen[source] = {"test": ids[:8], "4": ids[8:12], "10_train": ids[20:30], "20": ids[20:40]}
        write_lists(folder, study, chosen[source])
    return folder, chosen


def test_published_lists_replace_selection_and_non_nesting_is_a_reported_quirk(tmp_path: Path) -> None:
    manifest = make_manifest(seed=2)
    folder, chosen = published_world(tmp_path, manifest)
    params = write_project(tmp_path, manifest, published=str(folder), published_revision="first")
    report = run_stage(tmp_path, params)
    frame = pl.read_parquet(tmp_path / "subsets" / "subsets.parquet")
    for source in ("cdl", "nccm"):
        sets = sets_of(frame, source)
        assert sets[("test", 8)] == set(chosen[source]["test"])
        assert sets[("train", 4)] == set(chosen[source]["4"])
        assert sets[("train", 10)] == set(chosen[source]["10_train"])
        assert sets[("train", 20)] == set(chosen[source]["20"])
        entry = report["sources"][source]
        assert entry["mode"] == "published" and entry["nested"] is False and entry["revision"] == "first"
        assert any("4-chip training list is not nested in the 10-chip list: 4 of its 4" in n for n in entry["notes"])
        assert any("under the 640 m buffer" in n for n in entry["notes"])  # reported, not enforced, on published lists
    written = tmp_path / "subsets" / "lists" / list_name("cdl_2023", "train", 20)
    assert read_list(written) == chosen["cdl"]["20"]  # list order kept
    assert json.loads((tmp_path / "subsets" / "leakage_audit.json").read_text())["clean"] is True


def test_published_ids_missing_from_the_manifest_are_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = make_manifest(seed=2)
    folder, chosen = published_world(tmp_path, manifest)
    ghosts = [f"2023_9{i}_99" for i in range(7)]
    write_lists(folder, "cdl_2023", {"20": chosen["cdl"]["20"][:13] + ghosts})
    params = write_project(tmp_path, manifest, published=str(folder), published_revision="first")
    err = stage_error(tmp_path, params, capsys)
    assert "cannot make the subsets (1 problem)" in err
    assert "sentinel2_cdl_2023_subsampled_20.csv: listed chips in the manifest" in err
    assert "7 of 20 chips are not in the manifest: 2023_90_99, 2023_91_99" in err and "(+2 more)" in err
    assert "set subsets.published: null" in err
    assert not (tmp_path / "subsets").exists()


def test_final_lists_replace_the_first_and_the_sets_need_not_be_nested(tmp_path: Path) -> None:
    """As the study's final 10-chip lists: inside the largest list, outside the next, read from final-10/."""
    manifest = make_manifest(seed=2)
    folder, chosen = published_world(tmp_path, manifest)
    final = chosen["cdl"]["20"][-10:]  # in the 20-chip list, none in the 4; the 10_train list keeps the first ten
    write_lists(folder / "final-10", "cdl_2023", {"10": final})  # nccm has none: its first list is used, noted
    report = run_stage(tmp_path, write_project(tmp_path, manifest, published=str(folder)))  # revision: final
    frame = pl.read_parquet(tmp_path / "subsets" / "subsets.parquet")
    assert sets_of(frame, "cdl")[("train", 10)] == set(final)
    assert sets_of(frame, "nccm")[("train", 10)] == set(chosen["nccm"]["10_train"])
    assert sets_of(frame, "cdl")[("train", 20)] == set(chosen["cdl"]["20"])
    assert failures(frame, subsets_schema(nested=False)) == []
    assert [f.rule for f in failures(frame, subsets_schema(nested=True))][:1] == ["training sets nested"]
    cdl, nccm = report["sources"]["cdl"], report["sources"]["nccm"]
    assert cdl["revision"] == "final" and cdl["nested"] is False
    assert cdl["files"]["10"] == str(folder / "final-10" / list_name("cdl_2023", "train", 10))
    assert nccm["files"]["10"] == str(folder / "sentinel2_nccm_2019_subsampled_10_train.csv")
    assert any(n.startswith("final-10/ has no 10-chip list for 'nccm_2019'") for n in nccm["notes"])
    assert any("the 4-chip training list is not nested in the 10-chip list" in n for n in cdl["notes"])
    assert read_list(tmp_path / "subsets" / "lists" / list_name("cdl_2023", "train", 10)) == final


def test_final_lists_without_their_folder_are_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = make_manifest(seed=2)
    folder, _ = published_world(tmp_path, manifest)
    err = stage_error(tmp_path, write_project(tmp_path, manifest, published=str(folder)), capsys)
    assert "cannot make the subsets (1 problem)" in err  # once, not once per source
    assert f"{folder / 'final-10'}: final lists exist (subsets.published_revision: final)" in err
    assert "set subsets.published_revision: first" in err
    assert not (tmp_path / "subsets").exists()


def test_a_failing_audit_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = make_manifest(seed=2)
    web = manifest.filter((pl.col("source") == "cdl") & (pl.col("crs") == "EPSG:3857"))  # no UTM chip overlaps it
    last = sorted(web["chip_id"].to_list())[-1]  # in no list yet
    twin = manifest.filter(pl.col("chip_id") == last).with_columns(pl.lit("2023_twin").alias("chip_id"))
    manifest = pl.concat([manifest, twin])  # the same footprint under another id
    folder, chosen = published_world(tmp_path, manifest)
    write_lists(
        folder, "cdl_2023", {"test": [*chosen["cdl"]["test"][:7], last], "20": ["2023_twin", *chosen["cdl"]["20"][1:]]}
    )
    (tmp_path / "subsets").mkdir()
    (tmp_path / "subsets" / "old.txt").write_text("a previous run")
    params = write_project(tmp_path, manifest, published=str(folder), published_revision="first")
    err = stage_error(tmp_path, params, capsys)
    assert (
        "leakage audit failed (1 problem)" in err and "source 'cdl': 1 overlapping train/test footprint pair(s)" in err
    )
    assert f"closest pairs (train/test): 2023_twin/{last} 0.0 m" in err and "in both" not in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    assert [p.name for p in (tmp_path / "subsets").iterdir()] == ["old.txt"]  # the previous output is untouched
    assert not (tmp_path / "report.json").exists()


def test_an_invalid_manifest_is_one_error_listing_every_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = make_manifest().with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(-1).otherwise(pl.col("px_maize")).alias("px_maize"),
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("mars")).otherwise(pl.col("source")).alias("source"),
    )
    err = stage_error(tmp_path, write_project(tmp_path, manifest), capsys)
    assert "chip manifest is invalid" in err and "manifest.parquet" in err
    assert "column px_maize: 3 failure(s)" in err and "column source: 1 failure(s)" in err
    assert "counts sum to the chip area" in err


def test_help_and_a_missing_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        subsets.main(["--help"])
    assert exit_info.value.code == 0
    assert "--manifest" in capsys.readouterr().out
    params = write_project(tmp_path, make_manifest())
    (tmp_path / "manifest.parquet").unlink()
    err = stage_error(tmp_path, params, capsys)
    assert "manifest.parquet: file exists: no such file" in err
    manifest = make_manifest()
    err = stage_error(tmp_path, write_project(tmp_path, manifest, published=str(tmp_path / "nowhere")), capsys)
    assert "nowhere: folder exists: none. Fix: point subsets.published at the study's lists" in err


def test_plan_raises_without_writing(tmp_path: Path) -> None:
    params = load_section(SubsetsParams, write_project(tmp_path, make_manifest(chips={"cdl": 20}), test_size=30))
    with pytest.raises(CropharmonyError, match="has 20 chips in the source, 30-chip test set needs 30"):
        subsets.plan(make_manifest(chips={"cdl": 20}), params, CLASSES)
    assert not (tmp_path / "subsets").exists()


def test_footprints_from_several_crss_share_one_metric_frame() -> None:
    manifest = make_manifest(chips={"cdl": 10}, utm_every=2).sort("chip_id")
    chips = subsets.source_chips(manifest, CLASSES, 0.01)
    assert "+proj=aeqd" in chips.frame and "+lat_0=42.0" in chips.frame
    quads = chips.quads
    sides = np.hypot(*(quads[:, 1] - quads[:, 0]).T)
    utm = (manifest["crs"] == "EPSG:32615").to_numpy()
    assert sides[utm] == pytest.approx(640.0, rel=6e-3)  # UTM metres are metres, up to the spherical frame's 0.6 %
    assert sides[~utm] == pytest.approx(640.0 * np.cos(np.radians(42.0)), rel=6e-3)  # Web Mercator units are not
    centres = quads.mean(axis=1)
    (lon,), (lat,) = Transformer.from_crs(chips.frame, "EPSG:4326", always_xy=True).transform(
        [centres[0, 0]], [centres[0, 1]]
    )
    assert (lon, lat) == pytest.approx((manifest["lon"][0], manifest["lat"][0]), abs=1e-6)
