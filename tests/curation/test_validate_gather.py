"""Validate on a cluster: the layer index is built beside the workers, and the reports match the in-process run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from curation.core import cache
from curation.inputs.facts import ChipTask
from curation.validate import stage as validate
from tests.curation.stage_world import demo_world, shared_params
from tests.curation.test_validate import validate_params


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_world(tmp_path_factory)


def _reports(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_cold_cluster_run_writes_the_reports_of_the_in_process_run(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache-sync"))
    validate.check(shared_params(world), validate_params(tmp_path / "sync"))
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache-local"))  # cold: the index is built during the run
    validate.check(shared_params(world, scheduler="local", workers=2), validate_params(tmp_path / "local"))
    sync, local = (_reports(tmp_path / run / "reports" / "validation") for run in ("sync", "local"))
    assert list(local) == list(sync) and local == sync
    assert list((tmp_path / "cache-local" / "layers").rglob("*.fgb"))


def test_vector_chips_go_last_while_the_index_is_built_and_facts_keep_the_chips_order(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.ENV, str(tmp_path / "cache"))
    seen: dict[str, Any] = {}

    def fake_run(function: Callable[[ChipTask], Any], items: Sequence[ChipTask], *_: object) -> list[Any]:
        seen["order"] = [t.ref.source.name for t in items]
        seen["built"] = bool(list((tmp_path / "cache" / "layers").rglob("*.fgb")))
        return [(t.ref.source.name, t.chip_id) for t in items]

    def slow_index(refs: list[Any]) -> None:
        seen["index_sources"] = sorted({r.source.name for r in refs})
        real(refs)

    real = validate._index_layers
    monkeypatch.setattr(validate, "run_tasks", fake_run)
    monkeypatch.setattr(validate, "_index_layers", slow_index)
    shared = shared_params(world, scheduler="local", workers=2)
    refs, _, _ = validate.find(shared)
    tasks = [ChipTask(ref, shared.legends_dir, shared.crosswalk_set, shared.bands, shared.chip_px) for ref in refs]
    facts = validate._gather(tasks, shared)
    assert facts == [(t.ref.source.name, t.chip_id) for t in tasks]  # type: ignore[comparison-overlap]
    vector = [name == "eurocrops" for name in seen["order"]]
    assert any(vector) and vector == sorted(vector)  # every vector chip after every other one
    assert seen["index_sources"] == ["eurocrops"]
    assert list((tmp_path / "cache" / "layers").rglob("*.fgb"))  # built by the time the stage goes on
