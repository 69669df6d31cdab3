"""Imagery is stored once: the defaults link image chips (input, `data/chips`, the DVC cache, a release) instead of
copying them, a link that cannot be made falls back to a copy with a warning, and the defaults are the documented ones.
"""

from __future__ import annotations

import configparser
import errno
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

import curation.core.io as core_io
from curation.chips.config import ChipsParams
from curation.core.io import place_file
from curation.core.params import load_section
from curation.publish.config import PublishParams

ROOT = Path(__file__).resolve().parents[1]
PROFILES = [ROOT / "params.yaml", ROOT / "profiles" / "study.yaml"]
DEFAULT_MODE = "auto"
CACHE_TYPE = "hardlink"
DATA = os.urandom(1 << 16)  # one small "chip"


def _cache_type(config: Path) -> str:
    parser = configparser.ConfigParser()
    parser.read(config)
    return parser.get("cache", "type").strip('"')


def _chip(folder: Path, name: str = "2019_1_2.tif") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(DATA)
    return path


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_the_defaults_are_the_documented_ones(profile: Path) -> None:
    assert load_section(ChipsParams, profile).link == DEFAULT_MODE
    assert load_section(ChipsParams, profile).product_images == "vrt"  # products' band files linked, not stacked
    assert load_section(PublishParams, profile).files == DEFAULT_MODE
    assert _cache_type(ROOT / ".dvc" / "config") == CACHE_TYPE
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Disk\n", 1)[1].split("\n## ", 1)[0]
    assert f"`{CACHE_TYPE}`" in section and f"`chips.link: {DEFAULT_MODE}`" in section
    assert f"`publish.files: {DEFAULT_MODE}`" in section
    assert "`chips.product_images: vrt`" in section


def test_link_modes_on_one_filesystem(tmp_path: Path) -> None:
    source = _chip(tmp_path / "raw")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mode warns where links work
        copied = place_file(source, tmp_path / "copy" / source.name, "copy")
        linked = place_file(source, tmp_path / "hardlink" / source.name, "hardlink")
        auto = place_file(source, tmp_path / "auto" / source.name, "auto")
    assert (copied, linked) == ("copy", "hardlink")
    assert (tmp_path / "copy" / source.name).stat().st_ino != source.stat().st_ino
    assert (tmp_path / "hardlink" / source.name).stat().st_ino == source.stat().st_ino
    assert auto in ("reflink", "hardlink")  # ext4: hardlink; btrfs, XFS: a clone with its own inode
    same_inode = (tmp_path / "auto" / source.name).stat().st_ino == source.stat().st_ino
    assert same_inode == (auto == "hardlink")
    assert all((tmp_path / m / source.name).read_bytes() == DATA for m in ("copy", "hardlink", "auto"))


def test_a_placed_file_replaces_the_target_instead_of_writing_through_it(tmp_path: Path) -> None:
    """A target that is a hard link of another file (a DVC cache entry) is unlinked, never written into."""
    cached = _chip(tmp_path / "cache", "entry")
    target = tmp_path / "out" / "chip.tif"
    target.parent.mkdir()
    os.link(cached, target)
    source = tmp_path / "new.tif"
    source.write_bytes(b"other bytes")
    place_file(source, target, "copy")
    assert cached.read_bytes() == DATA and target.read_bytes() == b"other bytes"


def test_an_unknown_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="copy, hardlink, reflink or auto"):
        place_file(_chip(tmp_path), tmp_path / "x.tif", "symlink")


def _other_filesystem(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no writable second filesystem (/dev/shm) beside the test folder")
    return shm


@pytest.mark.parametrize("mode", ["hardlink", "reflink", "auto"])
def test_across_filesystems_a_link_mode_copies_and_warns(tmp_path: Path, mode: str) -> None:
    source = _chip(tmp_path / "raw")
    other = _other_filesystem(tmp_path)
    target = other / f"cropharmony-test-{os.getpid()}-{mode}" / source.name
    try:
        with pytest.warns(RuntimeWarning, match="stored twice"):
            assert place_file(source, target, mode) == "copy"
        assert target.read_bytes() == DATA and target.stat().st_ino != source.stat().st_ino
    finally:
        target.unlink(missing_ok=True)
        target.parent.rmdir()


def test_when_no_link_can_be_made_auto_copies_and_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same fallback without a second filesystem: links and clones refused as a foreign filesystem would."""
    import fcntl

    def refuse(*_: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(core_io.os, "link", refuse)
    monkeypatch.setattr(fcntl, "ioctl", refuse)
    source = _chip(tmp_path / "raw")
    with pytest.warns(RuntimeWarning, match="stored twice"):
        assert place_file(source, tmp_path / "out" / source.name, "auto") == "copy"
    assert (tmp_path / "out" / source.name).read_bytes() == DATA
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [source.name]  # no clone attempt left over


STAGE = """\
import os, shutil, sys
from pathlib import Path
from curation.core.io import place_file
tmp = Path("out.tmp")
shutil.rmtree(tmp, ignore_errors=True)
place_file(Path("raw/2019_1_2.tif"), tmp / "2019_1_2.tif", sys.argv[1])
(tmp / "label.tif").write_bytes(b"label")
tmp.rename("out")  # as every stage: a temporary folder renamed at the end, never a file edited in place
"""


def _dvc(project: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_with_the_defaults_dvc_stores_an_image_chip_once(tmp_path: Path) -> None:
    """Input, stage output and DVC cache entry: one file (or one set of extents on a reflink filesystem)."""
    project = tmp_path / "project"
    project.mkdir()
    _dvc(project, "init", "--no-scm", "-q")
    _dvc(project, "config", "cache.type", _cache_type(ROOT / ".dvc" / "config"))  # the project's link types
    mode = load_section(ChipsParams, ROOT / "params.yaml").link
    raw = _chip(project / "raw")
    (project / "stage.py").write_text(STAGE)
    stage = {"cmd": f"python stage.py {mode}", "deps": ["stage.py", "raw"], "outs": ["out"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"chips": stage}}))
    _dvc(project, "repro")
    lock = (project / "dvc.lock").read_text()
    for rerun in (False, True):
        if rerun:  # DVC removes the output, the stage links afresh: same hashes, cache intact
            _dvc(project, "repro", "--force")
            assert (project / "dvc.lock").read_text() == lock
        chip = project / "out" / raw.name
        cached = [p for p in (project / ".dvc" / "cache").rglob("*") if p.is_file() and p.read_bytes() == DATA]
        assert len(cached) == 1 and chip.read_bytes() == DATA and raw.read_bytes() == DATA
        assert cached[0].stat().st_ino == chip.stat().st_ino  # `cache.type = hardlink`: the output is its entry
        assert chip.stat().st_mode & 0o222 == 0  # which DVC protects, read-only
        if raw.stat().st_ino == chip.stat().st_ino:  # a hard link: input, output and cache entry are one inode
            assert chip.stat().st_nlink == 3 and raw.stat().st_mode & 0o222 == 0
        else:  # a reflink filesystem: the clone shares the input's extents (du cannot tell; the mode says so)
            assert place_file(raw, tmp_path / "probe", mode) == "reflink"
        assert "up to date" in _dvc(project, "status").lower()
