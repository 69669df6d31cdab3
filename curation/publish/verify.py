"""`cropharmony publish verify`: a release folder checked against its own records, never outside the folder.

SHA256SUMS alone proves little: whoever rewrites a file can rewrite its sum line too, and a sum line may name
`../x` or `/etc/x`. So every listed path must be a relative path inside the release (no `..`, no absolute path, no
link leaving it), every file must be listed and every listed file present, and the digests are then checked
against the release's other records, each written independently by `publish`:

- release.json: each chip's image and label digests, the crosswalk digest, the subset memberships, the counts, and
  the sha256 of every other file (`files`);
- croissant.json: the sha256 of each file object (manifest, class counts, subsets);
- stac/: one item per manifest chip, its assets pointing at that chip's files, its class counts the manifest's;
- the published record `<out>/published/<version>.json` beside the release (or `--record FILE`): the digest of
  SHA256SUMS and the fingerprints, as pushed and tagged. Only this one is outside the folder: without it a release
  whose files and records were all rewritten consistently still verifies, and the command says so.

The marker `.cropharmony-stage` that every stage output folder carries (curation/core/outputs.py) is pipeline
bookkeeping, not release content: it is written after SHA256SUMS, so SHA256SUMS leaves it out and verify ignores it.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from curation.core.errors import Problem, ProblemsError, SourceError
from curation.core.io import sha256_file
from curation.core.outputs import OWNER_MARKER, files_under
from curation.publish.info import (
    CHIPS,
    CROISSANT,
    CROSSWALKS,
    MANIFEST,
    PUBLISHED,
    RELEASE,
    STAC_DIR,
    SUBSETS,
    SUMS,
)

SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")  # sha256sum's text (two spaces) and binary (` *`) modes
DIGEST = 64


def rebuild(release: Path) -> str:
    """The fix for a release whose content is not what it was built with."""
    return f"restore it (`dvc checkout {release}` or `dvc pull`) or rebuild it (`dvc repro publish`)"


def excluded(name: str) -> bool:
    """Files no record lists: SHA256SUMS itself and the stage markers."""
    return name == SUMS or posixpath.basename(name) == OWNER_MARKER


def digest_of(pairs: Iterable[tuple[str, str]]) -> str:
    """One digest over (relative path, sha256) pairs in path order: release.json's crosswalk fingerprint."""
    digest = hashlib.sha256()
    for name, sha in sorted(pairs):
        digest.update(name.encode() + b"\0" + sha.encode() + b"\n")
    return digest.hexdigest()


def memberships(subsets: pl.DataFrame) -> dict[str, list[str]]:
    """`<source>/<chip_id>` -> its subsets (`train 4`, `test 4`), sorted: release.json's subset fingerprint."""
    found: dict[str, list[str]] = {}
    for row in subsets.iter_rows(named=True):
        found.setdefault(f"{row['source']}/{row['chip_id']}", []).append(f"{row['split']} {row['size']}")
    return {key: sorted(value) for key, value in sorted(found.items())}


def record_files(digests: Mapping[str, str]) -> dict[str, str]:
    """The `files` release.json records: every file but the chips (fingerprinted per chip), itself and SHA256SUMS."""
    return {
        name: sha
        for name, sha in sorted(digests.items())
        if not name.startswith(f"{CHIPS}/") and name != RELEASE and not excluded(name)
    }


def unsafe(name: str) -> str | None:
    """Why a listed path could leave the release folder (or is not one canonical relative path), else None."""
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if "\\" in name:
        return "a path with a backslash"
    parts = name.split("/")
    if ".." in parts:
        return "a path through `..`"
    if any(part in ("", ".") for part in parts):
        return "not a normalized relative path"
    return None


@dataclass
class Verification:
    """What verify found: the problems, the files checked, and the published record it compared (None: none)."""

    release: Path
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    record: Path | None = None
    listed: set[str] = field(default_factory=set)

    def add(self, name: str, rule: str, detail: str, fix: str | None = None) -> None:
        """A problem with the file `name` of the release (the fix defaults to restoring or rebuilding it)."""
        self.problems.append(Problem(str(self.release / name), rule, detail, fix or rebuild(self.release)))


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _sums(check: Verification) -> dict[str, str] | None:
    """SHA256SUMS parsed: path -> listed digest; malformed and unsafe lines become problems."""
    path = check.release / SUMS
    if path.is_symlink() or not path.is_file():
        check.add(SUMS, "SHA256SUMS present", "missing (or not a plain file)", "rebuild it: `dvc repro publish`")
        return None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        check.add(SUMS, "SHA256SUMS readable", f"{type(error).__name__}: {error}")
        return None
    listed: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        match = SUM_LINE.match(line)
        if match is None:
            check.add(SUMS, "lines are `<sha256>  <path>`", f"line {number}: {line[:80]!r}")
            continue
        digest, name = match.groups()
        reason = unsafe(name)
        if reason is not None:
            fix = "SHA256SUMS lists files inside the release by relative path only: " + rebuild(check.release)
            check.add(SUMS, "paths stay inside the release", f"line {number}: {name!r} is {reason}", fix)
        elif name in listed:
            check.add(SUMS, "each file listed once", f"line {number}: {name} is listed again")
        elif name == SUMS:
            check.add(SUMS, "each file listed once", f"line {number}: SHA256SUMS cannot list itself")
        else:
            listed[name] = digest
    return listed


def _files(check: Verification, listed: dict[str, str]) -> dict[str, str]:
    """Digests of the listed files that are safely inside; every mismatch, gap and escaping link is a problem."""
    root = check.release.resolve()
    link_fix = "replace the link by the file itself (`dvc checkout` with cache.type copy, reflink or hardlink)"
    digests: dict[str, str] = {}
    for name, digest in sorted(listed.items()):
        path = check.release / name
        if not _inside(root, path):
            where = f"resolves to {path.resolve()}, outside {root}"
            check.add(name, "no link leaves the release", where, link_fix)
        elif not path.is_file():
            check.add(name, "every listed file is present", f"listed in {SUMS}, not in the release")
        else:
            digests[name] = sha256_file(path)
            if digests[name] != digest:
                check.add(name, "sha256 matches SHA256SUMS", f"sha256 {digests[name]}, {SUMS} lists {digest}")
    for name in files_under(check.release):
        path = check.release / name
        marker = excluded(name) and path.is_file() and not path.is_symlink()
        if name in listed or marker:
            continue
        if path.is_symlink() and not _inside(root, path):
            check.add(name, "no link leaves the release", f"links to {path.resolve()}, outside {root}", link_fix)
        else:
            check.add(name, "every file is listed", f"not in {SUMS}", f"remove it, or {rebuild(check.release)}")
    check.files = len(digests)
    return digests


def _json(check: Verification, name: str, digests: Mapping[str, str]) -> Any:  # noqa: ANN401 - JSON
    if name not in digests:
        return None  # missing or unsafe: already a problem
    try:
        return json.loads((check.release / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        check.add(name, "readable JSON", f"{type(error).__name__}: {error}")
        return None


def _parquet(check: Verification, name: str, digests: Mapping[str, str]) -> pl.DataFrame | None:
    if name not in digests:
        return None
    try:
        return pl.read_parquet(check.release / name)
    except (OSError, pl.exceptions.PolarsError) as error:
        check.add(name, "readable Parquet", f"{type(error).__name__}: {error}")
        return None


def _agree(check: Verification, name: str, actual: str, recorded: object, record: str, what: str = "") -> None:
    """A file's digest against what `record` (release.json, croissant.json) holds for it."""
    if actual != recorded:
        detail = f"sha256 {actual[:16]}..., {record} records {str(recorded)[:16]}...{what}"
        check.add(name, f"{record} agrees with the files", detail)


def _chips(check: Verification, manifest: pl.DataFrame, digests: Mapping[str, str], chips: Mapping[str, Any]) -> None:
    """Each manifest chip's image and label against release.json's per-chip fingerprint (image digest + label's)."""
    seen = set()
    for row in manifest.iter_rows(named=True):
        key = f"{row['source']}/{row['chip_id']}"
        seen.add(key)
        names = [f"{CHIPS}/{row[column]}" for column in ("image_path", "label_path")]
        bad = [n for n in names if unsafe(n) or n not in digests]
        if bad:
            check.add(MANIFEST, "the manifest names files of the release", f"chip {key}: {bad[0]} is not listed")
            continue
        recorded = chips.get(key)
        if not isinstance(recorded, str) or len(recorded) != 2 * DIGEST:
            check.add(RELEASE, "release.json agrees with the files", f"chip {key} has no fingerprint")
            continue
        for index, name in enumerate(names):
            expected = recorded[index * DIGEST : (index + 1) * DIGEST]
            _agree(check, name, digests[name], expected, RELEASE, f" (chip {key})")
    gone = sorted(set(chips) - seen)
    if gone:
        check.add(RELEASE, "release.json agrees with the files", f"{len(gone)} chip(s) not in the manifest: {gone[0]}")


def _release_json(check: Verification, digests: Mapping[str, str], manifest: pl.DataFrame | None) -> dict[str, Any]:
    """release.json's fingerprints, counts and `files` recomputed from the files; returns release.json."""
    data = _json(check, RELEASE, digests)
    if not isinstance(data, dict) or not isinstance(data.get("fingerprints"), dict):
        if data is not None:
            check.add(RELEASE, "release.json holds fingerprints", "no `fingerprints` object")
        return {}
    prints = data["fingerprints"]
    if manifest is not None:
        _chips(check, manifest, digests, prints.get("chips") or {})
    crosswalks = [(n.removeprefix(f"{CROSSWALKS}/"), d) for n, d in digests.items() if n.startswith(f"{CROSSWALKS}/")]
    crosswalks = [(n, d) for n, d in crosswalks if "/" not in n and n.endswith(".csv")]
    _agree(check, f"{CROSSWALKS}/", digest_of(crosswalks), prints.get("crosswalks"), RELEASE, " (crosswalk CSVs)")
    subsets = _parquet(check, SUBSETS, digests)
    if subsets is not None and memberships(subsets) != prints.get("subsets"):
        check.add(SUBSETS, "release.json agrees with the files", "subset memberships differ from its `subsets`")
    counts = data.get("counts") or {}
    if manifest is not None and subsets is not None:
        found = {"chips": manifest.height, "sources": manifest["source"].n_unique(), "subset_rows": subsets.height}
        if counts != found:
            check.add(RELEASE, "release.json agrees with the files", f"counts {counts}, the files hold {found}")
    files = data.get("files")
    if not isinstance(files, dict):
        check.add(RELEASE, "release.json records every file", "no `files` object (a release built by older code)")
        return data
    expected = record_files(digests)
    for name in sorted(set(expected) | set(files)):
        if name not in expected:
            if name not in check.listed:  # listed but unusable (missing, a link out): already a problem
                check.add(name, "release.json agrees with the files", f"recorded in {RELEASE}, not in {SUMS}")
        elif name not in files:
            check.add(name, "release.json agrees with the files", f"not recorded in {RELEASE}")
        else:
            _agree(check, name, expected[name], files[name], RELEASE)
    return data


def _croissant(check: Verification, digests: Mapping[str, str]) -> None:
    data = _json(check, CROISSANT, digests)
    for entry in data.get("distribution", []) if isinstance(data, dict) else []:
        url, sha = entry.get("contentUrl"), entry.get("sha256")
        if not isinstance(url, str) or sha is None:
            continue  # file sets (chips/*/images/*.tif) carry no digest
        if unsafe(url) or url not in digests:
            check.add(CROISSANT, "croissant.json names files of the release", f"contentUrl {url!r} is not listed")
        else:
            _agree(check, url, digests[url], sha, CROISSANT)


def _stac(check: Verification, digests: Mapping[str, str], manifest: pl.DataFrame) -> None:
    """One item per chip, its assets at the chip's files, its label counts the manifest's."""
    items = {n for n in digests if n.startswith(f"{STAC_DIR}/") and n.count("/") == 2}
    for row in manifest.iter_rows(named=True):
        name = f"{STAC_DIR}/{row['source']}/{row['chip_id']}.json"
        items.discard(name)
        item = _json(check, name, digests)
        if not isinstance(item, dict):
            if name not in digests:
                check.add(name, "one STAC item per chip", f"missing for chip {row['source']}/{row['chip_id']}")
            continue
        for key, column in (("image", "image_path"), ("labels", "label_path")):
            href = item.get("assets", {}).get(key, {}).get("href", "")
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), str(href)))
            if target != f"{CHIPS}/{row[column]}":
                check.add(name, "STAC assets point at the chip's files", f"{key} -> {href!r}, not {row[column]}")
        overviews = item.get("properties", {}).get("label:overviews") or [{}]
        counts = {c.get("name"): c.get("count") for c in overviews[0].get("counts", [])}
        manifest_counts = {c.removeprefix("px_"): row[c] for c in row if c.startswith("px_")}
        if counts != manifest_counts:
            check.add(name, "STAC counts agree with the manifest", f"label:overviews {counts} != {manifest_counts}")
    for name in sorted(items):
        check.add(name, "one STAC item per chip", "an item for no chip of the manifest")


def _published(check: Verification, data: Mapping[str, Any], record: Path | None) -> None:
    """The release against the record `cropharmony publish push` kept of it (git-tracked, beside the releases)."""
    version = data.get("version") or check.release.name
    path = record if record is not None else check.release.parent / PUBLISHED / f"{version}.json"
    if not path.is_file():
        if record is not None:
            raise SourceError(record, "published record readable", "not found", "pass `releases/published/<v>.json`")
        return
    check.record = path
    try:
        published = json.loads(path.read_text(encoding="utf-8"))
        sums, tag = published["sums_sha256"], published.get("tag", "?")
    except (OSError, ValueError, KeyError, TypeError) as error:
        detail = f"{type(error).__name__}: {error}"
        raise SourceError(path, "published record readable", detail, "restore it from git") from error
    fix = f"restore the published files (`dvc pull`, or `dvc import ... --rev {tag}`)"
    if (check.release / SUMS).is_file() and sha256_file(check.release / SUMS) != sums:
        check.add(SUMS, "the release is the one published", f"its sha256 differs from {path} (tag {tag})", fix)
    if data and published.get("fingerprints") != data.get("fingerprints"):
        check.add(RELEASE, "the release is the one published", f"fingerprints differ from {path} (tag {tag})", fix)


def verify_release(release: Path, record: Path | None = None) -> Verification:
    """Check a release folder (rules: module docstring); `record` overrides the published record beside it."""
    check = Verification(release)
    if not release.is_dir():
        raise SourceError(release, "a release folder", "not a folder", "pass `releases/<version>` (holds SHA256SUMS)")
    listed = _sums(check)
    if listed is None:
        return check
    check.listed = set(listed)
    digests = _files(check, listed)
    manifest = _parquet(check, MANIFEST, digests)
    data = _release_json(check, digests, manifest)
    _croissant(check, digests)
    if manifest is not None:
        _stac(check, digests, manifest)
    _published(check, data, record)
    return check


def check_release(release: Path, record: Path | None = None) -> Verification:
    """`verify_release`, raising every problem at once (what `cropharmony publish verify` and `push` run)."""
    check = verify_release(release, record)
    if check.problems:
        raise ProblemsError(f"release {release} does not verify", check.problems)
    return check
