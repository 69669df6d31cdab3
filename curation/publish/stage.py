"""Stage `publish`: a versioned release of the harmonized dataset in `publish.out/<version>/` (layout: publish/info.py).

The release is assembled in a temporary folder: the chosen subsets' chips and labels, the manifest, the subset lists
(ours and the study's CSVs), the crosswalk set used, the validation reports, class counts, the data card, Croissant
and STAC metadata, release.json (fingerprints, and the sha256 of every other file: `cropharmony publish verify`
cross-checks both records, curation/publish/verify.py), then SHA256SUMS over every file. Before it is renamed into
place, its version is checked against the published ones (`<out>/published/<version>.json`, written by
`cropharmony publish push`): a published version is never overwritten with different content, and a new version must
raise the level its changes require (publish/version.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl

from curation.core.artifacts import SUBSET_LISTS, Artifacts
from curation.core.errors import Problem, ProblemsError
from curation.core.io import (
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    demo_marker,
    place_file,
    sha256_file,
    stage_output,
)
from curation.core.legends import SOURCES_TABLE, TARGET, load_set
from curation.core.outputs import files_under
from curation.core.params import load_section
from curation.core.registry import source_info
from curation.core.runner import run_stage
from curation.core.schemas import class_column
from curation.core.shared import SharedParams
from curation.core.vrt import VRT_SUFFIX, write_stack_of
from curation.publish.card import write_card
from curation.publish.config import PublishParams
from curation.publish.info import (
    CHIPS,
    CLASS_COUNTS,
    CROSSWALKS,
    CROSSWALKS_REPORT,
    LISTS,
    MANIFEST,
    PUBLISHED,
    RELEASE,
    SUBSETS,
    SUMS,
    VALIDATION,
    ReleaseInfo,
)
from curation.publish.metadata import write_croissant, write_stac
from curation.publish.verify import check_release, excluded, memberships, record_files
from curation.publish.version import LEVELS, bump_of, next_version, parse, required_bump, sha256_files

__all__ = ["PUBLISHED", "build", "check_version", "main", "published_versions", "push", "seal", "write_sums"]


def _chosen(subsets: pl.DataFrame, params: PublishParams, file: str) -> pl.DataFrame:
    """The subset rows to release: the training sets of `publish.train_sizes` and every blocked test set.

    The random, unblocked test set (split `test_random`) is never released: it exists to measure a random split's
    bias on our own runs, and a release keeps the benchmark's sets as they were (train and blocked test only).
    """
    available = sorted(subsets.filter(pl.col("split") == "train")["size"].unique().to_list())
    missing = [k for k in params.train_sizes if k not in available]
    if missing:
        raise ProblemsError(
            "cannot publish",
            [
                Problem(
                    file,
                    "released sizes exist",
                    f"publish.train_sizes {missing} are not among the subsets' training sizes {available}",
                    "list sizes from subsets.train_sizes, or add them there and re-run `dvc repro subsets`",
                )
            ],
        )
    keep = (pl.col("split") == "test") | ((pl.col("split") == "train") & pl.col("size").is_in(list(params.train_sizes)))
    return subsets.filter(keep).sort("source", "split", "size", "chip_id")


def _class_counts(manifest: pl.DataFrame, chosen: pl.DataFrame, classes: tuple[str, ...]) -> pl.DataFrame:
    """Pixels of each class, and chips holding any of it, per source and released subset."""
    rows = chosen.join(manifest, on=["source", "chip_id"], how="inner")
    frames = [
        rows.group_by("source", "split", "size").agg(
            pl.lit(name).alias("class"),
            pl.col(class_column(name)).sum().cast(pl.Int64).alias("pixels"),
            (pl.col(class_column(name)) > 0).sum().cast(pl.Int64).alias("chips"),
        )
        for name in classes
    ]
    order = {name: i for i, name in enumerate(classes)}
    return (
        pl.concat(frames)
        .with_columns(rank=pl.col("class").replace_strict(order, return_dtype=pl.Int64))
        .sort("source", "split", "size", "rank")
        .drop("rank")
    )


def _fingerprints(release: Path, manifest: pl.DataFrame, chosen: pl.DataFrame) -> dict[str, Any]:
    """What the version rules compare: crosswalk files, each chip's content, each chip's subset memberships."""
    chips = {
        f"{row['source']}/{row['chip_id']}": sha256_file(release / CHIPS / row["image_path"])
        + sha256_file(release / CHIPS / row["label_path"])
        for row in manifest.sort("source", "chip_id").iter_rows(named=True)
    }
    return {
        "crosswalks": sha256_files(list((release / CROSSWALKS).glob("*.csv")), release / CROSSWALKS),
        "chips": chips,
        "subsets": memberships(chosen),
    }


def _summed(release: Path) -> list[str]:
    """The files SHA256SUMS lists: every file but itself and the stage markers (written after it, in no record)."""
    return [name for name in files_under(release) if not excluded(name) and (release / name).is_file()]


def write_sums(release: Path) -> str:
    """SHA256SUMS over every other file of the release (sha256sum -c format); returns the digest of SHA256SUMS."""
    lines = [f"{sha256_file(release / name)}  {name}\n" for name in _summed(release)]
    atomic_write_text(release / SUMS, "".join(lines))
    return sha256_file(release / SUMS)


def published_versions(out: Path) -> dict[str, dict[str, Any]]:
    """Records of pushed versions (git-tracked JSON beside the releases), by version."""
    folder = out / PUBLISHED
    records = (json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json")))
    return {record["version"]: record for record in records}


def check_version(
    params: PublishParams, published: dict[str, dict[str, Any]], fingerprints: dict[str, Any], sums: str, file: str
) -> str:
    """Refuse to overwrite a published version or to under-bump; returns what this version is (for the log)."""
    version = params.version
    if version in published:
        if published[version]["sums_sha256"] == sums:
            return f"{version}: identical to the published release"
        raise ProblemsError(
            f"release {version} is published and this one differs",
            [
                Problem(
                    file,
                    "published versions are immutable",
                    f"{version} was pushed (tag {published[version]['tag']}) with other content",
                    "raise publish.version (and add its changelog entry)",
                )
            ],
        )
    if not published:
        return f"{version}: first published version"
    latest = max(published, key=parse)
    change = required_bump(published[latest]["fingerprints"], fingerprints)
    actual = bump_of(latest, version)
    if actual is None or LEVELS[actual] < LEVELS[change.bump]:
        wanted = next_version(latest, change.bump)
        detail = f"{version} after published {latest}, but {'; '.join(change.reasons)}: a {change.bump} version"
        raise ProblemsError(
            f"release {version} is not a valid next version",
            [Problem(file, "semantic versioning", detail, f"set publish.version to {wanted} or above")],
        )
    return f"{version}: a {actual} version after {latest} ({'; '.join(change.reasons)})"


def release_info(shared: SharedParams, params: PublishParams, raw_root: Path, crosswalks_report: Path) -> ReleaseInfo:
    """Identity, provenance and taxonomy of the release (what its files do not say)."""
    crosswalk_set = load_set(shared.legends_dir, shared.crosswalk_set)
    taxonomy = crosswalk_set.taxonomy
    report = json.loads(crosswalks_report.read_text(encoding="utf-8")) if crosswalks_report.is_file() else {}
    differences = [row for rows in report.get("differences", {}).values() for row in rows]
    decisions = [
        {"source": s, "code": int(code), "name": name, "target": taxonomy.names[taxonomy.ids.index(int(t))], "note": n}
        for s, cw in crosswalk_set.crosswalks.items()
        for code, name, t, n in zip(cw.codes, cw.names, cw.targets, cw.notes or [""] * len(cw.codes), strict=True)
        if n.startswith("decision")
    ]
    return ReleaseInfo(
        version=params.version,
        title=params.title,
        description=params.description,
        date=params.date,
        licence=params.licence,
        url=params.url,
        changelog=tuple(sorted(params.changelog.items(), key=lambda item: parse(item[0]), reverse=True)),
        crosswalk_set=shared.crosswalk_set,
        class_ids=taxonomy.ids,
        class_names=taxonomy.names,
        class_colors=taxonomy.colors,
        sources=tuple(source_info(name) for name in shared.sources),
        differences=tuple(differences),
        decisions=tuple(decisions),
        synthetic=demo_marker(raw_root),
        bands=shared.bands,
        chip_px=shared.chip_px,
        resolution_m=shared.resolution_m,
        path=(params.out / params.version).as_posix(),
        tag=f"{params.tag_prefix}{params.version}",
    )


def released_list(name: str, train_sizes: tuple[int, ...]) -> bool:
    """Whether a subsets list goes into the release: the blocked test set's and those of `publish.train_sizes`.

    Lists are named as the study named them (`curation.subsets.study_lists.set_name`):
    `sentinel2_<source>_subsampled_<set>.csv` with set `test`, `test_random` (never released), `100_train` for 100
    chips and the bare size otherwise.
    """
    set_part = Path(name).stem.rsplit("_subsampled_", 1)[-1]
    return set_part == "test" or set_part.removesuffix("_train") in {str(k) for k in train_sizes}


def assemble(
    release: Path, shared: SharedParams, artifacts: Artifacts, params: PublishParams
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Copy the release's data files into `release`; returns the chosen subset rows and the released manifest."""
    table = artifacts.subsets_table.path
    chosen = _chosen(pl.read_parquet(table), params, str(table))
    chips_root = artifacts.chips.path
    manifest = (
        pl.read_parquet(artifacts.manifest.path)
        .join(chosen.select("source", "chip_id").unique(), on=["source", "chip_id"], how="semi")
        .sort("source", "chip_id")
    )
    for row in manifest.iter_rows(named=True):
        for column in ("image_path", "label_path"):
            relative = released_path(row[column])
            if relative != row[column]:  # a chip product's VRT over its band files: released as a GeoTIFF stack
                write_stack_of(chips_root / row[column], release / CHIPS / relative)
            else:
                place_file(chips_root / row[column], release / CHIPS / relative, params.files)
    manifest = manifest.with_columns(pl.col("image_path").str.replace(r"\.vrt$", ".tif"))  # as released_path
    atomic_write_parquet(release / MANIFEST, manifest)
    atomic_write_parquet(release / SUBSETS, chosen)
    for listing in sorted((artifacts.subsets.path / SUBSET_LISTS).glob("*.csv")):
        if released_list(listing.name, params.train_sizes):
            place_file(listing, release / LISTS / listing.name, "copy")
    crosswalks = load_set(shared.legends_dir, shared.crosswalk_set)
    legends = crosswalks.directory
    files = [crosswalks.legends[s].crosswalk for s in shared.sources]
    names = list(dict.fromkeys([TARGET, SOURCES_TABLE, *files]))
    for name in names:
        source = legends / name if (legends / name).is_file() else shared.legends_dir / name
        place_file(source, release / CROSSWALKS / name, "copy")
    crosswalks_report = artifacts.crosswalks_report.path
    if crosswalks_report.is_file():
        place_file(crosswalks_report, release / CROSSWALKS_REPORT, "copy")
    for report in sorted(artifacts.validation.path.glob("*")):
        if report.is_file():
            place_file(report, release / VALIDATION / report.name, "copy")
    counts = _class_counts(manifest, chosen, crosswalks.taxonomy.names)
    (release / CLASS_COUNTS).write_text(counts.write_csv(), encoding="utf-8")
    return chosen, manifest


def released_path(path: str) -> str:
    """Where a chip file goes in the release: as in the chips output, a VRT as the GeoTIFF it reads as."""
    return path[: -len(VRT_SUFFIX)] + ".tif" if path.endswith(VRT_SUFFIX) else path


def seal(
    release: Path, manifest: pl.DataFrame, chosen: pl.DataFrame, head: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """Write release.json, then SHA256SUMS, once data, card and metadata are in `release`.

    release.json holds `head`, the counts, the fingerprints and every other file's sha256: a second record
    `cropharmony publish verify` checks the files against. Returns the fingerprints and the digest of SHA256SUMS.
    """
    fingerprints = _fingerprints(release, manifest, chosen)
    counts = {"chips": manifest.height, "sources": manifest["source"].n_unique(), "subset_rows": chosen.height}
    others = [name for name in _summed(release) if not name.startswith(f"{CHIPS}/")]  # chips: in the fingerprints
    files = record_files({name: sha256_file(release / name) for name in others})
    atomic_write_json(release / RELEASE, head | {"counts": counts, "fingerprints": fingerprints, "files": files})
    return fingerprints, write_sums(release)


def build(shared: SharedParams, artifacts: Artifacts, params: PublishParams, params_file: str) -> str:
    """Write `<out>/<version>/` atomically; returns a one-line description of the version."""
    with stage_output(params.out / params.version) as tmp:
        chosen, manifest = assemble(tmp, shared, artifacts, params)
        info = release_info(shared, params, artifacts.raw_root, artifacts.crosswalks_report.path)
        write_card(tmp, info)
        write_croissant(tmp, info)
        write_stac(tmp, info)
        head = {"version": params.version, "date": params.date, "crosswalk_set": shared.crosswalk_set}
        fingerprints, sums = seal(tmp, manifest, chosen, head)
        verdict = check_version(params, published_versions(params.out), fingerprints, sums, params_file)
    return verdict


def _run(args: list[str], what: str, fix: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise ProblemsError(f"cannot {what}", [Problem(" ".join(args[:4]), what, detail[0], fix)])
    return done.stdout


def push(params: PublishParams, remote: str | None = None) -> str:
    """Push a built release to the DVC remote, record it as published and tag it; returns the tag.

    Run from the project root after `dvc repro publish` with dvc.lock committed: the tag then names a commit whose
    dvc.lock points at exactly these files, which is what `dvc import --rev <tag>` resolves.
    """
    release, tag = params.out / params.version, f"{params.tag_prefix}{params.version}"
    check_release(release)  # every file as built, confined to the folder, every record agreeing
    dirty = _run(["git", "status", "--porcelain", "--", "dvc.lock", "params.yaml"], "read git status", "init git")
    if dirty.strip():
        raise ProblemsError(
            f"cannot push {release}",
            [Problem("dvc.lock", "committed", dirty.strip(), "git add dvc.lock params.yaml && git commit")],
        )
    command = [sys.executable, "-m", "dvc", "push", "publish", *(["--remote", remote] if remote else [])]
    _run(command, "dvc push", "configure a remote: `dvc remote add -d NAME URL` (S3, GCS, SSH need dvc-s3 ...)")
    record = params.out / PUBLISHED / f"{params.version}.json"
    if not record.is_file():
        fingerprints = json.loads((release / RELEASE).read_text(encoding="utf-8"))["fingerprints"]
        sums = sha256_file(release / SUMS)
        atomic_write_json(
            record,
            {
                "version": params.version,
                "tag": tag,
                "date": params.date,
                "sums_sha256": sums,
                "fingerprints": fingerprints,
            },
        )
        _run(["git", "add", "-f", str(record)], "git add", "check the repository")
        _run(
            ["git", "commit", "-q", "-m", f"Publish release {params.version}"], "git commit", "set git user.name/email"
        )
    if not _run(["git", "tag", "--list", tag], "git tag", "check the repository").strip():
        _run(["git", "tag", "-a", tag, "-m", f"cropharmony release {params.version}"], "git tag", "check the tag name")
    return tag


def _stage(args: argparse.Namespace) -> str:
    shared = load_section(SharedParams, args.params)
    params = load_section(PublishParams, args.params)
    verdict = build(shared, Artifacts.load(args.params), params, str(args.params))
    return f"publish: {params.out / params.version} ({verdict})"


def main(argv: list[str] | None = None) -> None:
    """DVC stage entry point: write `publish.out/<publish.version>/`."""
    run_stage("publish", _stage, argv)


if __name__ == "__main__":
    main()
