"""`cropharmony publish verify`: confined to the release folder, and a file rewritten with its sum line still fails.

Each tampering works on its own copy of one small release (two sources x three chips, the metadata tests' builder),
sealed by the stage's own `seal` (release.json, then SHA256SUMS), with the stage marker a stage output carries.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from curation.cli.commands import app
from curation.core.outputs import OWNER_MARKER
from curation.publish.metadata import write_croissant, write_stac
from curation.publish.stage import seal
from curation.publish.verify import Verification, unsafe, verify_release
from tests.curation.test_release_metadata import INFO, build_release

LEGENDS = Path(__file__).resolve().parents[2] / "curation" / "legends"
LABEL = "chips/cdl/labels/cdl_0001.tif"


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """releases/1.2.0 as `publish` lays it out, sealed, with the stage marker written after SHA256SUMS."""
    release = tmp_path_factory.mktemp("sealed") / "releases" / INFO.version
    release.mkdir(parents=True)
    build_release(release)
    for name in ("target.csv", "sources.csv", "cdl.csv"):
        (release / "crosswalks").mkdir(exist_ok=True)
        shutil.copyfile(LEGENDS / name, release / "crosswalks" / name)
    (release / "subsets" / "lists").mkdir()
    (release / "subsets" / "lists" / "sentinel2_cdl_2019_subsampled_2.csv").write_text("chip_id\ncdl_0000\n")
    (release / "validation").mkdir()
    (release / "validation" / "summary.json").write_text('{"ok": true}\n')
    (release / "README.md").write_text("# cropharmony test release\n")
    write_croissant(release, INFO)
    write_stac(release, INFO)
    manifest = pl.read_parquet(release / "manifest.parquet")
    subsets = pl.read_parquet(release / "subsets" / "subsets.parquet")
    seal(release, manifest, subsets, {"version": INFO.version, "date": INFO.date, "crosswalk_set": "toolkit"})
    (release / OWNER_MARKER).write_text('{"files": [], "stage": "publish"}\n')
    return release


@pytest.fixture
def release(sealed: Path, tmp_path: Path) -> Path:
    """A fresh copy to tamper with, still under releases/<version> (the published record lives beside it)."""
    copy = tmp_path / "releases" / INFO.version
    shutil.copytree(sealed, copy, symlinks=True)
    return copy


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resum(release: Path, name: str) -> None:
    """Rewrite the sum line of `name` to its new content: what someone covering up an edit would do."""
    sums = release / "SHA256SUMS"
    lines = [
        f"{sha(release / name)}  {name}" if line.endswith(f"  {name}") else line
        for line in sums.read_text().splitlines()
    ]
    sums.write_text("\n".join(lines) + "\n")


def append_sum(release: Path, digest: str, name: str) -> None:
    with (release / "SHA256SUMS").open("a") as handle:
        handle.write(f"{digest}  {name}\n")


def rules(check: Verification, release: Path) -> set[tuple[str, str]]:
    """(file relative to the release, rule) of each problem."""
    return {
        (Path(p.file).relative_to(release).as_posix() if p.file != str(release) else ".", p.rule)
        for p in check.problems
    }


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["publish", "verify", *args])
    return result.exit_code, result.output  # stdout and stderr, interleaved


def test_an_untouched_release_verifies_and_the_marker_is_in_no_record(sealed: Path) -> None:
    check = verify_release(sealed)
    assert check.problems == [] and check.record is None
    listed = (sealed / "SHA256SUMS").read_text()
    assert OWNER_MARKER not in listed and "SHA256SUMS" not in listed
    files = json.loads((sealed / "release.json").read_text())["files"]
    assert "README.md" in files and "stac/collection.json" in files and not any(n.startswith("chips/") for n in files)
    done = subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=sealed, capture_output=True)
    assert done.returncode == 0, done.stdout + done.stderr  # the coreutils tool agrees
    code, output = cli(str(sealed))
    assert code == 0 and "ok" in output and "no published record" in output


def _outside(release: Path) -> Path:
    target = release.parents[1] / "outside.txt"
    target.write_text("not part of the release\n")
    return target


def _dotdot(release: Path) -> str:
    append_sum(release, sha(_outside(release)), "../../outside.txt")
    return "SHA256SUMS"


def _absolute(release: Path) -> str:
    target = _outside(release)
    append_sum(release, sha(target), str(target))
    return "SHA256SUMS"


def _link_out(release: Path) -> str:
    target = _outside(release)
    target.write_bytes((release / "README.md").read_bytes())  # same bytes: only the link gives it away
    (release / "README.md").unlink()
    (release / "README.md").symlink_to(target)
    return "README.md"


def _unlisted_link(release: Path) -> str:
    (release / "validation" / "etc").symlink_to("/etc")
    return "validation/etc"


def _deleted(release: Path) -> str:
    (release / "validation" / "summary.json").unlink()
    return "validation/summary.json"


def _extra(release: Path) -> str:
    (release / "chips" / "cdl" / "images" / "extra.tif").write_bytes(b"x")
    return "chips/cdl/images/extra.tif"


def _changed(release: Path) -> str:
    (release / "class_counts.csv").write_text((release / "class_counts.csv").read_text() + "\n")
    return "class_counts.csv"


def _malformed(release: Path) -> str:
    append_sum(release, "not-a-digest", "README.md")
    return "SHA256SUMS"


def _chip_and_sum(release: Path) -> str:
    label = release / LABEL
    label.write_bytes(label.read_bytes()[:-1] + b"\x01")
    resum(release, LABEL)
    return LABEL


def _card_and_sum(release: Path) -> str:
    (release / "README.md").write_text("# a different card\n")
    resum(release, "README.md")
    return "README.md"


def _crosswalk_and_sum(release: Path) -> str:
    path = release / "crosswalks" / "cdl.csv"
    path.write_text(path.read_text().replace("4,Sorghum,other", "4,Sorghum,maize"))
    resum(release, "crosswalks/cdl.csv")
    return "crosswalks/cdl.csv"


def _counts_and_sum(release: Path) -> str:
    _changed(release)
    resum(release, "class_counts.csv")
    return "class_counts.csv"


def _truncated_manifest_and_sum(release: Path) -> str:
    path = release / "manifest.parquet"
    path.write_bytes(path.read_bytes()[:100])
    resum(release, "manifest.parquet")
    return "manifest.parquet"


def _stac_asset_and_both_records(release: Path) -> str:
    name = "stac/cdl/cdl_0001.json"
    item = json.loads((release / name).read_text())
    item["assets"]["image"]["href"] = "../../../../outside.tif"
    (release / name).write_text(json.dumps(item))
    record = json.loads((release / "release.json").read_text())
    record["files"][name] = sha(release / name)  # release.json rewritten too: the item itself gives it away
    (release / "release.json").write_text(json.dumps(record))
    resum(release, name)
    resum(release, "release.json")
    return name


CASES: list[tuple[Callable[[Path], str], str]] = [
    (_dotdot, "paths stay inside the release"),
    (_absolute, "paths stay inside the release"),
    (_link_out, "no link leaves the release"),
    (_unlisted_link, "no link leaves the release"),
    (_deleted, "every listed file is present"),
    (_extra, "every file is listed"),
    (_changed, "sha256 matches SHA256SUMS"),
    (_malformed, "lines are `<sha256>  <path>`"),
    (_chip_and_sum, "release.json agrees with the files"),
    (_card_and_sum, "release.json agrees with the files"),
    (_crosswalk_and_sum, "release.json agrees with the files"),
    (_counts_and_sum, "croissant.json agrees with the files"),
    (_truncated_manifest_and_sum, "readable Parquet"),
    (_stac_asset_and_both_records, "STAC assets point at the chip's files"),
]


@pytest.mark.parametrize(("tamper", "rule"), CASES, ids=[c[0].__name__.strip("_") for c in CASES])
def test_each_tampering_fails_naming_the_file_the_rule_and_the_fix(
    release: Path, tamper: Callable[[Path], str], rule: str
) -> None:
    name = tamper(release)
    assert (name, rule) in rules(verify_release(release), release)
    code, output = cli(str(release))
    assert code == 1
    line = next(line for line in output.splitlines() if f"{release / name}: {rule}" in line)
    assert "Fix: " in line
    assert "Traceback" not in output


def test_a_rewritten_file_is_named_by_every_record_that_holds_it(release: Path) -> None:
    _counts_and_sum(release)  # class_counts.csv: in croissant.json and in release.json's files
    assert {("class_counts.csv", "croissant.json agrees with the files")} | {
        ("class_counts.csv", "release.json agrees with the files")
    } <= rules(verify_release(release), release)
    _chip_and_sum(release)  # a chip: its fingerprint in release.json names the image or label that changed
    found = rules(verify_release(release), release)
    assert (LABEL, "release.json agrees with the files") in found
    assert ("chips/cdl/images/cdl_0001.tif", "release.json agrees with the files") not in found


def _publish(release: Path) -> Path:
    """The record `cropharmony publish push` keeps beside the releases."""
    record = release.parent / "published" / f"{INFO.version}.json"
    record.parent.mkdir()
    fingerprints = json.loads((release / "release.json").read_text())["fingerprints"]
    body = {"version": INFO.version, "tag": "data-v1.2.0", "sums_sha256": sha(release / "SHA256SUMS")}
    record.write_text(json.dumps(body | {"fingerprints": fingerprints}))
    return record


def test_the_published_record_catches_a_consistent_rewrite(release: Path) -> None:
    record = _publish(release)
    assert verify_release(release).record == record
    code, output = cli(str(release))
    assert code == 0 and f"published in {record}" in output
    # every record rewritten consistently: only the published record, outside the folder, still disagrees
    _chip_and_sum(release)
    data = json.loads((release / "release.json").read_text())
    key = "cdl/cdl_0001"
    data["fingerprints"]["chips"][key] = data["fingerprints"]["chips"][key][:64] + sha(release / LABEL)
    (release / "release.json").write_text(json.dumps(data))
    resum(release, "release.json")
    found = rules(verify_release(release), release)
    assert found == {
        ("SHA256SUMS", "the release is the one published"),
        ("release.json", "the release is the one published"),
    }
    code, output = cli(str(release))
    assert code == 1 and "tag data-v1.2.0" in output and "dvc pull" in output


def test_a_record_passed_explicitly_must_exist(release: Path, tmp_path: Path) -> None:
    code, output = cli(str(release), "--record", str(tmp_path / "nowhere.json"))
    assert code == 1 and f"{tmp_path / 'nowhere.json'}: published record readable: not found" in output


def test_not_a_release_folder(tmp_path: Path) -> None:
    code, output = cli(str(tmp_path / "missing"))
    assert code == 1 and "a release folder" in output
    (tmp_path / "empty").mkdir()
    code, output = cli(str(tmp_path / "empty"))
    assert code == 1 and f"{tmp_path / 'empty' / 'SHA256SUMS'}: SHA256SUMS present" in output


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/passwd", "an absolute path"),
        ("C:/x", "an absolute path"),
        ("a/../../x", "a path through `..`"),
        ("..", "a path through `..`"),
        ("a//b", "not a normalized relative path"),
        ("./a", "not a normalized relative path"),
        ("a\\..\\b", "a path with a backslash"),
        ("chips/cdl/images/cdl_0000.tif", None),
    ],
)
def test_unsafe_paths(name: str, reason: str | None) -> None:
    assert unsafe(name) == reason
