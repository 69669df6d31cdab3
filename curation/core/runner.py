"""The one entry point of every stage: arguments, declared params, and errors as messages, not tracebacks."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from curation.core.errors import CropharmonyError, os_error, report_and_exit
from curation.core.layout import check_layout
from curation.core.params import DEFAULT_PARAMS, read_params, reading_for
from curation.core.stages import BY_NAME

Entry = tuple[str, str, str, str | int]
"""A `train.matrix` entry: protocol, backbone, source, size (`all` or a value per axis)."""

MATRIX_OPTIONS = (
    ("--protocol", "a protocol of train.protocols, or all"),
    ("--backbone", "a backbone of the registry (training/backbones.py: ssl4eo, satlas, imagenet, dino, ...), or all"),
    ("--source", "a source of shared.sources, or all"),
    ("--size", "k target chips (0 for protocols without), or all"),
)


def matrix_entry(args: argparse.Namespace) -> Entry:
    """The matrix entry of a parsed command line."""
    size: str | int = args.size if args.size == "all" else int(args.size)
    return (args.protocol, args.backbone, args.source, size)


def output_option(parser: argparse.ArgumentParser) -> None:
    """`--out`: write a matrix entry somewhere else than `<out>/<entry>` (a one-off run)."""
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <out>/<entry>)")


def run_stage(
    name: str,
    body: Callable[[argparse.Namespace], str | None],
    argv: list[str] | None = None,
    options: Callable[[argparse.ArgumentParser], object] | None = None,
) -> None:
    """Parse `--params` (and a matrix entry, and the stage's own options), run `body`, print what it returns.

    Outputs that would overlap inputs or each other stop the stage before it starts (`curation.core.layout`).
    `body` runs with the stage's params declaration in force (a read it does not declare is an error), and a
    toolkit error, or a full disk or a folder it may not write, ends the process with its message and status 1.
    """
    stage = BY_NAME[name]
    parser = argparse.ArgumentParser(
        prog=f"python -m {stage.module}",
        description=stage.summary,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params.yaml to read")
    if stage.matrix:
        for flag, text in MATRIX_OPTIONS:
            parser.add_argument(flag, default="all", help=text)
    if options is not None:
        options(parser)
    args = parser.parse_args(argv)
    try:
        check_layout(read_params(args.params), args.params, inputs=stage.reads("shared", "raw_root"))
        with reading_for(name):
            message = body(args)
    except CropharmonyError as error:
        report_and_exit(error)
    except OSError as error:
        known = os_error(error)
        if known is None:
            raise
        report_and_exit(known)
    if message:
        print(message)
