"""Every stage SIGKILLed at a random point while it writes, then run again, ends byte-identical to the uninterrupted
run: `dvc repro -s <stage>` is killed with its whole process group (DVC and the stage), or, for a stage too quick for
a timed kill, the stage kills itself on a rename of a written temporary (`tests/kill_hook`); run again, the lock file
it writes equals the one of the uninterrupted run byte for byte (every output's hash), with nothing left over.
Every stage's kill must land while it writes: the test does not depend on the machine's speed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from curation.core.stages import STAGES
from tests.bad_inputs.harness import copy_project, dvc_status, leftovers
from tests.tiny_project import TinyProject

ENTRY = "all-all-cdl-all"  # the tiny profile's one matrix entry


OUTPUT_PARENTS = ("data", "reports", "runs", "evals", "metrics", "releases")  # where the tiny profile's outputs lie


def _temporaries(root: Path) -> set[str]:
    """Hidden temporary outputs (`.*.tmp` files and folders) in the folders outputs are written to."""
    found = set()
    for parent in OUTPUT_PARENTS:
        try:
            found |= {f"{parent}/{e.name}" for e in os.scandir(root / parent) if e.name.endswith(".tmp")}
        except FileNotFoundError:
            continue  # removed by `dvc repro` before the stage writes it again
    return found


def _writing(root: Path, since: set[str]) -> bool:
    """Whether a temporary output appeared that was not there before."""
    return bool(_temporaries(root) - since)


def repro(stage: str) -> list[str]:
    return [sys.executable, "-m", "dvc", "repro", "--force", "--single-item", stage]


HOOK = Path(__file__).parent / "kill_hook"  # sitecustomize.py: the stage SIGKILLs itself on its N-th rename


def kill_while_writing(root: Path, stage: str, rng: random.Random) -> str:
    """SIGKILL the stage while it writes; how the kill landed.

    First as an OOM kill or a lost node would: the whole process group, a random moment after the stage's first
    temporary output appears. A small stage can finish inside that moment (or write its one file faster than a
    poll sees it), so a stage that did is killed by the hook instead: it dies on its N-th rename of a written
    temporary into place (N random in 1..3, then 1 if it renames fewer times)."""
    for longest in (0.5, 0.05):
        if _kill_once(root, stage, rng.uniform(0.0, longest)):
            return "killed"
    said = ""
    for at in (rng.randint(1, 3), 1):
        killed, said = _killed_by_hook(root, stage, at)
        if killed:
            return f"killed on rename {at}"
    return f"finished before the kill (the hook's last run, {said})"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONHASHSEED": "0", **extra}


def _kill_once(root: Path, stage: str, delay: float) -> bool:
    before = _temporaries(root)
    child = subprocess.Popen(
        repro(stage), cwd=root, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while child.poll() is None and not _writing(root, before) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    if child.poll() is not None:
        return False
    os.killpg(child.pid, signal.SIGKILL)  # DVC and the stage it runs
    child.wait()
    return True


def _killed_by_hook(root: Path, stage: str, at: int) -> tuple[bool, str]:
    """Whether the hook killed the stage (it leaves a mark before it fires), and DVC's last words otherwise."""
    mark = root.parent / f"kill-mark-{stage.replace('@', '-')}-{at}"
    mark.unlink(missing_ok=True)
    path = os.pathsep.join(filter(None, [str(HOOK), os.environ.get("PYTHONPATH")]))
    env = _env(PYTHONPATH=path, CROPHARMONY_KILL_AT_RENAME=str(at), CROPHARMONY_KILL_MARK=str(mark))
    done = subprocess.run(repro(stage), cwd=root, env=env, capture_output=True, text=True, check=False)
    fired = mark.is_file()
    mark.unlink(missing_ok=True)
    return fired and done.returncode != 0, f"rc {done.returncode}: {(done.stdout + done.stderr)[-400:]}"


def test_each_stage_killed_and_rerun_ends_as_the_uninterrupted_run(tiny_project: TinyProject, tmp_path: Path) -> None:
    root = copy_project(tiny_project, tmp_path / "project")
    locked = (root / "dvc.lock").read_text(encoding="utf-8")
    rng = random.Random(14)
    outcome = {}
    for stage in STAGES:
        name = f"{stage.name}@{ENTRY}" if stage.matrix else stage.name
        outcome[stage.name] = kill_while_writing(root, name, rng)
        done = subprocess.run(repro(name), cwd=root, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{stage.name} after a kill:\n{done.stdout}{done.stderr}"
        assert leftovers(root) == [], f"{stage.name} left {leftovers(root)}"
    assert (root / "dvc.lock").read_text(encoding="utf-8") == locked, outcome
    assert "Data and pipelines are up to date" in dvc_status(root)
    missed = {stage: what for stage, what in outcome.items() if not what.startswith("killed")}
    assert not missed, f"not killed while writing: {missed}; all outcomes: {outcome}"  # every kill lands while writing
