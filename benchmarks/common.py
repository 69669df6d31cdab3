"""What the benchmark scripts share: their common options and where their numbers go (imported as `common`)."""

from __future__ import annotations

import argparse
import resource
import subprocess
from pathlib import Path
from typing import Any

from curation.core.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
MACHINE_SPEED = ROOT.parent / "shared" / "tools" / "machine-speed"


def bench_parser(doc: str | None, repeats: str, seed: str) -> argparse.ArgumentParser:
    """A parser with `--repeats` (medians reported), `--seed` and `--json`; each script adds its own options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help=repeats)
    parser.add_argument("--seed", type=int, default=0, help=seed)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers to this JSON file")
    return parser


def write_result(path: Path | None, result: dict[str, Any]) -> dict[str, Any]:
    """Write the numbers as JSON when `--json` was given; returns them."""
    if path is not None:
        atomic_write_json(path, result)
    return result


def rss_mb() -> float:
    """This process's peak RSS so far (getrusage: it only grows)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_speed() -> str:
    """../shared/tools/machine-speed's line (empty when the tool is absent): written beside every absolute time."""
    if not MACHINE_SPEED.is_file():
        return ""
    done = subprocess.run([str(MACHINE_SPEED)], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
