from __future__ import annotations

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


@pytest.fixture(scope="session")
def demo_artifacts(tiny_project: TinyProject) -> Path:
    """The app's artifacts of the tiny demo profile, as `dvc repro` left them."""
    return tiny_project.artifacts
