"""Stage outputs: only a folder the stage wrote is replaced, one writer at a time, and a killed run leaves nothing
behind for ever."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from curation.core.errors import SourceError
from curation.core.io import atomic_write_text, stage_output
from curation.core.outputs import OWNER_MARKER, foreign_files, output_lock, remove_stale, temp_prefix
from curation.core.params import reading_for


def test_the_marker_lists_every_file_and_the_stage(tmp_path: Path) -> None:
    out = tmp_path / "chips"
    with reading_for("chips"), stage_output(out) as tmp:
        (tmp / "cdl" / "images").mkdir(parents=True)
        (tmp / "cdl" / "images" / "a.tif").write_text("a")
        (tmp / "manifest.parquet").write_text("m")
    marker = json.loads((out / OWNER_MARKER).read_text())
    assert marker == {"stage": "chips", "files": ["cdl/images/a.tif", "manifest.parquet"]}
    assert foreign_files(out) == []


def test_a_folder_with_user_files_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(SourceError, match="replace only an output it wrote") as caught, stage_output(out):
        pytest.fail("the block must not run")
    assert "thesis.tex" in str(caught.value) and "Fix:" in str(caught.value)
    assert (out / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temp folder, no lock left


def test_a_file_added_to_an_output_stops_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "chips"
    with stage_output(out) as tmp:
        (tmp / "manifest.parquet").write_text("m")
    (out / "my_notes.txt").write_text("keep me")
    match = r"1 file\(s\) in it were not written by the stage: my_notes.txt"
    with pytest.raises(SourceError, match=match), stage_output(out):
        pass
    assert (out / "my_notes.txt").read_text() == "keep me"


def test_another_stages_output_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    with reading_for("validate"), stage_output(out) as tmp:
        (tmp / "summary.json").write_text("{}")
    match = "output of stage 'validate', not of 'chips'"
    with pytest.raises(SourceError, match=match), reading_for("chips"), stage_output(out):
        pass


def test_an_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "world"
    out.write_text("a file the user keeps")
    with pytest.raises(SourceError, match="output is a folder"), stage_output(out):
        pass
    assert out.read_text() == "a file the user keeps"


def test_an_empty_folder_may_be_used(tmp_path: Path) -> None:
    out = tmp_path / "fresh"
    out.mkdir()
    with stage_output(out) as tmp:
        (tmp / "x").write_text("x")
    assert (out / "x").read_text() == "x"


def test_a_second_writer_refuses_with_the_first_ones_pid(tmp_path: Path) -> None:
    out = tmp_path / "chips"
    match = rf"one writer at a time: another run \(pid {os.getpid()} on"
    with output_lock(out), pytest.raises(SourceError, match=match), stage_output(out):
        pass
    with stage_output(out) as tmp:  # released: the next run goes ahead
        (tmp / "x").write_text("x")
    assert not (tmp_path / ".chips.lock").exists()


HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from curation.core.io import stage_output
    with stage_output(Path(sys.argv[1])) as tmp:
        (tmp / "half.tif").write_text("half")
        print("inside", flush=True)
        time.sleep(60)
    """
)


def test_a_killed_run_releases_its_lock_and_the_next_run_cleans_its_temp_folder(tmp_path: Path) -> None:
    out = tmp_path / "chips"
    with stage_output(out) as tmp:
        (tmp / "previous.tif").write_text("previous")
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "inside"
    with pytest.raises(SourceError, match=f"pid {child.pid}"), stage_output(out):
        pass  # a live writer holds it
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    left = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and f"-{child.pid}." in left[0]  # what SIGKILL leaves
    assert (out / "previous.tif").read_text() == "previous"
    with stage_output(out) as tmp:
        (tmp / "next.tif").write_text("next")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chips"]
    assert sorted(p.name for p in out.iterdir()) == [OWNER_MARKER, "next.tif"]


def test_a_dead_writers_temp_file_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / (temp_prefix("report.json").replace(f"-{os.getpid()}.", f"-{dead.pid}.") + "x.tmp")
    stale.write_text("half")
    live = tmp_path / (temp_prefix("report.json") + "y.tmp")  # this process: alive
    live.write_text("mine")
    atomic_write_text(tmp_path / "report.json", "{}")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "report.json").read_text() == "{}"


def test_the_lock_file_is_not_left_beside_the_output(tmp_path: Path) -> None:
    started = time.monotonic()
    with stage_output(tmp_path / "a") as tmp:
        (tmp / "x").write_text("x")
    assert time.monotonic() - started < 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_killed_writer_not_yet_reaped_counts_as_dead(tmp_path: Path) -> None:
    """Under a container's PID 1 a SIGKILLed stage may stay a zombie: its temporaries must still be removed."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)  # exited, not reaped: a zombie
    stale = tmp_path / (temp_prefix("chips").replace(f"-{os.getpid()}.", f"-{child.pid}.") + "x.tmp")
    stale.mkdir()
    assert remove_stale(tmp_path, "chips") == [stale]
    child.wait()
