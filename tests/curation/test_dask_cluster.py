"""validate and chips on a Dask cluster of separate processes: a `dask scheduler` and `dask worker`s on 127.0.0.1.

The processes are started as on a cluster (own OS processes, found by address), so tasks, their functions and
their results cross process boundaries and the workers read and write the files themselves. Outputs must be
byte-identical to the in-process run; a worker killed mid-stage (`tests/dask_hook/die_after_tasks.py`) costs only a
retry, and workers that die on every try stop the stage with a message and no output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from distributed import Client

from curation.chips import stage as chips
from curation.chips.config import ChipsParams
from curation.core import parallel
from curation.core.errors import CropharmonyError
from curation.core.shared import SharedParams
from curation.validate import stage as validate
from curation.validate.config import ValidateParams
from tests.curation.stage_world import copy_world, demo_world, shared_params

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "tests" / "dask_hook" / "die_after_tasks.py"
DASK = [sys.executable, "-m", "dask"]
START_S = 120  # a cold worker imports distributed, numpy, rasterio...: seconds on a shared 2-core machine
STOP_S = 5  # then SIGKILL: the processes and their outputs are the test's own


@dataclass
class Cluster:
    address: str
    workers: list[subprocess.Popen[bytes]]


def _env(cache: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment with the cluster's label cache, one thread per library and the project importable."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    threads = {"OMP_NUM_THREADS": "1", "GDAL_NUM_THREADS": "1"}
    return dict(os.environ) | threads | {"CROPHARMONY_CACHE": str(cache), "PYTHONPATH": path} | (extra or {})


@contextmanager
def cluster(
    folder: Path,
    cache: Path,
    workers: list[dict[str, str]],
    nanny: bool = True,
    scheduler_env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    """A scheduler and one single-threaded worker process per entry of `workers` (its extra environment)."""
    folder.mkdir(parents=True, exist_ok=True)
    address_file = folder / "scheduler.json"
    logs: list[subprocess.Popen[bytes]] = []
    scheduler = subprocess.Popen(
        [*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(address_file)],
        cwd=folder, env=_env(cache, scheduler_env), stdout=(folder / "scheduler.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    logs.append(scheduler)
    try:
        deadline = time.monotonic() + START_S
        while not address_file.is_file() or not address_file.read_text().strip():
            assert scheduler.poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        started = []
        for i, extra in enumerate(workers):
            command = [*DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard"]
            command += ["--name", f"w{i}", "--preload", str(HOOK), "--local-directory", str(folder / f"w{i}")]
            command += ["--nanny" if nanny else "--no-nanny"]
            log = (folder / f"w{i}.log").open("wb")
            started.append(
                subprocess.Popen(command, cwd=ROOT, env=_env(cache, extra), stdout=log, stderr=subprocess.STDOUT)
            )
        logs += started
        with Client(address, timeout=START_S) as client:  # type: ignore[no-untyped-call]
            client.wait_for_workers(len(workers), timeout=START_S)  # type: ignore[no-untyped-call]
        yield Cluster(address, started)
    finally:
        for process in reversed(logs):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in reversed(logs):
            try:
                process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:  # a nanny busy restarting its worker can ignore SIGINT for long
                process.kill()
                process.wait()


def on(shared: SharedParams, address: str) -> SharedParams:
    return shared.model_copy(update={"dask": shared.dask.model_copy(update={"scheduler": address, "workers": 2})})


def run_both(shared: SharedParams, folder: Path) -> tuple[Path, Path]:
    """validate then chips into `folder`; returns the validation reports' folder and the chips output."""
    reports = folder / "validation"
    validate.check(shared, ValidateParams(out=reports, max_ignore_share=0.6, max_nodata_share=0.5))
    params = ChipsParams(
        out=folder / "chips", report=folder / "chips.json", link="copy", product_images="vrt", skip_failed=False
    )
    chips.build(shared, params, params.report)
    return reports, params.out


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """The tiny world and its synchronous run: the validation reports' and the chips output's bytes."""
    raw = copy_world(demo_world(tmp_path_factory), tmp_path_factory.mktemp("cluster-world"))
    reports, out = run_both(shared_params(raw), tmp_path_factory.mktemp("synchronous"))
    return raw, files_of(reports), files_of(out)


def test_validate_and_chips_on_separate_processes_equal_the_synchronous_run(
    reference: tuple[Path, dict[str, bytes], dict[str, bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, reports, out = reference
    cache = tmp_path / "cache"  # cold: the workers read every chip themselves
    monkeypatch.setenv("CROPHARMONY_CACHE", str(cache))
    with cluster(tmp_path / "cluster", cache, [{}, {}]) as running:
        got_reports, got_out = run_both(on(shared_params(raw), running.address), tmp_path / "run")
    assert files_of(got_reports) == reports
    assert files_of(got_out) == out
    assert any((cache / "pixels").rglob("*.npz"))  # the workers' reads, left for chips in the shared cache


def dying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, dict[str, str]]:
    """A cold cache for the run, the file the kills are written to, and the environment of a worker that dies."""
    cache, mark = tmp_path / "cache", tmp_path / "killed.txt"
    monkeypatch.setenv("CROPHARMONY_CACHE", str(cache))
    return cache, mark, {"CROPHARMONY_DIE_AFTER": "1", "CROPHARMONY_DIE_MARK": str(mark)}


def test_a_worker_killed_mid_stage_costs_a_retry_not_the_run(
    reference: tuple[Path, dict[str, bytes], dict[str, bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, reports, out = reference
    cache, mark, dies = dying(tmp_path, monkeypatch)
    with cluster(tmp_path / "cluster", cache, [dies, {}], nanny=False) as running:  # w0 dies, stays dead
        got_reports, got_out = run_both(on(shared_params(raw), running.address), tmp_path / "run")
        assert running.workers[0].wait(timeout=30) == -signal.SIGKILL
    assert mark.is_file() and len(mark.read_text().splitlines()) == 1  # the kill fired, after one task
    assert files_of(got_reports) == reports and files_of(got_out) == out


def test_workers_dying_on_every_try_stop_the_stage_with_a_message_and_no_output(
    reference: tuple[Path, dict[str, bytes], dict[str, bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, _, _ = reference
    cache, mark, dies = dying(tmp_path, monkeypatch)
    retries = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}  # no retry: the first death is final
    params = ChipsParams(
        out=tmp_path / "chips", report=tmp_path / "chips.json", link="copy", product_images="vrt", skip_failed=False
    )
    with (
        cluster(tmp_path / "cluster", cache, [dies, dies], scheduler_env=retries) as running,  # nannies restart
        pytest.raises(CropharmonyError, match="chips: Dask workers died each time they ran one batch"),
    ):
        chips.build(on(shared_params(raw), running.address), params, params.report)
    assert len(mark.read_text().splitlines()) >= 1  # the kill fired
    assert not params.out.exists() and not params.report.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".chips")]  # no temporary output left


def test_a_scheduler_that_does_not_answer_is_a_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = on(shared_params(tmp_path), "tcp://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(CropharmonyError, match=r"no Dask scheduler answers at tcp://127.0.0.1:9 within 2 s"):
        parallel.run_tasks(abs, [-1, 2], shared.dask, "chips")
