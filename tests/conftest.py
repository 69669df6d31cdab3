from __future__ import annotations

from pathlib import Path

import pytest

from curation.core.legends import CrosswalkSet, load_set
from tests.tiny_project import TinyProject, build

ROOT = Path(__file__).resolve().parents[1]
LEGENDS = ROOT / "curation" / "legends"
SAMPLES = ROOT.parent / "shared" / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The real label samples beside the project; tests using them skip on a clone without ../shared."""
    if not SAMPLES.is_dir():
        pytest.skip(f"real label samples not found at {SAMPLES} (they live in ../shared/samples beside the project)")
    return SAMPLES


@pytest.fixture(scope="session")
def toolkit() -> CrosswalkSet:
    return load_set(LEGENDS, "toolkit")


@pytest.fixture(scope="session")
def paper() -> CrosswalkSet:
    return load_set(LEGENDS, "paper")


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory: pytest.TempPathFactory) -> TinyProject:
    """The whole pipeline run once per session on the tiny profile (~2 min): end-to-end and app tests share it."""
    return build(tmp_path_factory.mktemp("tiny"))
