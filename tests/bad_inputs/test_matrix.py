"""The bad-input matrix over every stage and the app (the cases live in `cases_*.py` beside this file)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.bad_inputs.harness import Case, check_case, copy_project
from tests.tiny_project import TinyProject

MODULES = ("cases_core", "cases_inputs", "cases_outputs")
CASES: list[Case] = [c for m in MODULES for c in importlib.import_module(f"tests.bad_inputs.{m}").CASES]


TROUBLESHOOTING = Path(__file__).resolve().parents[2] / "docs" / "troubleshooting.md"


def test_the_matrix_is_large_and_its_ids_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 30


def test_the_troubleshooting_page_lists_every_rule_the_matrix_checks() -> None:
    page = TROUBLESHOOTING.read_text(encoding="utf-8")
    missing = sorted({c.rule for c in CASES if c.rule not in page})
    assert missing == [], f"add these rules and their real messages to {TROUBLESHOOTING}: {missing}"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tiny_project: TinyProject, tmp_path: Path) -> None:
    check_case(case, copy_project(tiny_project, tmp_path / "project"))
