"""What the benchmark scripts share: their common options and where their numbers go (imported as `common`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from curation.core.io import atomic_write_json


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
