"""The whole train/evaluate matrix on a GPU server, one GPU per worker, with one command (docs/gpu-matrix.md).

`dvc repro` runs one stage after another, so the study's 72 `train` entries would share one GPU. DVC's own
experiment queue runs them in parallel: every queued experiment reproduces in a temporary clone of the repository
(under `.dvc/tmp/exps/`) that shares this workspace's DVC cache, and `dvc queue start -j N` runs N at once. What the
queue does not do is give each worker its own GPU, and bring the results back here; this module does both with
DVC's public commands only:

1. It checks what the queue needs: a git commit to build the experiments from, and no untracked file (an
   experiment holds only what git tracks, plus changes to tracked files: a stage reading an untracked file would
   fail there, or hash differently and never restore here), and a queue no one else is using.
2. `dvc repro subsets` here, once: the stages upstream of the matrix. Each experiment then only checks their
   outputs out of the shared cache (hard links) instead of running them again, once per entry.
3. `dvc exp run --queue --single-item train@E evaluate@E` for every entry that `dvc status` lists: an entry
   trains and is evaluated on one GPU. `--single-item` keeps the experiment from checking the stages upstream,
   whose inputs (the raw products under `shared.raw_root`) are not in git nor in the cache, so not in the clone.
4. One queue worker per GPU: `CUDA_VISIBLE_DEVICES=<gpu> dvc queue start -j <n>` for n = 1, 2, ...; `-j n` starts
   workers up to n, so each call starts one, which inherits that call's environment, and so do the stages it runs.
   Each call waits until the worker before it is up, else DVC would not see it and start a second worker `n - 1`.
5. It waits until every experiment has succeeded or failed, then stops the workers (`dvc queue stop`). A failure
   stops here with the entries and the end of their logs (`dvc queue logs <name>` has the rest).
6. `dvc repro` here: every experiment saved its stages' runs in the shared run cache, so each `train@E` and
   `evaluate@E` is restored from it (`Stage ... is cached - skipping run, checking out outputs`), not run again,
   and `dvc.lock` gets every entry; then `report` runs on all the evaluations. `dvc status` is clean afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from curation.core.errors import CropharmonyError, report_and_exit, shorten

FAN_OUT = ("train", "evaluate")  # the matrix stages one experiment reproduces, in this order, on one GPU
UPSTREAM = "subsets"  # `dvc repro subsets` brings every stage the matrix reads up to date (demo ... chips, subsets)
DONE = ("Success", "Failed")  # `dvc queue status` states of a finished task
WORKER_TIMEOUT_S = 180.0  # a worker that does not report within this is not coming up (DVC's log says why)
LOG_LINES = 25  # lines of a failed experiment's log shown in the error

Echo = Callable[[str], None]


class FanOutError(CropharmonyError):
    """The fan-out cannot start, or an entry failed: the message names the problem and the fix."""


@dataclass(frozen=True)
class FanOut:
    """What one fan-out did: the entries queued, as which experiment, on which GPUs, and how `dvc repro` ended."""

    entries: tuple[str, ...]  # matrix entries (the part after `train@`) queued
    experiments: dict[str, str]  # entry -> the experiment's name (`dvc exp show`, `dvc queue logs`)
    gpus: tuple[str, ...]  # CUDA_VISIBLE_DEVICES of worker 1, 2, ... (no more workers than entries)
    restored: tuple[str, ...]  # stages the final `dvc repro` restored from the run cache
    ran_here: tuple[str, ...]  # matrix stages the final `dvc repro` had to run itself (none when all went well)


def worker_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment DVC and its workers run with: this interpreter's `bin` first on PATH.

    `dvc queue start` spawns each worker as the `dvc` it finds on PATH, and the stages' `python -m ...` commands
    are found the same way: both must be this environment's, whatever started the fan-out.
    """
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")]))
    return env


def _run(
    root: Path, args: Sequence[str], env: dict[str, str] | None = None, *, check: bool = True, stderr: bool = True
) -> str:
    done = subprocess.run(
        list(args), cwd=root, env=env or worker_env(), capture_output=True, text=True, check=False
    )  # fmt: skip
    if check and done.returncode != 0:
        said = (done.stdout + done.stderr).strip()[-2000:]
        raise FanOutError(f"`{' '.join(args)}` failed (exit {done.returncode}) in {root}:\n{said}")
    return done.stdout + done.stderr if stderr else done.stdout


def dvc(root: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, stderr: bool = True) -> str:
    """Run one DVC command in `root` with this environment's DVC; its output (an error names it and its output).

    `stderr=False`: standard output alone, for output that is parsed (DVC warns on standard error).
    """
    return _run(root, [sys.executable, "-m", "dvc", *args], env, check=check, stderr=stderr)


def _stream(root: Path, args: Sequence[str], echo: Echo) -> str:
    """Run a long command (a `dvc repro`), echoing its lines as they come; all of them, or an error."""
    lines: list[str] = []
    with subprocess.Popen(
        list(args), cwd=root, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            echo(line.rstrip("\n"))
    if child.returncode != 0:
        raise FanOutError(f"`{' '.join(args)}` failed (exit {child.returncode}) in {root}: see its output above")
    return "".join(lines)


def matrix_entries(root: Path) -> list[str]:
    """The matrix entries of the `train` stage, as DVC expands `train.matrix` (`dvc stage list`)."""
    names = dvc(root, "stage", "list", "--name-only", stderr=False).split()
    return [name.split("@", 1)[1] for name in names if name.startswith(f"{FAN_OUT[0]}@")]


def pending_entries(root: Path, entries: Sequence[str]) -> list[str]:
    """The entries whose `train` or `evaluate` stage `dvc status` lists as changed (the others are up to date)."""
    changed = json.loads(dvc(root, "status", "--json", stderr=False).strip() or "{}")
    return [e for e in entries if any(f"{stage}@{e}" in changed for stage in FAN_OUT)]


def untracked_files(root: Path) -> list[str]:
    """Files git neither tracks nor ignores: a queued experiment is built from git and would not have them."""
    listed = _run(root, ["git", "status", "--porcelain", "--untracked-files=all"])
    return [line[3:] for line in listed.splitlines() if line.startswith("?? ")]


@dataclass(frozen=True)
class QueueState:
    """`dvc queue status`: every task's state by experiment name, and the workers up."""

    tasks: dict[str, str]
    workers: int


_WORKERS = re.compile(r"Worker status: (\d+) active, (\d+) idle")
_TASK_ID = re.compile(r"[0-9a-f]{7,40}")


def queue_state(root: Path) -> QueueState:
    """Parse `dvc queue status` (DVC has no JSON form of it): task rows are `<id> <name> <created...> <status>`."""
    said = dvc(root, "queue", "status", stderr=False)
    tasks: dict[str, str] = {}
    for line in said.splitlines():
        tokens = line.split()
        if len(tokens) >= 4 and _TASK_ID.fullmatch(tokens[0]):
            tasks[tokens[1]] = tokens[-1]
    found = _WORKERS.search(said)
    workers = int(found.group(1)) + int(found.group(2)) if found else 0
    return QueueState(tasks, workers)


def check_ready(root: Path, echo: Echo) -> None:
    """Refuse to start when the queue could not run the entries as this workspace would (see the module doc)."""
    if _run(root, ["git", "rev-parse", "--verify", "-q", "HEAD"], check=False).strip() == "":
        raise FanOutError(
            f"{root}: no git commit: DVC builds queued experiments from a commit. Fix: git add -A && git commit"
        )
    untracked = untracked_files(root)
    if untracked:
        raise FanOutError(
            f"{root}: {len(untracked)} untracked file(s) ({shorten(untracked)}): queued experiments hold only what "
            "git tracks, so a stage reading one would fail there or never restore here. Fix: `git add` them (no "
            "commit needed: changes to tracked files travel with the experiments) or list them in .gitignore"
        )
    deadline = time.monotonic() + 30.0  # workers of a finished queue linger up to 10 s before they exit
    while True:
        state = queue_state(root)
        busy = [name for name, status in state.tasks.items() if status not in DONE]
        if not busy and state.workers == 0:
            return
        if busy or time.monotonic() > deadline:
            what = f"tasks {shorten(busy)} queued or running" if busy else f"{state.workers} worker(s) up"
            raise FanOutError(
                f"{root}: the experiment queue is in use ({what}): the fan-out starts its own workers, one per GPU. "
                "Fix: wait for it (`dvc queue status`), or `dvc queue stop` (and `dvc queue remove --queued`)"
            )
        echo(f"waiting for {state.workers} idle queue worker(s) to exit")
        time.sleep(2.0)


def queue_entries(root: Path, entries: Sequence[str], stamp: str) -> dict[str, str]:
    """Queue one experiment per entry (its train and evaluate stages); entry -> experiment name.

    Names are `<entry>-<stamp>`: readable in `dvc queue status` and `dvc exp show`, and new on every fan-out (an
    experiment finishing under a name another already holds would fail after its training).
    """
    names: dict[str, str] = {}
    for entry in entries:
        name = f"{entry}-{stamp}"
        dvc(root, "exp", "run", "--queue", "--name", name, "--single-item", *(f"{s}@{entry}" for s in FAN_OUT))
        names[entry] = name
    return names


def start_workers(root: Path, gpus: Sequence[str], waiting: set[str], echo: Echo) -> None:
    """One queue worker per GPU, each started with its own CUDA_VISIBLE_DEVICES (see the module doc, step 4)."""
    for n, gpu in enumerate(gpus, start=1):
        if n > 1 and not _workers_up(root, n - 1, waiting):
            return  # every experiment has a worker already: one more would only idle
        said = _start(root, n, worker_env({**os.environ, "CUDA_VISIBLE_DEVICES": gpu}))
        started = re.search(r"Started '(\d+)'", said)
        if started is None or int(started.group(1)) != 1:
            dvc(root, "queue", "stop", "--kill", check=False)
            raise FanOutError(
                f"`dvc queue start -j {n}` started {started.group(1) if started else 'no'} worker(s), not one: a "
                f"worker was not seen, so GPUs would be shared ({said.strip()}). Fix: run the fan-out again"
            )
        echo(f"worker {n}: CUDA_VISIBLE_DEVICES={gpu}")


def _start(root: Path, jobs: int, env: dict[str, str]) -> str:
    """`dvc queue start -j <jobs>`, its output read from a file rather than a pipe.

    The worker it spawns inherits the command's output streams: through a pipe, the call would not return before
    the worker exits (when the queue is empty), and no second worker would start meanwhile.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        args = [sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)]
        code = subprocess.run(args, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
        out.seek(0)
        said = out.read()
    if code != 0:
        raise FanOutError(f"`dvc queue start -j {jobs}` failed (exit {code}) in {root}:\n{said.strip()[-2000:]}")
    return said


def _workers_up(root: Path, count: int, waiting: set[str]) -> bool:
    """Wait until `count` workers report (True), or none of `waiting` is still queued (False)."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while True:
        state = queue_state(root)
        if state.workers >= count:
            return True
        if not any(state.tasks.get(name) == "Queued" for name in waiting):
            return False
        if time.monotonic() > deadline:
            dvc(root, "queue", "stop", "--kill", check=False)
            raise FanOutError(
                f"queue worker {count} did not report in {WORKER_TIMEOUT_S:.0f} s. Fix: see its log in "
                f"{root / '.dvc' / 'tmp' / 'exps' / 'celery'} (dvc-exp-worker-{count}.out), then run the fan-out again"
            )
        time.sleep(0.5)


def wait_for(root: Path, names: dict[str, str], poll_s: float, echo: Echo) -> dict[str, str]:
    """Poll `dvc queue status` until every experiment has finished; entry -> its last state."""
    shown = ""
    while True:
        tasks = queue_state(root).tasks
        states = {entry: tasks.get(name, "missing") for entry, name in names.items()}
        counts = {s: sum(v == s for v in states.values()) for s in ("Success", "Failed", "Running", "Queued")}
        line = ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n)
        if line != shown:
            echo(f"{len(names)} entries: {line}")
            shown = line
        if all(state in DONE or state == "missing" for state in states.values()):
            return states
        time.sleep(poll_s)


def _failures(root: Path, names: dict[str, str], states: dict[str, str]) -> str:
    parts = []
    for entry, state in states.items():
        if state != "Success":
            log = dvc(root, "queue", "logs", names[entry], check=False).strip().splitlines()[-LOG_LINES:]
            parts.append(f"--- {entry} ({names[entry]}: {state}):\n" + "\n".join(log))
    return "\n".join(parts)


def run_matrix(root: Path, gpus: Sequence[str], *, poll_s: float = 5.0, echo: Echo = print) -> FanOut:
    """Train and evaluate every out-of-date matrix entry, one GPU per worker, then `dvc repro` the rest here."""
    if not gpus:
        raise FanOutError("no GPUs to fan out over. Fix: pass --gpus, e.g. --gpus 0,1,2,3")
    check_ready(root, echo)
    echo(f"$ dvc repro {UPSTREAM}")
    _stream(root, [sys.executable, "-m", "dvc", "repro", UPSTREAM], echo)
    entries = pending_entries(root, matrix_entries(root))
    names: dict[str, str] = {}
    if entries:
        names = queue_entries(root, entries, time.strftime("%Y%m%d-%H%M%S"))
        echo(f"queued {len(entries)} entries over {len(gpus)} worker(s): {shorten(entries)}")
        try:
            start_workers(root, gpus[: len(entries)], set(names.values()), echo)
            states = wait_for(root, names, poll_s, echo)
        except KeyboardInterrupt:
            dvc(root, "queue", "stop", "--kill", check=False)
            raise
        dvc(root, "queue", "stop", check=False)  # idle workers would linger 10 s; none has a task left
        if any(state != "Success" for state in states.values()):
            failed = [entry for entry, state in states.items() if state != "Success"]
            raise FanOutError(
                f"{len(failed)} of {len(entries)} entries failed ({shorten(failed)}); the others are in the run "
                f"cache and restore on the next run.\n{_failures(root, names, states)}\nFix: see `dvc queue logs "
                "<name>` for the whole log, fix the cause, run the fan-out again"
            )
    echo("$ dvc repro")
    said = _stream(root, [sys.executable, "-m", "dvc", "repro"], echo)
    restored = tuple(re.findall(r"Stage '([^']+)' is cached - skipping run", said))
    ran = tuple(s for s in re.findall(r"Running stage '([^']+)'", said) if s.split("@")[0] in FAN_OUT)
    return FanOut(tuple(entries), names, tuple(gpus[: len(entries)]), restored, ran)


def visible_gpus() -> list[str]:
    """This machine's GPUs: CUDA_VISIBLE_DEVICES if set (a subset to use), else what `nvidia-smi` lists."""
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return [g.strip() for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    listed = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True)
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()] if listed.returncode == 0 else []


def main(argv: list[str] | None = None) -> None:
    """`python -m training.fanout [--gpus 0,1,2,3]`: the whole matrix, one GPU per queue worker."""
    parser = argparse.ArgumentParser(prog="python -m training.fanout", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--gpus",
        default=None,
        help="CUDA_VISIBLE_DEVICES of each worker, comma-separated (a GPU listed twice gets two workers) "
        "[CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi lists]",
    )
    parser.add_argument("--poll", type=float, default=5.0, help="seconds between looks at the queue")
    args = parser.parse_args(argv)
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus is not None else visible_gpus()
    try:
        done = run_matrix(Path.cwd(), gpus, poll_s=args.poll)
    except CropharmonyError as error:
        report_and_exit(error)
    if not done.entries:
        print("fan-out: every matrix entry was up to date; nothing queued")
        return
    print(
        f"fan-out: {len(done.entries)} entries over GPUs {','.join(done.gpus)}; {len(done.restored)} stages restored "
        f"from the run cache" + (f"; ran here instead: {', '.join(done.ran_here)}" if done.ran_here else "")
    )


if __name__ == "__main__":
    main()
