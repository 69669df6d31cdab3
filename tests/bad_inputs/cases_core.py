"""Bad inputs of the core: outputs over user files, overlapping outputs, user files inside the demo world, params."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.bad_inputs.harness import Case, write_text


def _params(change: dict[str, dict[str, object]]) -> object:
    def breaks(root: Path) -> None:
        path = root / "params.yaml"
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        for section, keys in change.items():
            raw[section].update(keys)
        write_text(path, yaml.safe_dump(raw, sort_keys=False))

    return breaks


def _user_folder(root: Path) -> None:
    write_text(root / "mine" / "thesis.tex", "years of work")


def _user_file(root: Path) -> None:
    write_text(root / "notes.txt", "a file, not a folder")


def _real_chip_in_demo_world(root: Path) -> None:
    write_text(root / "data" / "demo" / "sentinel2" / "cdl" / "2023_9_9.tif", "a real chip dropped in the demo world")


def _duplicate_key(root: Path) -> None:
    path = root / "params.yaml"
    text = path.read_text(encoding="utf-8").replace("  max_ignore_share:", "  out: reports/v2\n  max_ignore_share:", 1)
    write_text(path, text)


def _user_file_in_chips(root: Path) -> None:
    write_text(root / "data" / "chips" / "my_notes.txt", "kept by the user")


CASES = [
    Case(
        "demo --out over a user folder",
        ("curation.demo", "--out", "mine"),
        _user_folder,
        "replace only an output it wrote",
        "mine",
        extra=("thesis.tex",),
    ),
    Case(
        "demo --out at a file", ("curation.demo", "--out", "notes.txt"), _user_file, "output is a folder", "notes.txt"
    ),
    Case(
        "chips.out is the raw root's parent",
        ("curation.chips",),
        _params({"chips": {"out": "data"}}),
        "outputs apart from inputs",
        "params.yaml",
        extra=("'chips.out'",),
    ),
    Case(
        "subsets.out inside chips.out",
        ("curation.subsets",),
        _params({"subsets": {"out": "data/chips/sets"}}),
        "outputs apart",
        "params.yaml",
        extra=("'subsets.out'",),
    ),
    Case(
        "report.out is the project's code",
        ("training.report",),
        _params({"report": {"out": "training"}}),
        "outputs apart from the project",
        "params.yaml",
    ),
    Case(
        "a real chip inside the demo world",
        ("curation.validate",),
        _real_chip_in_demo_world,
        "inputs apart from outputs",
        "data/demo",
        extra=("sentinel2/cdl/2023_9_9.tif",),
        dvc_stage="demo",
    ),
    Case(
        "a params key given twice",
        ("curation.validate",),
        _duplicate_key,
        "unique keys",
        "params.yaml",
        extra=("'out' appears twice",),
    ),
    Case(
        "params check: a key given twice",
        ("curation.cli", "params", "check"),
        _duplicate_key,
        "unique keys",
        "params.yaml",
    ),
    Case(
        "chips over a user's file in its output",
        ("curation.chips",),
        _user_file_in_chips,
        "replace only an output it wrote",
        "data/chips",
        extra=("my_notes.txt",),
    ),
    Case(
        "train --out over a user folder",
        (
            "training.train",
            "--protocol",
            "id",
            "--backbone",
            "ssl4eo",
            "--source",
            "cdl",
            "--size",
            "4",
            "--out",
            "mine",
        ),
        _user_folder,
        "replace only an output it wrote",
        "mine",
    ),
]
