"""The source registry is data: read without importing a reader, every bad row reported with its line."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from curation.core.errors import SourceError
from curation.core.registry import (
    COLUMNS,
    REGISTRY,
    REGISTRY_ENV,
    RegistryError,
    demo_sources,
    load_registry,
    registry_rows,
    source_info,
    source_names,
)
from curation.sources import SOURCES, get_source

STUDY = ["cdl", "eurocrops", "nccm", "south_africa_crop_type", "agrifieldnet", "south_america_soybean"]


def rows() -> list[dict[str, str]]:
    with REGISTRY.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write(path: Path, table: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)
    return path


def test_the_shipped_registry_is_the_six_study_sources_in_order() -> None:
    assert list(source_names()) == STUDY == list(demo_sources()) == list(SOURCES)
    assert source_info("eurocrops").kind == "vector" and source_info("cdl").years[-1] == 2023
    assert [row["source"] for row in registry_rows()] == STUDY


def test_reading_the_registry_imports_no_reader() -> None:
    script = (
        "import sys; from curation.core.registry import registry_rows; registry_rows();"
        "print(sorted(m for m in sys.modules if m.startswith('curation.sources') or m == 'rasterio'))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_reader_class_is_imported_on_first_use_and_carries_its_row() -> None:
    reader = get_source("nccm")
    assert reader.__name__ == "NCCM" and reader.info == source_info("nccm")


def test_every_bad_row_is_named_with_its_line(tmp_path: Path) -> None:
    table = rows()
    table[1] = {**table[1], "kind": "polygons"}
    table[2] = {**table[2], "reader": "curation.sources.nccm.NCCM", "demo": "yes"}
    table.append({**table[0]})  # cdl twice
    path = write(tmp_path / "registry.csv", table)
    with pytest.raises(RegistryError) as caught:
        load_registry(path)
    found = {(p.file.rsplit(":", 1)[-1], p.rule) for p in caught.value.problems}
    assert found == {
        ("3", "known kind"),
        ("4", "reader is module:Class"),
        ("4", "demo is true or false"),
        ("8", "unique source"),
    }


def test_a_wrong_header_says_which_columns_to_use(tmp_path: Path) -> None:
    path = write(tmp_path / "registry.csv", rows(), COLUMNS[:-1])
    with pytest.raises(RegistryError, match=r"columns.*citation"):
        load_registry(path)


def test_an_unknown_source_suggests_the_closest(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RegistryError, match="did you mean 'nccm'"):
        source_info("ncmm")
    with pytest.raises(SourceError, match="did you mean 'cdl'"):
        get_source("cdll")


def test_a_registry_row_naming_a_missing_reader_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = [*rows(), {**rows()[0], "source": "ghost", "reader": "curation.sources.ghost:Ghost", "demo": "false"}]
    monkeypatch.setenv(REGISTRY_ENV, str(write(tmp_path / "registry.csv", table)))
    assert "ghost" in source_names()
    with pytest.raises(SourceError, match=r"reader importable.*curation\.sources\.ghost"):
        get_source("ghost")


def test_a_reader_of_another_kind_than_its_row_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = [{**row, "kind": "vector"} if row["source"] == "cdl" else row for row in rows()]
    monkeypatch.setenv(REGISTRY_ENV, str(write(tmp_path / "registry.csv", table)))
    with pytest.raises(SourceError, match=r"a vector reader is a VectorLabelSource.*curation\.sources\.cdl:CDL"):
        get_source("cdl")
