"""The data card: read back from a hand-built release folder, its tables must say exactly what the files say."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest

from curation.publish.card import write_card
from curation.publish.info import ReleaseInfo
from curation.sources import SOURCES

CLASSES = ("ignore", "maize", "soybean", "rice", "wheat", "other")
COLORS = ("#000000", "#ffd300", "#267000", "#00a8e2", "#a57000", "#9e9e9e")
SIDE = 4  # chips of 4 x 4 px
# per source: chip id -> pixels of each class (sums to 16)
PIXELS = {
    "cdl": {"c1": (2, 6, 4, 0, 0, 4), "c2": (0, 0, 10, 3, 0, 3), "c3": (16, 0, 0, 0, 0, 0)},
    "eurocrops": {"e1": (5, 0, 0, 0, 11, 0), "e2": (1, 7, 0, 0, 0, 8), "e3": (0, 0, 0, 0, 16, 0)},
}
# (split, size) -> chips: training sets nested, test disjoint
MEMBERS = {("train", 1): (0,), ("train", 2): (0, 1), ("test", 1): (2,)}
DECISIONS = (
    {"source": "cdl", "code": 3, "name": "Rice", "target": "rice", "note": "decision: the study sent it to other"},
    {"source": "cdl", "code": 26, "name": "Dbl Crop WinWht/Soybeans", "target": "ignore", "note": "decision: double"},
)
DIFFERENCES = (
    {"code": 3, "name": "Rice", "paper": "other", "source": "cdl", "toolkit": "rice"},
    {"code": 26, "name": "Dbl Crop WinWht/Soybeans", "paper": "other", "source": "cdl", "toolkit": "ignore"},
    {"code": 3301090400, "name": "green silage maize", "paper": "other", "source": "eurocrops", "toolkit": "maize"},
)
CHANGELOG = (("1.1.0", "added chips"), ("1.0.1", "card wording"), ("1.0.0", "first release"))
WORLD = {"seed": 7, "chips_per_source": 3, "chip_px": SIDE, "marker": "SYNTHETIC"}


def build_release(root: Path, with_subsets: bool = True) -> Path:
    """A release folder with the manifest, class counts, subsets and validation summary publish writes."""
    manifest_rows, subset_rows, count_rows = [], [], []
    for source, chips in PIXELS.items():
        ids = list(chips)
        for chip_id, pixels in chips.items():
            counts = {f"px_{name}": n for name, n in zip(CLASSES, pixels, strict=True)}
            dominant = CLASSES[max(range(len(CLASSES)), key=lambda i: pixels[i])]
            manifest_rows.append(
                {"chip_id": chip_id, "source": source, "region": "r", "continent": "c", "year": 2021}
                | {"crs": "EPSG:32632", "minx": 0.0, "miny": 0.0, "maxx": 40.0, "maxy": 40.0, "lon": 9.0, "lat": 45.0}
                | {"height": SIDE, "width": SIDE, **counts, "dominant": dominant}
                | {"image_path": f"{source}/images/{chip_id}.tif", "label_path": f"{source}/labels/{chip_id}.tif"}
                | {"grid": "g", "label_grid": "g", "crosswalk_set": "toolkit"}
            )
        for (split, size), members in MEMBERS.items():
            chosen = [ids[i] for i in members]
            subset_rows += [{"chip_id": c, "source": source, "split": split, "size": size} for c in chosen]
            for k, name in enumerate(CLASSES):
                values = [chips[c][k] for c in chosen]
                count_rows.append(
                    {"source": source, "split": split, "size": size, "class": name}
                    | {"pixels": sum(values), "chips": sum(v > 0 for v in values)}
                )
    release = root / "1.1.0"
    (release / "subsets").mkdir(parents=True)
    (release / "validation").mkdir()
    pl.DataFrame(manifest_rows).write_parquet(release / "manifest.parquet")
    if with_subsets:
        pl.DataFrame(subset_rows).write_parquet(release / "subsets" / "subsets.parquet")
    pl.DataFrame(count_rows).write_csv(release / "class_counts.csv")
    summary = {
        "ok": True,
        "crosswalk_set": "toolkit",
        "sources": {
            "cdl": {"chips": 3, "errors": 0, "warnings": 2},
            "eurocrops": {"chips": 3, "errors": 0, "warnings": 0},
        },
    }
    (release / "validation" / "summary.json").write_text(json.dumps(summary))
    return release


def make_info(synthetic: dict[str, object] | None = WORLD) -> ReleaseInfo:
    return ReleaseInfo(
        version="1.1.0",
        title="cropharmony benchmark",
        description="Harmonized crop-type chips from two continents.",
        date="2026-11-25",
        licence="CC BY 4.0",
        url=None,
        changelog=CHANGELOG,
        crosswalk_set="toolkit",
        class_ids=tuple(range(len(CLASSES))),
        class_names=CLASSES,
        class_colors=COLORS,
        sources=(SOURCES["cdl"].info, SOURCES["eurocrops"].info),
        differences=DIFFERENCES,
        decisions=DECISIONS,
        synthetic=dict(synthetic) if synthetic is not None else None,
        bands=("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A"),
        chip_px=SIDE,
        resolution_m=10.0,
        path="releases/1.1.0",
        tag="data-v1.1.0",
    )


def section(card: str, heading: str) -> list[str]:
    """The lines under `heading` up to the next heading of any level."""
    lines = card.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return lines[start:end]


def tables(lines: list[str]) -> list[list[list[str]]]:
    """Every Markdown table in `lines`, as rows of cells (header first, the rule dropped)."""
    found: list[list[list[str]]] = []
    previous = ""
    for line in lines:
        if line.startswith("|") and not line.startswith("|---"):
            if not previous.startswith("|"):
                found.append([])
            found[-1].append([c.strip() for c in line.strip("|").split(" | ")])
        previous = line
    return found


def rows(lines: list[str]) -> list[list[str]]:
    """The body rows of the only table in `lines`."""
    (table,) = tables(lines)
    return table[1:]


def shares_from_csv(release: Path, source: str | None, split: str, size: int) -> list[str]:
    """Each class's share of the subset's pixels, computed by hand from class_counts.csv."""
    counts = pl.read_csv(release / "class_counts.csv").filter(pl.col("split") == split, pl.col("size") == size)
    if source is not None:
        counts = counts.filter(pl.col("source") == source)
    pixels = {name: counts.filter(pl.col("class") == name)["pixels"].sum() for name in CLASSES}
    total = sum(pixels.values())
    return [f"{100 * pixels[name] / total:.1f}" for name in CLASSES]


@pytest.fixture
def release(tmp_path: Path) -> Path:
    return build_release(tmp_path)


def test_banner_only_for_synthetic_data(release: Path) -> None:
    card = write_card(release, make_info()).read_text(encoding="utf-8")
    lines = card.splitlines()
    assert lines[0] == "# cropharmony benchmark 1.1.0"
    banner = next(line for line in lines if line.startswith("> "))
    assert banner.startswith("> **Synthetic data.**") and lines.index(banner) < lines.index("## Summary")
    assert "seed 7" in banner and "3 chips per source" in banner and "4 x 4 px" in banner and "not real" in banner
    real = write_card(release, make_info(None)).read_text(encoding="utf-8")
    assert "Synthetic" not in real and not any(line.startswith(">") for line in real.splitlines())


def test_sections_in_order_and_summary(release: Path) -> None:
    card = write_card(release, make_info()).read_text(encoding="utf-8")
    headings = [line for line in card.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Summary",
        "## Sources",
        "## Classes",
        "## Crosswalk decisions",
        "## Class balance",
        "## Validation",
        "## Files",
        "## Version and changelog",
    ]
    summary = "\n".join(section(card, "## Summary"))
    assert "6 chips from 2 sources" in summary and "4 x 4 px at 10 m" in summary and "not public yet" in summary
    assert "B01, B02, B03, B04, B05, B06, B07, B08, B09, B10, B11, B12, B8A" in summary
    assert "`toolkit`" in summary and "2026-11-25" in summary and "CC BY 4.0" in summary
    assert "@misc{" in summary and "version = {1.1.0}" in summary and "year = {2026}" in summary
    assert "url = {" not in summary  # nothing to point at yet
    assert "`sha256sum -c SHA256SUMS`" in summary
    assert "dvc import <repository url> releases/1.1.0 --rev data-v1.1.0" in summary
    public = dataclasses.replace(make_info(), url="https://github.com/org/repo")
    card = write_card(release, public).read_text(encoding="utf-8")
    assert "dvc import https://github.com/org/repo releases/1.1.0 --rev" in card and "not public yet" not in card
    assert "url = {https://github.com/org/repo}," in card


def test_sources_licences_dois_and_chips(release: Path) -> None:
    card = write_card(release, make_info()).read_text(encoding="utf-8")
    lines = section(card, "## Sources")
    assert "own licence" in "\n".join(lines)
    table = {row[0]: row for row in rows(lines)}
    assert set(table) == {"cdl", "eurocrops"}
    for name in table:
        info = SOURCES[name].info
        assert info.licence in table[name] and table[name][-1] == "3"
        assert info.doi in table[name][6] if info.doi else table[name][6] == "none"
    assert "10.5281/zenodo.6866846" in table["eurocrops"][6]
    assert table["cdl"][3] == "2017-2023"


def test_classes_and_ignore_semantics(release: Path) -> None:
    card = write_card(release, make_info()).read_text(encoding="utf-8")
    lines = section(card, "## Classes")
    assert rows(lines) == [[str(i), n, f"`{c}`"] for i, (n, c) in enumerate(zip(CLASSES, COLORS, strict=True))]
    text = "\n".join(lines)
    assert "nodata" in text and "outside" in text and "losses and metrics skip it" in text
    assert "in CDL it includes non-crop land" in text and "EuroCrops it is only other declared crops" in text


def test_decisions_and_differences(release: Path) -> None:
    card = write_card(release, make_info()).read_text(encoding="utf-8")
    lines = section(card, "## Crosswalk decisions")
    decisions, differences = tables(lines)
    assert decisions == [
        ["source", "code", "name", "target", "note"],
        ["cdl", "3", "Rice", "rice", "decision: the study sent it to other"],
        ["cdl", "26", "Dbl Crop WinWht/Soybeans", "ignore", "decision: double"],
    ]
    assert differences == [
        ["source", "code", "name", "toolkit", "paper"],  # the set used first
        ["cdl", "3", "Rice", "rice", "other"],
        ["cdl", "26", "Dbl Crop WinWht/Soybeans", "ignore", "other"],
        ["eurocrops", "3301090400", "green silage maize", "maize", "other"],
    ]
    assert "Codes `paper` map differently from `toolkit`, per source: cdl 2, eurocrops 1." in lines


@pytest.mark.parametrize("with_subsets", [True, False])
def test_class_balance_matches_class_counts(tmp_path: Path, with_subsets: bool) -> None:
    release = build_release(tmp_path, with_subsets)
    card = write_card(release, make_info()).read_text(encoding="utf-8")
    lines = section(card, "### cdl")
    (whole,) = tables(lines)
    assert whole[0] == ["subset", *(f"{c} %" for c in CLASSES), "chips"]
    table = {row[0]: row[1:] for row in whole[1:]}
    assert list(table) == ["train 1", "train 2", "test 1"]
    # cdl train 2 = c1 + c2: 2/6/14/3/0/7 of 32 pixels
    assert table["train 2"] == [*shares_from_csv(release, "cdl", "train", 2), "2"]
    assert table["train 2"][:-1] == ["6.2", "18.8", "43.8", "9.4", "0.0", "21.9"]
    assert table["test 1"] == ["100.0", "0.0", "0.0", "0.0", "0.0", "0.0", "1"]
    overall = {row[0]: row[1:] for row in rows(section(card, "### All sources, train"))}
    assert list(overall) == ["train 1", "train 2"]
    assert overall["train 2"] == [*shares_from_csv(release, None, "train", 2), "4"]
    assert [row[0] for row in rows(section(card, "### All sources, test"))] == ["test 1"]


def test_validation_files_and_changelog(release: Path) -> None:
    card = write_card(release, make_info()).read_text(encoding="utf-8")
    lines = section(card, "## Validation")
    assert "passed" in lines[1] and rows(lines) == [["cdl", "3", "yes", "0", "2"], ["eurocrops", "3", "yes", "0", "0"]]
    files = "\n".join(section(card, "## Files"))
    for name in ("README.md", "SHA256SUMS", "manifest.parquet", "class_counts.csv", "chips/", "stac/", "validation/"):
        assert f"`{name}`" in files
    changes = [line for line in section(card, "## Version and changelog") if line.startswith("- ")]
    assert changes == ["- 1.1.0: added chips", "- 1.0.1: card wording", "- 1.0.0: first release"]
    assert "major" in card and "re-split" in card and "minor" in card and "patch" in card


def test_deterministic_and_atomic(release: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {p.name for p in release.iterdir()}
    path = write_card(release, make_info())
    first = path.read_bytes()
    assert path == release / "README.md"
    assert write_card(release, make_info()).read_bytes() == first
    assert {p.name for p in release.iterdir()} == before | {"README.md"}  # no temporary file left

    def fail(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("curation.core.io.os.fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        write_card(release, make_info(None))
    assert path.read_bytes() == first  # an interrupted write leaves the previous card whole
    assert {p.name for p in release.iterdir()} == before | {"README.md"}
