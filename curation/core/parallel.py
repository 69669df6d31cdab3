"""Run one function over many items on Dask: a local cluster by default, a real one by address, or in-process.

Results come back in the order of the items whatever order the workers finish in, so stage outputs stay
byte-identical. A progress bar shows on a terminal (tqdm hides itself when stderr is not one).

On a cluster (`shared.dask.scheduler: tcp://host:port`) a worker that dies mid-stage costs only its tasks: the
scheduler runs them again on the others (up to `distributed.scheduler.allowed-failures` times), and the tasks'
writes are atomic renames into the stage's temporary folder, so a rerun task replaces what the dead one left. A
task that kills every worker it meets stops the stage with a message, and the stage leaves no output. Workers write
the stage's files themselves, so that folder must be on a filesystem every worker mounts (docs/cluster.md).

Items go to the workers in batches (`batch_size`): a Dask task costs about a millisecond of scheduler and
transfer work, as much as a 256 px chip's own read, so one task per chip would spend a large share of a 2-core
machine on scheduling. Batches stay small enough (several per worker) to balance the load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

from curation.core.errors import CropharmonyError
from curation.core.shared import DaskParams

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT_S = 30  # seconds to reach a remote scheduler
MAX_BATCH = 16  # items per Dask task at most
BATCHES_PER_WORKER = 8  # at least this many tasks per worker, so a slow batch does not hold up the end


def batch_size(items: int, workers: int) -> int:
    """Items per task: up to MAX_BATCH, with at least BATCHES_PER_WORKER tasks per worker."""
    return max(1, min(MAX_BATCH, items // max(workers * BATCHES_PER_WORKER, 1)))


def _run_batch(function: Callable[[T], R], batch: Sequence[T]) -> list[R]:
    return [function(item) for item in batch]


def _forkserver(modules: Sequence[str]) -> bool:
    """Start the local cluster's workers from a forkserver that has imported `modules` (and Dask's own) once.

    Dask's default `spawn` starts each worker as a fresh interpreter that imports distributed, numpy, rasterio,
    geopandas... again: about 3.5 s of a local cluster's start on 2 cores, paid per worker. A forkserver imports them
    once, single-threaded, and forks each worker from there. False where the platform has no forkserver.

    The forkserver starts with the process's first local cluster and serves every later one: their workers see the
    environment and working folder of that moment (a stage runs one cluster, so it never matters there).
    """
    import multiprocessing

    from dask import config as dask_config
    from distributed import utils

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    with dask_config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        # Dask sets its preload list (distributed and its packages) once per process; ours, set after, is kept
        context = utils.get_mp_context()  # type: ignore[no-untyped-call]
    preload = list(dict.fromkeys(["distributed", *modules]))
    context.set_forkserver_preload(preload)
    return True


@contextmanager
def _client(dask: DaskParams, modules: Sequence[str] = ()) -> Iterator[object]:
    from dask import config as dask_config
    from distributed import Client, LocalCluster

    if dask.scheduler == "local":
        method = "forkserver" if _forkserver(modules) else "spawn"
        with (
            dask_config.set({"distributed.worker.multiprocessing-method": method}),
            LocalCluster(
                n_workers=dask.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,  # type: ignore[no-untyped-call]
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            yield client
    else:
        try:
            client = Client(dask.scheduler, timeout=CONNECT_TIMEOUT_S)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise CropharmonyError(
                f"shared.dask.scheduler: no Dask scheduler answers at {dask.scheduler} within {CONNECT_TIMEOUT_S} s "
                f"({exc}); start one (`dask scheduler`, dask-jobqueue, dask-kubernetes) or set it to local"
            ) from exc
        with client:
            yield client


def _workers(client: object, dask: DaskParams) -> int:
    """Worker threads to plan batches for: the cluster's (a remote one has its own size), else `dask.workers`."""
    if dask.scheduler == "local":
        return dask.workers
    info = client.scheduler_info()  # type: ignore[attr-defined]
    threads = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
    if threads < 1:
        raise CropharmonyError(
            f"shared.dask.scheduler: the Dask scheduler at {dask.scheduler} has no workers; start some "
            "(`dask worker <address>`) before the stage"
        )
    return threads


def run_tasks(function: Callable[[T], R], items: Sequence[T], dask: DaskParams, description: str) -> list[R]:
    """`[function(item) for item in items]`, spread over Dask workers with a progress bar.

    `function` must be a module-level function (workers import it) and should return failures as values: an
    exception it raises stops the whole stage, as a bug should.
    """
    if not items:
        return []
    bar = tqdm(total=len(items), desc=description, unit="chip", disable=None)
    try:
        if dask.scheduler == "synchronous":
            results = []
            for item in items:
                results.append(function(item))
                bar.update()
            return results
        from distributed import KilledWorker, as_completed

        with _client(dask, (function.__module__,)) as client:
            size = batch_size(len(items), _workers(client, dask))
            batches = [list(items[i : i + size]) for i in range(0, len(items), size)]
            futures = client.map(_run_batch, [function] * len(batches), batches, pure=False)  # type: ignore[attr-defined]
            sizes = {future.key: len(batch) for future, batch in zip(futures, batches, strict=True)}
            try:
                for done in as_completed(futures):  # type: ignore[no-untyped-call]
                    bar.update(sizes[done.key])
                return [result for future in futures for result in future.result()]
            except KilledWorker as exc:
                raise CropharmonyError(
                    f"{description}: Dask workers died each time they ran one batch of chips ({exc}), more often "
                    "than the scheduler retries a task (distributed.scheduler.allowed-failures, 3 by default); the "
                    "stage wrote nothing. Look at the workers' logs (a memory limit, a job killed by the batch "
                    "system), give them more memory, or raise allowed-failures on the scheduler"
                ) from exc
    finally:
        bar.close()
