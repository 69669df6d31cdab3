from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.artifacts import ROOT_ENV
from tests.tiny_project import TinyProject

ENTRY = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"

OpenPage = Callable[[Path, str], AppTest]


@pytest.fixture(autouse=True)
def main_module() -> Iterator[None]:
    """AppTest runs the script as `__main__` and leaves it there; spawned processes (Dask workers) would re-run it."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenPage]:
    """Run the app on a project root and switch to one page (views/<name>.py), as a user clicking it."""

    def opened(root: Path, page: str) -> AppTest:
        monkeypatch.setenv(ROOT_ENV, str(root))
        app = AppTest.from_file(str(ENTRY), default_timeout=60).run()
        if page != "overview":
            app.switch_page(f"views/{page}.py").run()
        assert not app.exception, [e.value for e in app.exception]
        return app

    yield opened


PREBUILT_ENV = "CROPHARMONY_TEST_APP_ARTIFACTS"  # a folder of the tiny profile's app artifacts built before: no rebuild


@pytest.fixture(scope="session")
def demo_artifacts(request: pytest.FixtureRequest) -> Path:
    """The app's artifacts of the tiny demo profile, as `dvc repro` left them (tests treat them as read-only)."""
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt:
        return Path(prebuilt)
    project: TinyProject = request.getfixturevalue("tiny_project")
    return project.artifacts
