from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from curation.core.legends import CrosswalkSet, load_set
from tests.tiny_project import TinyProject, build

ROOT = Path(__file__).resolve().parents[1]
LEGENDS = ROOT / "curation" / "legends"
SAMPLES = ROOT.parent / "shared" / "samples"


def pytest_configure(config: pytest.Config) -> None:
    """One fresh derived-data cache per test session (layer indexes, label windows), inherited by subprocesses."""
    if "CROPHARMONY_CACHE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="cropharmony-test-cache-")
        os.environ["CROPHARMONY_CACHE"] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


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
