"""Run one function over many items on Dask: a local cluster by default, a real one by address, or in-process.

Results come back in the order of the items whatever order the workers finish in, so stage outputs stay
byte-identical. A progress bar shows on a terminal (tqdm hides itself when stderr is not one).

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

from curation.core.shared import DaskParams

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 16  # items per Dask task at most
BATCHES_PER_WORKER = 8  # at least this many tasks per worker, so a slow batch does not hold up the end


def batch_size(items: int, workers: int) -> int:
    """Items per task: up to MAX_BATCH, with at least BATCHES_PER_WORKER tasks per worker."""
    return max(1, min(MAX_BATCH, items // max(workers * BATCHES_PER_WORKER, 1)))


def _run_batch(function: Callable[[T], R], batch: Sequence[T]) -> list[R]:
    return [function(item) for item in batch]


@contextmanager
def _client(dask: DaskParams) -> Iterator[object]:
    from distributed import Client, LocalCluster

    if dask.scheduler == "local":
        with (
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
        with Client(dask.scheduler) as client:  # type: ignore[no-untyped-call]
            yield client


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
        from distributed import as_completed

        size = batch_size(len(items), dask.workers)
        batches = [list(items[i : i + size]) for i in range(0, len(items), size)]
        with _client(dask) as client:
            futures = client.map(_run_batch, [function] * len(batches), batches, pure=False)  # type: ignore[attr-defined]
            sizes = {future.key: len(batch) for future, batch in zip(futures, batches, strict=True)}
            for done in as_completed(futures):  # type: ignore[no-untyped-call]
                bar.update(sizes[done.key])
            return [result for future in futures for result in future.result()]
    finally:
        bar.close()
