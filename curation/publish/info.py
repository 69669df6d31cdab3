"""What a release folder holds and what its data card and metadata writers are told about it.

`releases/<version>/` (written by stage `publish`, curation/publish/stage.py):

    README.md                  the data card (curation/publish/card.py)
    SHA256SUMS                 `<sha256>  <path>` for every other file, sorted by path (sha256sum -c reads it)
    release.json               version, fingerprints (crosswalks, splits, chips) and counts: the next version's check;
                               files: the sha256 of every file but the chips, itself and SHA256SUMS (publish verify)
    croissant.json             Croissant JSON-LD (curation/publish/croissant.py)
    stac/collection.json       STAC collection, one item per chip under stac/<source>/<chip_id>.json (label extension)
    manifest.parquet           the manifest rows of the released chips (paths relative to chips/)
    class_counts.csv           source, split, size, class, pixels, chips: pixels of each class and chips holding any
    subsets/subsets.parquet    chip_id, source, split, size (ours)
    subsets/lists/*.csv        the same in the study's format (sentinel2_<dataset>_subsampled_<size>.csv)
    crosswalks/                target.csv, sources.csv and the crosswalk CSVs of the set used; crosswalks.json: the
                               comparison with the other sets (the study's `paper` set)
    validation/                summary.json, <source>.json, failures.parquet of the validate run
    chips/<source>/images/<chip_id>.tif, chips/<source>/labels/<chip_id>.tif
    .cropharmony-stage         the stage marker of every output folder (also in stac/): bookkeeping, in no record

Beside the releases, `<out>/published/<version>.json` (git-tracked) records each pushed version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curation.core.registry import SourceInfo

CARD = "README.md"
SUMS = "SHA256SUMS"
RELEASE = "release.json"
CROISSANT = "croissant.json"
STAC_DIR = "stac"
STAC_COLLECTION = "stac/collection.json"
MANIFEST = "manifest.parquet"
CLASS_COUNTS = "class_counts.csv"
SUBSETS = "subsets/subsets.parquet"
LISTS = "subsets/lists"
CROSSWALKS = "crosswalks"
CROSSWALKS_REPORT = "crosswalks/crosswalks.json"
VALIDATION = "validation"
CHIPS = "chips"
PUBLISHED = "published"  # <out>/published/<version>.json: records of pushed versions, beside the releases


@dataclass(frozen=True)
class ReleaseInfo:
    """Everything about a release that is not in its files: identity, provenance and the taxonomy."""

    version: str
    title: str
    description: str
    date: str  # YYYY-MM-DD
    licence: str  # of the harmonized labels and metadata
    url: str | None
    changelog: tuple[tuple[str, str], ...]  # (version, what changed), newest first
    crosswalk_set: str  # `toolkit` or `paper`
    class_ids: tuple[int, ...]  # taxonomy, id 0 = ignore
    class_names: tuple[str, ...]
    class_colors: tuple[str, ...]
    sources: tuple[SourceInfo, ...]  # the registry entries of the released sources
    differences: tuple[dict[str, Any], ...]  # codes the study's set maps differently: source, code, name, <set>...
    decisions: tuple[dict[str, Any], ...]  # crosswalk rows with a `decision:` note: source, code, name, target, note
    synthetic: dict[str, Any] | None  # DEMO_WORLD.json when the data is the generated demo world, else None
    bands: tuple[str, ...]  # band order of the image chips
    chip_px: int
    resolution_m: float
    path: str  # the release folder in its repository (what `dvc import` names), e.g. releases/1.0.0
    tag: str  # the git tag `cropharmony publish push` gives it, e.g. data-v1.0.0
