"""docs/adding-a-source.md, followed to the letter: its code and rows register a seventh (and eighth) source that
validate and chips then handle without an edit to core, inputs or stage code.

The guide's blocks are read from the page itself, so the guide cannot drift from what works. The reader module is
written into a temporary package (the registry row's `curation.sources.` becomes that package), the registry is
the shipped one plus the guide's row (through `$CROPHARMONY_REGISTRY`), and the legends are a copy of the shipped
ones plus the guide's rows.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml
from affine import Affine
from rasterio.crs import CRS

from curation.chips import stage as chips
from curation.chips.config import ChipsParams
from curation.core.artifacts import MANIFEST
from curation.core.bands import S2_FILE_ORDER
from curation.core.errors import SourceError
from curation.core.geotiff import write_geotiff
from curation.core.legends import load_set
from curation.core.params import load_section
from curation.core.registry import REGISTRY, REGISTRY_ENV, demo_sources, source_info, source_names
from curation.core.schemas import class_column
from curation.core.shared import SharedParams
from curation.demo.stage import REGIONS
from curation.sources import get_source
from curation.sources.base import ChipGrid
from curation.validate import stage as validate
from curation.validate.config import ValidateParams
from tests.data.aci.data import LEFT, TOP
from tests.data.aci.data import write_fixture as write_aci
from tests.data.csb.data import write_fixture as write_csb

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "adding-a-source.md"
LEGENDS = ROOT / "curation" / "legends"
PACKAGE = "adding_a_source_example"  # + the test's name: each test imports its readers afresh
FENCE = re.compile(r"^```(\w+) (\S+)\n(.*?)^```", re.M | re.S)
CHIP_PX = 16


def guide_blocks(example: int) -> dict[str, str]:
    """`path -> text` of the fenced blocks of one example section of the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    sections = re.split(r"^## ", text, flags=re.M)
    section = next(s for s in sections if s.startswith(f"Example {example}:"))
    return {path: body for _, path, body in FENCE.findall(section)}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary package for readers, a registry and legends that start as the shipped ones."""
    suffix = re.sub(r"\W", "_", tmp_path.name)
    package = tmp_path / f"{PACKAGE}_{suffix}"
    package.mkdir()
    (package / "__init__.py").write_text('"""Readers written by following the guide."""\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    shutil.copyfile(REGISTRY, tmp_path / "registry.csv")
    shutil.copytree(LEGENDS, tmp_path / "legends")
    monkeypatch.setenv(REGISTRY_ENV, str(tmp_path / "registry.csv"))
    yield tmp_path


def package_of(project: Path) -> Path:
    return next(project.glob(f"{PACKAGE}_*"))


def follow(project: Path, blocks: dict[str, str]) -> dict[str, Any]:
    """Do what the guide's blocks say; returns the source's params block."""
    for path, body in blocks.items():
        if path.startswith("curation/sources/") and path.endswith(".py"):
            (package_of(project) / Path(path).name).write_text(body, encoding="utf-8")
        elif path == "curation/sources/registry.csv":
            with (project / "registry.csv").open("a", encoding="utf-8") as handle:
                handle.write(body.replace("curation.sources.", f"{package_of(project).name}.", 1))
        elif path == "curation/legends/sources.csv":
            table = project / "legends" / "sources.csv"
            lines = table.read_text(encoding="utf-8").splitlines()
            fields = next(csv.reader([body]))
            if len(fields) == len(lines[0].split(",")) + 1:  # the row names its crosswalk: add the column once
                lines = [f"{lines[0]},crosswalk", *(f"{line}," for line in lines[1:])]
            table.write_text("\n".join([*lines, body.rstrip("\n")]) + "\n", encoding="utf-8")
        elif path.startswith("curation/legends/") and body.startswith("cp "):  # a shell step: copy a legend file
            source, target = (project / "legends" / Path(p).relative_to("curation/legends") for p in body.split()[1:])
            shutil.copyfile(source, target)
        elif path.startswith("curation/legends/"):
            (project / "legends" / Path(path).relative_to("curation/legends")).write_text(body, encoding="utf-8")
    params = yaml.safe_load(blocks["params.yaml"])
    assert isinstance(params, dict) and len(params) == 1
    return params


def image_chip(path: Path, crs: CRS, left: float, top: float) -> ChipGrid:
    """A 13-band uint16 chip of CHIP_PX at 10 m with its top-left corner at (left, top)."""
    transform = Affine(10.0, 0.0, left, 0.0, -10.0, top)
    data = np.full((len(S2_FILE_ORDER), CHIP_PX, CHIP_PX), 1200, dtype=np.uint16)
    write_geotiff(path, data, crs, transform, S2_FILE_ORDER)
    return ChipGrid(crs, transform, CHIP_PX, CHIP_PX, path.stem)


def shared_for(project: Path, name: str, source: dict[str, Any]) -> SharedParams:
    shared = {
        "legends_dir": str(project / "legends"),
        "crosswalk_set": "toolkit",
        "raw_root": str(project / "raw"),
        "chip_px": CHIP_PX,
        "resolution_m": 10.0,
        "bands": list(S2_FILE_ORDER),
        "dask": {"scheduler": "synchronous", "workers": 1},
        "sources": {name: source},
    }
    return SharedParams.model_validate(shared)


def run_stages(project: Path, shared: SharedParams) -> tuple[dict[str, Any], Any]:
    summary = validate.check(
        shared, ValidateParams(max_ignore_share=1.0, max_nodata_share=0.5, out=project / "validation")
    )
    report = project / "reports" / "chips.json"
    params = ChipsParams(out=project / "chips", report=report, link="copy", product_images="vrt", skip_failed=False)
    chips.build(shared, params, report)
    return summary, pl.read_parquet(project / "chips" / MANIFEST)


def expected_counts(codes: np.ndarray, crosswalk_set: Any, source: str) -> dict[str, int]:  # noqa: ANN401
    harmonized = crosswalk_set[source].resolve(codes.ravel())
    names = crosswalk_set.taxonomy.names
    return {class_column(n): int((harmonized == i).sum()) for i, n in enumerate(names)}


def test_a_vector_source_with_a_column_per_year_shares_the_cdl_crosswalk(project: Path) -> None:
    params = follow(project, guide_blocks(1))
    assert "csb" in source_names() and source_info("csb").kind == "vector" and not source_info("csb").demo
    crosswalks = load_set(project / "legends", "toolkit")
    assert crosswalks["csb"].path.endswith("cdl.csv")  # the pointer: no copy of the CDL crosswalk
    assert load_set(project / "legends", "paper")["csb"].path.endswith("paper/cdl.csv")
    ((name, source),) = params.items()
    fields = write_csb(project / "raw" / source["labels"])
    crs = CRS.from_epsg(5070)
    images = project / "raw" / source["images"]
    left, top = fields.total_bounds[0] + 5.0, fields.total_bounds[3] - 5.0  # inside the first field's row
    grids = {year: image_chip(images / f"{year}_0_0.tif", crs, left, top) for year in (2021, 2022)}
    summary, manifest = run_stages(project, shared_for(project, name, source))
    assert summary["ok"] and summary["sources"]["csb"]["chips"] == 2
    reader = get_source("csb")
    read = {}
    for year, grid in grids.items():
        read[year] = reader(project / "raw" / source["labels"], year=year).read_labels(grid)
        assert set(np.unique(read[year])) <= set(fields[f"CDL{year}"])  # each year's own column
        row = manifest.filter(manifest["chip_id"] == f"{year}_0_0").row(0, named=True)
        assert row["source"] == "csb" and row["year"] == year and row["region"] == "Contiguous United States"
        for column, pixels in expected_counts(read[year], crosswalks, "csb").items():
            assert row[column] == pixels, (year, column)
    assert not np.array_equal(read[2021], read[2022])  # same chip footprint, another year, another column
    with pytest.raises(SourceError, match="label year"):  # no year: which column is ambiguous
        reader(project / "raw" / source["labels"]).read_labels(grids[2021])


def test_a_raster_source_with_its_own_legend(project: Path) -> None:
    params = follow(project, guide_blocks(2))
    ((name, source),) = params.items()
    assert name == "aci" and source_info("aci").kind == "raster"
    codes = write_aci(project / "raw" / source["labels"])
    crosswalks = load_set(project / "legends", "toolkit")
    assert crosswalks["aci"].path.endswith("legends/aci.csv")
    assert load_set(project / "legends", "paper")["aci"].path.endswith("paper/aci.csv")  # both sets load
    images = project / "raw" / source["images"]
    grid = image_chip(images / "2021_0_0.tif", CRS.from_epsg(3161), LEFT + 100.0, TOP - 100.0)
    summary, manifest = run_stages(project, shared_for(project, name, source))
    assert summary["ok"] and summary["sources"]["aci"]["chips"] == 1
    read = get_source("aci")(project / "raw" / source["labels"], year=2021).read_labels(grid)
    assert set(np.unique(read)) <= set(np.unique(codes))
    row = manifest.row(0, named=True)
    assert row["source"] == "aci" and row["region"] == "Canada"
    for column, pixels in expected_counts(read, crosswalks, "aci").items():
        assert row[column] == pixels, column


def test_a_source_without_a_demo_generator_leaves_the_demo_world_and_params_alone(project: Path) -> None:
    follow(project, guide_blocks(1))
    assert "csb" in source_names() and "csb" not in demo_sources()
    assert sorted(region.source for region in REGIONS) == sorted(demo_sources())  # the six study sources
    shared = load_section(SharedParams, ROOT / "params.yaml")  # the demo profile lists only those
    assert sorted(shared.sources) == sorted(demo_sources())
