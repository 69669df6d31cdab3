"""Stage `publish` on the tiny demo project: files, checksums, metadata, the version guard, push and import."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import rasterio
import yaml

from curation.core.outputs import OWNER_MARKER
from curation.core.registry import demo_sources
from curation.publish.metadata import croissant_class_counts, croissant_problems, stac_class_counts, stac_problems
from curation.publish.stage import released_list
from curation.publish.verify import verify_release
from curation.sources import SOURCES
from tests.tiny_project import TinyProject, run

VERSION = "1.0.0"
CLASSES = ("ignore", "maize", "soybean", "rice", "wheat", "other")
SKIP = shutil.ignore_patterns("runs", "evals", "metrics", "cache", "tmp", ".git", "__pycache__")


@pytest.fixture(scope="module")
def release(tiny_project: TinyProject) -> Path:
    """The release `dvc repro` wrote in the tiny project (its publish.train_sizes: 2, 4, 8)."""
    assert "Running stage 'publish'" in tiny_project.output
    return tiny_project.root / "releases" / VERSION


@pytest.fixture
def project(tiny_project: TinyProject, tmp_path: Path) -> Path:
    """A git repository holding a copy of the tiny project without training outputs, for the stateful tests."""
    root = tmp_path / "project"
    shutil.copytree(tiny_project.root, root, ignore=SKIP)
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "test@example.org"], root)
    run(["git", "config", "user.name", "test"], root)
    return root


def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_release_holds_the_chosen_subsets_and_every_file_is_summed(release: Path) -> None:
    subsets = pl.read_parquet(release / "subsets" / "subsets.parquet")
    assert sorted(subsets.select("split", "size").unique().rows()) == [
        ("test", 4),
        ("train", 2),
        ("train", 4),
        ("train", 8),
    ]
    manifest = pl.read_parquet(release / "manifest.parquet")
    assert manifest.height == 12 * len(demo_sources())  # 8 training (nested 2 < 4 < 8) and 4 test chips per source
    assert set(manifest["chip_id"]) == set(subsets["chip_id"])
    for row in manifest.iter_rows(named=True):
        assert (release / "chips" / row["image_path"]).is_file() and (release / "chips" / row["label_path"]).is_file()
        with rasterio.open(release / "chips" / row["image_path"]) as image:  # chip products' VRTs become stacks
            assert row["image_path"].endswith(".tif") and image.driver == "GTiff" and image.count == 13
    chips = pl.read_parquet(release.parents[1] / "data" / "chips" / "manifest.parquet")
    assert chips.filter(pl.col("image_path").str.ends_with(".vrt")).height > 0  # the products, in the chips output
    assert not list((release / "chips").glob("*/bands"))
    for name in ("README.md", "release.json", "croissant.json", "stac/collection.json", "class_counts.csv"):
        assert (release / name).is_file(), name
    assert (release / "crosswalks" / "cdl.csv").is_file() and (release / "validation" / "summary.json").is_file()
    lists = sorted(p.name for p in (release / "subsets" / "lists").glob("sentinel2_cdl_*.csv"))
    assert lists == [f"sentinel2_cdl_2023_subsampled_{n}.csv" for n in ("2", "4", "8", "test")]
    assert verify_release(release).problems == []
    listed = (release / "SHA256SUMS").read_text().splitlines()
    markers = list(release.rglob(OWNER_MARKER))  # the stage markers (release and stac/): bookkeeping, not listed
    assert (release / OWNER_MARKER) in markers
    assert len(listed) == sum(1 for p in release.rglob("*") if p.is_file()) - 1 - len(markers)
    done = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=release, capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr  # the coreutils tool agrees


def test_a_changed_or_extra_file_fails_verification(release: Path, tmp_path: Path) -> None:
    copy = tmp_path / "release"
    shutil.copytree(release, copy)
    (copy / "class_counts.csv").write_text((copy / "class_counts.csv").read_text() + "\n")
    (copy / "extra.txt").write_text("x")
    found = {(p.file, p.rule) for p in verify_release(copy).problems}
    assert (str(copy / "class_counts.csv"), "sha256 matches SHA256SUMS") in found
    assert (str(copy / "extra.txt"), "every file is listed") in found
    done = cli(["curation.cli", "publish", "verify", str(copy)], tmp_path)
    assert done.returncode == 1 and f"{copy / 'extra.txt'}: every file is listed" in done.stderr


def test_class_counts_read_back_from_croissant_and_stac_match_the_manifest(release: Path) -> None:
    assert croissant_problems(release / "croissant.json") == []
    assert stac_problems(release / "stac" / "collection.json") == []
    counts = pl.read_csv(release / "class_counts.csv")
    from_croissant = croissant_class_counts(release / "croissant.json")
    assert from_croissant.sort(counts.columns).rows() == counts.sort(counts.columns).rows()
    manifest = pl.read_parquet(release / "manifest.parquet")
    subsets = pl.read_parquet(release / "subsets" / "subsets.parquet")
    test_cdl = manifest.join(subsets.filter(pl.col("split") == "test"), on=["source", "chip_id"]).filter(
        pl.col("source") == "cdl"
    )
    for name in CLASSES:
        row = counts.filter(pl.col("source") == "cdl", pl.col("split") == "test", pl.col("class") == name)
        assert row["pixels"].item() == test_cdl[f"px_{name}"].sum()
    per_chip = stac_class_counts(release / "stac" / "collection.json")
    assert per_chip.select("source", "chip_id").unique().height == manifest.height
    for row in manifest.head(5).iter_rows(named=True):
        chip = per_chip.filter(pl.col("source") == row["source"], pl.col("chip_id") == row["chip_id"])
        assert dict(chip.select("class", "count").rows()) == {c: row[f"px_{c}"] for c in CLASSES}


def test_data_card_says_synthetic_and_version(release: Path) -> None:
    card = (release / "README.md").read_text()
    assert "**Synthetic data.**" in card and VERSION in card
    assert all(SOURCES[name].info.licence in card for name in demo_sources())


def test_publishing_refuses_to_overwrite_and_to_under_bump(project: Path) -> None:
    release = project / "releases" / VERSION
    published = project / "releases" / "published"
    published.mkdir(parents=True)
    fingerprints = json.loads((release / "release.json").read_text())["fingerprints"]
    record = {"version": VERSION, "tag": f"data-v{VERSION}", "fingerprints": fingerprints, "sums_sha256": "0" * 64}
    (published / f"{VERSION}.json").write_text(json.dumps(record))
    refused = cli(["curation.publish"], project)
    assert refused.returncode == 1 and "published versions are immutable" in refused.stderr
    assert not list((project / "releases").glob(".*.tmp"))  # nothing half-written left

    params_file = project / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["publish"].update(version="1.0.1", changelog={"1.0.1": "wording", VERSION: "first release"})
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    patch = cli(["curation.publish"], project)
    assert patch.returncode == 0, patch.stderr
    assert "a patch version after 1.0.0" in patch.stdout and (project / "releases" / "1.0.1").is_dir()

    crosswalk = project / "curation" / "legends" / "cdl.csv"
    crosswalk.write_text(crosswalk.read_text().replace("4,Sorghum,other", "4,Sorghum,maize"))
    shutil.rmtree(project / "releases" / "1.0.1")
    major = cli(["curation.publish"], project)
    assert major.returncode == 1
    assert "the crosswalks changed: a major version" in major.stderr and "to 2.0.0" in major.stderr


def test_push_tags_the_release_and_dvc_import_brings_identical_files(project: Path, tmp_path: Path) -> None:
    dvc = [sys.executable, "-m", "dvc"]
    run([*dvc, "commit", "--force", "publish"], project)  # the copy has no cache: put the release in it
    run([*dvc, "remote", "add", "--default", "local", str(tmp_path / "remote")], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", "project with release 1.0.0"], project)
    pushed = cli(["curation.cli", "publish", "push"], project)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "data-v1.0.0" in run(["git", "tag", "--list"], project)
    assert (project / "releases" / "published" / f"{VERSION}.json").is_file()
    assert (
        verify_release(project / "releases" / VERSION).record == project / "releases" / "published" / f"{VERSION}.json"
    )

    consumer = tmp_path / "consumer"
    consumer.mkdir()
    run(["git", "init", "-q"], consumer)
    run([*dvc, "init", "-q"], consumer)
    run([*dvc, "import", str(project), f"releases/{VERSION}", "--rev", "data-v1.0.0", "-o", "imported"], consumer)
    imported, original = consumer / "imported", project / "releases" / VERSION
    names = sorted(p.relative_to(original).as_posix() for p in original.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(imported).as_posix() for p in imported.rglob("*") if p.is_file())
    _, mismatch, errors = filecmp.cmpfiles(original, imported, names, shallow=False)
    assert mismatch == [] and errors == []
    assert verify_release(imported).problems == []


@pytest.mark.parametrize(
    ("name", "released"),
    [
        ("sentinel2_usa_subsampled_test.csv", True),
        ("sentinel2_usa_subsampled_test_random.csv", False),
        ("sentinel2_usa_subsampled_10.csv", True),
        ("sentinel2_usa_subsampled_100_train.csv", True),  # the study's name for its 100-chip set
        ("sentinel2_usa_subsampled_900.csv", True),
        ("sentinel2_usa_subsampled_20.csv", False),  # not among publish.train_sizes
        ("sentinel2_south_africa_subsampled_100_train.csv", True),  # underscores in the source name
    ],
)
def test_the_release_lists_the_test_set_and_every_published_size(name: str, released: bool) -> None:
    """The study-size sets (10, 100, 900) are all released; the 100-chip list once fell out (its name ends `train`)."""
    assert released_list(name, (10, 100, 900)) is released
