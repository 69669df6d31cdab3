"""The matrix fanned out through DVC's experiment queue (`training.fanout`, docs/gpu-matrix.md) ends as `dvc repro`.

A copy of the tiny project gets a two-entry matrix (`id` and `ood`, the spectral baseline: the cheapest stages) and
a git commit; the fan-out runs it with two queue workers, `CUDA_VISIBLE_DEVICES` 0 and 1. A `sitecustomize` hook on
PYTHONPATH records every stage process (script, arguments, CUDA_VISIBLE_DEVICES, start and end) outside the
project, so the outputs stay those of a plain run. The test holds that each entry trained and was evaluated in a
queued experiment (a temporary clone) on one worker's GPU, the two entries on different GPUs at the same time,
that every train and evaluate stage was then restored from the run cache here (none ran again), that `dvc status`
is clean, and that forcing the same stages one after another (`dvc repro --force`, no run cache) locks the same
hashes: the fan-out's outputs are byte-identical to a sequential run's. No GPU is needed: the values are only
passed on (on the CPU, torch ignores them).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bad_inputs.harness import copy_project, dvc_status
from tests.tiny_project import TinyProject, run
from training.fanout import FAN_OUT, FanOutError, check_ready, run_matrix

ENTRIES = ("id-spectral-cdl-all", "ood-spectral-cdl-all")
OLD_ENTRY = "all-all-cdl-all"  # the tiny profile's one entry, replaced by ENTRIES
GPUS = ("0", "1")
QUEUED = "/.dvc/tmp/exps/"  # where DVC's queue clones the repository for each experiment

HOOK = '''"""Record every stage process of the project (script, arguments, CUDA_VISIBLE_DEVICES, start, end)."""
import atexit, json, os, sys, time

_LOG = os.environ.get("FANOUT_STAGE_LOG")
_START = time.time()


def _record():
    script = sys.argv[0] if sys.argv else ""
    if f"{os.sep}training{os.sep}" in script:  # a stage (python -m training.<stage>), not DVC itself
        line = {"script": script, "args": sys.argv[1:], "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "start": _START, "end": time.time()}
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(json.dumps(line) + "\\n")


if _LOG:
    atexit.register(_record)
'''


def _git(root: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=fanout", "-c", "user.email=fanout@example.org", *args], root)


def two_entry_project(tiny: TinyProject, target: Path) -> Path:
    """A committed copy of the tiny project whose matrix is ENTRIES, the old entry's outputs and lock entries gone."""
    root = copy_project(tiny, target)
    params = root / "params.yaml"
    values = yaml.safe_load(params.read_text(encoding="utf-8"))
    values["train"]["matrix"].update(protocol=["id", "ood"], backbone=["spectral"], source=["cdl"], size=["all"])
    params.unlink()  # a new inode: the shared project keeps its own
    params.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
    for folder in ("runs", "evals"):  # `report` reads every folder under evals/: the old entry's would stay in it
        shutil.rmtree(root / folder / OLD_ENTRY.replace("-", "_"))
    lock = root / "dvc.lock"
    locked = yaml.safe_load(lock.read_text(encoding="utf-8"))
    locked["stages"] = {name: v for name, v in locked["stages"].items() if not name.endswith(f"@{OLD_ENTRY}")}
    lock.unlink()
    lock.write_text(yaml.safe_dump(locked, sort_keys=False), encoding="utf-8")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "two-entry matrix")
    return root


def _records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def _span(records: list[dict[str, Any]]) -> tuple[float, float]:
    return min(r["start"] for r in records), max(r["end"] for r in records)


def _entry(record: dict[str, Any]) -> str:
    args = record["args"]
    return "-".join(args[args.index(flag) + 1] for flag in ("--protocol", "--backbone", "--source", "--size"))


@pytest.fixture
def project(tiny_project: TinyProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The two-entry project, with the recording hook in every process's environment (DVC's workers inherit it)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", str(hook))
    monkeypatch.setenv("FANOUT_STAGE_LOG", str(tmp_path / "stages.jsonl"))
    for kind in ("AUTHOR", "COMMITTER"):  # experiments are git commits: an identity even where git has none
        monkeypatch.setenv(f"GIT_{kind}_NAME", "fanout")
        monkeypatch.setenv(f"GIT_{kind}_EMAIL", "fanout@example.org")
    return two_entry_project(tiny_project, tmp_path / "project")


@pytest.mark.slow  # ~100 s on two shared cores, besides the tiny project (built once per session)
def test_the_matrix_fans_out_one_gpu_per_worker_and_lands_as_a_sequential_repro(project: Path, tmp_path: Path) -> None:
    root, log = project, tmp_path / "stages.jsonl"
    said: list[str] = []
    done = run_matrix(root, GPUS, poll_s=1.0, echo=said.append)
    output = "\n".join(said)
    stages = {f"{stage}@{entry}" for stage in FAN_OUT for entry in ENTRIES}

    assert done.entries == ENTRIES and done.gpus == GPUS, output
    assert set(done.restored) == stages and done.ran_here == (), output  # each came back from the run cache
    records = _records(log)
    queued = [r for r in records if QUEUED in r["script"] and Path(r["script"]).stem in FAN_OUT]
    assert sorted(Path(r["script"]).stem for r in queued) == sorted(FAN_OUT * len(ENTRIES)), records
    assert not [r for r in records if QUEUED not in r["script"] and Path(r["script"]).stem in FAN_OUT], records
    gpus = {entry: {r["gpu"] for r in queued if _entry(r) == entry} for entry in ENTRIES}
    assert all(len(used) == 1 for used in gpus.values()), gpus  # an entry's train and evaluate on one GPU
    assert {used.pop() for used in gpus.values()} == set(GPUS), gpus  # one worker, one GPU, each
    spans = [_span([r for r in queued if _entry(r) == entry]) for entry in ENTRIES]
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans  # both entries ran at once

    for entry in ENTRIES:
        folder = entry.replace("-", "_")
        assert (root / "runs" / folder / "runs.json").is_file() and (root / "evals" / folder).is_dir()
    assert "Data and pipelines are up to date" in dvc_status(root)
    locked = yaml.safe_load((root / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    assert stages | {"report"} <= set(locked)

    lock = (root / "dvc.lock").read_text(encoding="utf-8")
    sequential = [f"{stage}@{entry}" for entry in ENTRIES for stage in FAN_OUT] + ["report"]
    forced = run([sys.executable, "-m", "dvc", "repro", "--force", "--single-item", *sequential], root)
    assert all(f"Running stage '{stage}'" in forced for stage in sequential), forced
    assert (root / "dvc.lock").read_text(encoding="utf-8") == lock  # every output hash unchanged: byte-identical
    assert "Data and pipelines are up to date" in dvc_status(root)


def _bare_repo(root: Path) -> Path:
    """A git and DVC repository with nothing in it: enough for the checks made before anything is queued."""
    root.mkdir()
    run(["git", "init", "-q"], root)
    run([sys.executable, "-m", "dvc", "init", "-q"], root)
    return root


def test_a_workspace_without_a_commit_stops_the_fan_out(tmp_path: Path) -> None:
    root = _bare_repo(tmp_path / "repo")
    with pytest.raises(FanOutError, match=r"no git commit: DVC builds queued experiments from a commit. Fix: git"):
        check_ready(root, print)


def test_an_untracked_file_stops_the_fan_out_before_anything_is_queued(tmp_path: Path) -> None:
    root = _bare_repo(tmp_path / "repo")
    _git(root, "commit", "-q", "-m", "empty")
    (root / "training").mkdir()
    (root / "training" / "helper.py").write_text("", encoding="utf-8")
    with pytest.raises(FanOutError, match=r"1 untracked file\(s\) \(training/helper.py\).*Fix: `git add` them"):
        check_ready(root, print)
    _git(root, "add", "-A")
    check_ready(root, print)  # tracked, uncommitted: travels with the experiments
    assert "No experiment tasks in the queue" in run([sys.executable, "-m", "dvc", "queue", "status"], root)
