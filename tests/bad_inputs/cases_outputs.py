"""Bad inputs of the later commands: a tampered release, broken checkpoints, and corrupt artifacts in the app."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from tests.bad_inputs.harness import Case, detach, write_bytes, write_text

RELEASE = Path("releases") / "1.0.0"
VERIFY = ("curation.cli", "publish", "verify", str(RELEASE))
EVALUATE = ("training.evaluate", "--protocol", "all", "--backbone", "all", "--source", "cdl", "--size", "all")
RUN = Path("runs") / "all_all_cdl_all" / "id-ssl4eo-cdl-k4-s0"
REPRO = "uv run dvc repro --force --single-item"


def _sums(root: Path) -> Path:
    return root / RELEASE / "SHA256SUMS"


def _add_sum_line(line: str) -> object:
    def breaks(root: Path) -> None:
        write_text(_sums(root), _sums(root).read_text(encoding="utf-8") + line + "\n")

    return breaks


def _rewrite_chip_and_its_sum(root: Path) -> None:
    chip = sorted((root / RELEASE / "chips").rglob("*.tif"))[0]
    data = bytearray(chip.read_bytes())
    data[-1] ^= 0xFF
    write_bytes(chip, bytes(data))
    name = chip.relative_to(root / RELEASE).as_posix()
    lines = [
        f"{hashlib.sha256(data).hexdigest()}  {name}" if line.endswith(f"  {name}") else line
        for line in _sums(root).read_text(encoding="utf-8").splitlines()
    ]
    write_text(_sums(root), "\n".join(lines) + "\n")


def _unlisted_file(root: Path) -> None:
    write_text(root / RELEASE / "extra.csv", "a,b\n")


def _truncated_checkpoint(root: Path) -> None:
    path = root / RUN / "best.pt"
    write_bytes(path, path.read_bytes()[:1000])


def _missing_checkpoint(root: Path) -> None:
    (root / RUN / "best.pt").unlink()


def _other_model(root: Path) -> None:
    """The run's checkpoint with the weights of another model (one layer of another shape) in it."""
    path = root / RUN / "best.pt"
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint["state"]
    name = next(iter(state))
    checkpoint["state"] = {**state, name: torch.zeros(1, *state[name].shape[1:])}
    path.unlink()
    torch.save(checkpoint, path)


def _truncate(name: str) -> object:
    def breaks(root: Path) -> None:
        path = detach(root / name)
        data = path.read_bytes()
        write_bytes(path, data[: len(data) // 2])

    return breaks


def app(page: str, artifact: str, stage: str) -> Case:
    """A page opened on a project whose `artifact` is cut in half: it names the file and the stage to re-run."""
    return Case(
        f"app {page}: {artifact} cut in half",
        ("tests.bad_inputs.app_page", page),
        _truncate(artifact),
        "cannot be read",
        artifact,
        fix=f"{REPRO} {stage}",
    )


CASES = [
    Case(
        "verify: a ../ path in SHA256SUMS",
        VERIFY,
        _add_sum_line(f"{'0' * 64}  ../params.yaml"),
        "inside the release",
        "SHA256SUMS",
        extra=("../params.yaml",),
    ),
    Case(
        "verify: an absolute path in SHA256SUMS",
        VERIFY,
        _add_sum_line(f"{'0' * 64}  /etc/hostname"),
        "inside the release",
        "SHA256SUMS",
        extra=("/etc/hostname",),
    ),
    Case("verify: a chip and its sum line rewritten", VERIFY, _rewrite_chip_and_its_sum, "release.json", "chips/"),
    Case("verify: a file SHA256SUMS does not list", VERIFY, _unlisted_file, "listed", "extra.csv"),
    Case("evaluate: a truncated checkpoint", EVALUATE, _truncated_checkpoint, "readable checkpoint", "best.pt"),
    Case("evaluate: a missing checkpoint", EVALUATE, _missing_checkpoint, "readable checkpoint", "best.pt"),
    Case("evaluate: a checkpoint of another model", EVALUATE, _other_model, "checkpoint of this model", "best.pt"),
    app("overview", "data/chips/manifest.parquet", "chips"),
    app("balance", "reports/validation/label_histograms.parquet", "validate"),
    app("transfer", "metrics/transfer.parquet", "report"),
    app("validation", "reports/validation/failures.parquet", "validate"),
    app("legends", "reports/crosswalks.json", "crosswalks"),
]
