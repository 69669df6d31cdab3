"""dvc.yaml is right by construction: every stage depends on all the code it imports and the params it reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curation.chips.config import ChipsParams
from curation.core.artifacts import Artifacts
from curation.core.params import UndeclaredParamsError, load_section, reading_for
from curation.core.shared import SharedParams
from curation.core.stages import BY_NAME, STAGES
from tests import lineage

ROOT = lineage.ROOT
GRAPH = lineage.import_graph()
MODULES = lineage.module_files()
DVC = lineage.dvc_stages()


@pytest.mark.parametrize("name", sorted(DVC))
def test_every_imported_project_file_is_a_dependency(name: str) -> None:
    stage = DVC[name]
    missing = lineage.uncovered(lineage.stage_files(stage, GRAPH, MODULES), stage.deps)
    assert missing == [], f"dvc.yaml stage {name}: add deps covering {missing}"


def test_the_check_fails_when_a_dependency_is_dropped(tmp_path: Path) -> None:
    """The check above can fail: chips without `curation/core` misses io.py, the module every stage writes with."""
    text = (ROOT / "dvc.yaml").read_text(encoding="utf-8")
    chips = text.index("  chips:\n")
    broken = text[:chips] + text[chips:].replace("      - curation/core\n", "", 1)
    (tmp_path / "dvc.yaml").write_text(broken, encoding="utf-8")
    stage = lineage.dvc_stages(tmp_path / "dvc.yaml")["chips"]
    missing = lineage.uncovered(lineage.stage_files(stage, GRAPH, MODULES), stage.deps)
    assert "curation/core/io.py" in missing and "curation/core/params.py" in missing
    assert all(path.startswith("curation/core/") for path in missing)


def test_dvc_stages_are_the_stage_table() -> None:
    assert sorted(DVC) == sorted(BY_NAME)
    for stage in STAGES:
        assert DVC[stage.name].module == stage.module, stage.name
        assert sorted(DVC[stage.name].params) == sorted(stage.params), f"dvc.yaml params of {stage.name}"


def test_a_stage_reading_params_it_does_not_declare_is_refused() -> None:
    params = ROOT / "params.yaml"
    with reading_for("report"), pytest.raises(UndeclaredParamsError, match=r"stage report.*'chips'.*stages\.py"):
        load_section(ChipsParams, params)
    with reading_for("report"), pytest.raises(UndeclaredParamsError, match=r"'chips\.out'"):
        _ = Artifacts.load(params).manifest
    with reading_for("subsets"):  # declared: shared keys, the whole subsets section, chips.out
        assert load_section(SharedParams, params).crosswalk_set
        assert Artifacts.load(params).manifest.path == Path("data/chips/manifest.parquet")


def test_no_import_cycles_between_modules_or_packages() -> None:
    modules = lineage.import_graph(parents=False)
    assert lineage.cycles(modules) == []
    assert lineage.cycles(lineage.package_graph(modules)) == []


def test_layers() -> None:
    """core depends on nothing above it; training and the app on curation's core only, never on a stage."""
    units = lineage.package_graph(lineage.import_graph(parents=False))
    assert units["curation.core"] == set()
    assert units["training"] <= {"curation.core"}
    assert units["app"] <= {"curation.core"}
    assert units["curation.sources"] <= {"curation.core"}
    for name, imported in units.items():
        assert "curation.cli" not in imported, f"{name} imports the CLI"


LIGHT = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
stages = ("curation.sources", "curation.inputs", "curation.chips", "curation.validate", "training.train")
heavy = [m for m in sys.modules if m.split(".")[0] in ("torch", "lightning", "torchgeo") or m.startswith(stages)]
print(json.dumps(sorted(heavy)))
"""


@pytest.mark.parametrize(
    "modules",
    [
        ["training.report"],
        ["app.artifacts", "app.charts", "app.render", "app.views.common"]
        + [f"app.queries.{name}" for name in ("balance", "chips", "legends", "overview", "transfer")],
    ],
    ids=["report stage", "app"],
)
def test_light_imports_load_no_torch_and_no_reader(modules: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LIGHT, *modules], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
