"""Run one function over many items on Dask: a local cluster by default, a real one by address, or in-process.

Results come back in the order of the items whatever order the workers finish in, so stage outputs stay
byte-identical. A progress bar shows on a terminal (tqdm hides itself when stderr is not one).
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

        with _client(dask) as client:
            futures = client.map(function, items, pure=False)  # type: ignore[attr-defined]
            for _ in as_completed(futures):  # type: ignore[no-untyped-call]
                bar.update()
            return [future.result() for future in futures]
    finally:
        bar.close()
