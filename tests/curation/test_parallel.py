"""`run_tasks`: results in item order whatever order the workers finish in, on every scheduler."""

from __future__ import annotations

import time

import pytest

from curation.core.parallel import run_tasks
from curation.core.shared import DaskParams

# Earlier items sleep longer, so on a cluster the last items finish first.
ITEMS = [(value, 0.05 * (5 - value)) for value in range(6)]


def slow_square(item: tuple[int, float]) -> tuple[int, float]:
    """`value ** 2` after sleeping `delay` seconds, with the time it finished (module level: workers import it)."""
    value, delay = item
    time.sleep(delay)
    return value * value, time.time()


def test_synchronous_runs_in_process_in_item_order() -> None:
    seen: list[int] = []

    def record(value: int) -> int:  # a closure: fine in-process, never pickled
        seen.append(value)
        return -value

    assert run_tasks(record, [3, 1, 2], DaskParams(scheduler="synchronous", workers=1), "test") == [-3, -1, -2]
    assert seen == [3, 1, 2]


def test_a_local_cluster_returns_results_in_item_order() -> None:
    results = run_tasks(slow_square, ITEMS, DaskParams(scheduler="local", workers=2), "test")
    assert [square for square, _ in results] == [value * value for value, _ in ITEMS]
    finished = [when for _, when in results]
    assert finished != sorted(finished)  # the workers did finish out of item order


@pytest.mark.parametrize("scheduler", ["synchronous", "local", "tcp://127.0.0.1:1"])
def test_no_items_give_no_results_and_start_nothing(scheduler: str) -> None:
    start = time.perf_counter()
    assert run_tasks(slow_square, [], DaskParams(scheduler=scheduler, workers=2), "test") == []
    assert time.perf_counter() - start < 1.0  # no cluster started, no scheduler contacted


def test_an_exception_in_a_task_stops_the_run() -> None:
    with pytest.raises(ZeroDivisionError):
        run_tasks(lambda value: 1 // value, [1, 0, 2], DaskParams(scheduler="synchronous", workers=1), "test")
