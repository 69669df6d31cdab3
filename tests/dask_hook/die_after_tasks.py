"""Fault injection for the Dask cluster tests: a `dask worker --preload` module that SIGKILLs its worker.

`dask worker ADDRESS --preload tests/dask_hook/die_after_tasks.py` with CROPHARMONY_DIE_AFTER=N kills the worker
process right after its N-th task finished, before the scheduler can fetch the result: what an out-of-memory kill
or a pre-empted batch job does to a real cluster. N = 1 under a nanny (which restarts it) makes every attempt of a
task die, so the scheduler gives up (KilledWorker). Each kill appends a line to CROPHARMONY_DIE_MARK (a file), so
the test knows it fired.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from distributed import Worker, WorkerPlugin


class DieAfterTasks(WorkerPlugin):
    """Kill this worker process once `after` of its tasks finished."""

    def __init__(self, after: int, mark: str) -> None:
        self.after = after
        self.mark = mark
        self.done = 0

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:  # noqa: ANN401 - Dask's keys
        if finish != "memory":
            return
        self.done += 1
        if self.done >= self.after:
            if self.mark:
                with Path(self.mark).open("a", encoding="utf-8") as handle:
                    handle.write(f"{os.getpid()} {key}\n")
            os.kill(os.getpid(), signal.SIGKILL)


async def dask_setup(worker: Worker) -> None:
    """Dask's preload hook: install the plugin on this worker."""
    after = int(os.environ.get("CROPHARMONY_DIE_AFTER", "0"))
    if after > 0:
        plugin = DieAfterTasks(after, os.environ.get("CROPHARMONY_DIE_MARK", ""))
        await worker.plugin_add(plugin, name="die-after-tasks")
