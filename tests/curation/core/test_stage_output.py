"""The one stage-output helper: a failed block leaves the old output, a failed swap puts it back, no temp is left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curation.core.io import stage_output
from curation.core.outputs import OWNER_MARKER


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_a_successful_block_replaces_the_output_whole(tmp_path: Path) -> None:
    out = tmp_path / "chips"
    with stage_output(out) as tmp:
        (tmp / "stale.tif").write_text("old run")
    with stage_output(out) as tmp:
        assert tmp.parent == tmp_path and tmp != out and not any(tmp.iterdir())
        (tmp / "manifest.parquet").write_text("new run")
    assert sorted(p.name for p in out.iterdir()) == [OWNER_MARKER, "manifest.parquet"]  # nothing old survives
    assert leftovers(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # a plain mkdir's mode, not mkdtemp's private 0700


def test_a_failing_block_leaves_the_previous_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "subsets"
    with stage_output(out) as tmp:
        (tmp / "subsets.parquet").write_text("previous")
    with pytest.raises(RuntimeError, match="half way"), stage_output(out) as tmp:
        (tmp / "subsets.parquet").write_text("partial")
        raise RuntimeError("half way")
    assert (out / "subsets.parquet").read_text() == "previous"
    assert leftovers(tmp_path) == []


def test_a_failing_swap_restores_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "validation"
    with stage_output(out) as tmp:
        (tmp / "summary.json").write_text("previous")
    real_rename = Path.rename

    def rename(self: Path, target: Path) -> Path:
        if Path(target) == out and self.suffix == ".tmp":
            raise OSError("disk full")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="disk full"), stage_output(out) as tmp:
        (tmp / "summary.json").write_text("new")
    assert (out / "summary.json").read_text() == "previous"
    assert leftovers(tmp_path) == []


def test_two_outputs_in_one_folder_get_their_own_temporary_folders(tmp_path: Path) -> None:
    with stage_output(tmp_path / "a") as first, stage_output(tmp_path / "b") as second:
        assert first != second
        (first / "x").write_text("a")
        (second / "x").write_text("b")
    assert (tmp_path / "a" / "x").read_text() == "a" and (tmp_path / "b" / "x").read_text() == "b"
