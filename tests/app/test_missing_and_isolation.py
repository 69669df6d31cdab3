"""The app without artifacts says which stage to run; it never loads torch or the training package; it starts local.

Where it listens from any folder, and what it warns about: test_serving.py.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from curation.cli.launch_app import ENTRY, command
from tests.app.conftest import OpenPage

ROOT = Path(__file__).resolve().parents[2]
PAGES = ("overview", "balance", "legends", "chips", "validation", "transfer")
FORBIDDEN = ("torch", "torchvision", "torchgeo", "lightning", "segmentation_models_pytorch", "training")


@pytest.fixture
def bare_project(tmp_path: Path) -> Path:
    """A fresh clone before `dvc repro`: params and legends, no artifacts."""
    shutil.copy2(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "curation" / "legends", tmp_path / "curation" / "legends")
    return tmp_path


@pytest.mark.parametrize(
    ("page", "stage", "path"),
    [
        ("overview", "chips", "data/chips/manifest.parquet"),
        ("balance", "chips", "data/chips/manifest.parquet"),
        ("chips", "chips", "data/chips/manifest.parquet"),
        ("validation", "validate", "reports/validation/summary.json"),
        ("transfer", "report", "metrics/transfer.parquet"),
    ],
)
def test_missing_artifact_names_the_stage_to_run(
    bare_project: Path, open_page: OpenPage, page: str, stage: str, path: str
) -> None:
    app = open_page(bare_project, page)
    messages = [w.value for w in app.warning]
    assert any(f"`{bare_project / path}` is missing" in m and f"`uv run dvc repro {stage}`" in m for m in messages)
    assert not any("Synthetic data" in m for m in messages)  # no demo marker: no banner


def test_legends_page_works_from_the_crosswalks_alone(bare_project: Path, open_page: OpenPage) -> None:
    app = open_page(bare_project, "legends")
    assert app.title[0].value == "Legends"
    assert {m.label: m.value for m in app.metric}["Codes in the data"] == "-"
    notes = [i.value for i in app.info]
    assert any("stage `validate`" in n for n in notes) and any("stage `crosswalks`" in n for n in notes)


def test_overview_without_subsets_says_so(bare_project: Path, demo_artifacts: Path, open_page: OpenPage) -> None:
    shutil.copytree(demo_artifacts / "data" / "chips", bare_project / "data" / "chips")
    app = open_page(bare_project, "overview")
    assert {m.label: m.value for m in app.metric}["Subsets per source"] == "0"
    assert any("`uv run dvc repro subsets`" in i.value for i in app.info)


def test_every_page_runs_without_torch_or_training(demo_artifacts: Path) -> None:
    script = f"""
import json, os, sys
os.environ["CROPHARMONY_ROOT"] = {str(demo_artifacts)!r}
from streamlit.testing.v1 import AppTest
app = AppTest.from_file({str(ENTRY)!r}, default_timeout=60).run()
for page in {list(PAGES[1:])!r}:
    app.switch_page(f"views/{{page}}.py").run()
    assert not app.exception and app.title[0].value, page
print(json.dumps(sorted(sys.modules)))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "app.views.common" in loaded  # the pages did run
    assert [m for m in loaded if m.split(".")[0] in FORBIDDEN] == []


def test_app_sources_import_nothing_from_the_deep_learning_stack() -> None:
    for path in sorted((ROOT / "app").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            assert not [n for n in names if n.split(".")[0] in FORBIDDEN], (path, names)


def test_launch_command_listens_on_localhost_by_default(tmp_path: Path) -> None:
    line = command(tmp_path)
    assert line[1:5] == ["-m", "streamlit", "run", str(ENTRY)]
    assert line[line.index("--server.address") + 1] == "127.0.0.1"
    assert line[line.index("--browser.gatherUsageStats") + 1] == "false"
    assert line[-3:] == ["--", "--root", str(tmp_path.resolve())]
    assert line[line.index("--server.headless") + 1] == "true"  # no stdin prompt, no browser launched
    public = command(tmp_path, 9000, "0.0.0.0", headless=False)
    assert public[6:11] == ["0.0.0.0", "--server.port", "9000", "--server.headless", "false"]
    assert public[public.index("--browser.gatherUsageStats") + 1] == "false"  # whatever the address
