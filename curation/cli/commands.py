"""The `cropharmony` command line: one command per stage, from the stage table, plus legends, params and the app."""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from curation.cli import launch_app
from curation.core.errors import CropharmonyError, report_and_exit
from curation.core.legends import check_sets, differences, load_set
from curation.core.params import DEFAULT_PARAMS, check_all, load_section
from curation.core.registry import registry_rows
from curation.core.shared import SharedParams
from curation.core.stages import STAGES, Stage
from curation.crosswalks.config import CrosswalksParams
from curation.publish.config import PublishParams

app = typer.Typer(help="cropharmony: harmonized cross-continent crop-type benchmark.", no_args_is_help=True)
legends_app = typer.Typer(help="Crosswalks from national crop legends to the harmonized classes.", no_args_is_help=True)
params_app = typer.Typer(help="The typed params.yaml.", no_args_is_help=True)
app.add_typer(legends_app, name="legends")
app.add_typer(params_app, name="params")
publish_app = typer.Typer(help="Versioned releases of the harmonized dataset.", no_args_is_help=True)
app.add_typer(publish_app, name="publish")

console = Console()

ParamsOption = Annotated[Path, typer.Option("--params", help="params.yaml to read.")]
LegendsDirOption = Annotated[
    Path | None, typer.Option("--legends-dir", help="Folder of target.csv, sources.csv and the sets [params].")
]


def _legends_dir(params: Path, legends_dir: Path | None) -> Path:
    return legends_dir if legends_dir is not None else load_section(SharedParams, params).legends_dir


@legends_app.command("check")
def legends_check(
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Crosswalk set to check; repeat for several [params sets].")
    ] = None,
    legends_dir: LegendsDirOption = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Validate crosswalk sets: every problem in every file is listed at once."""
    try:
        folder = _legends_dir(params, legends_dir)
        names = sets or list(load_section(CrosswalksParams, params).sets)
        checked = check_sets(folder, names)
    except CropharmonyError as error:
        report_and_exit(error)
    for name, crosswalk_set in checked.items():
        taxonomy = crosswalk_set.taxonomy
        table = Table(title=f"crosswalk set '{name}' ({crosswalk_set.directory})")
        table.add_column("source")
        table.add_column("match")
        table.add_column("codes", justify="right")
        for class_name in taxonomy.names:
            table.add_column(class_name, justify="right")
        for source, crosswalk in crosswalk_set.crosswalks.items():
            per_class = [int((crosswalk.targets == taxonomy.id_of(c)).sum()) for c in taxonomy.names]
            table.add_row(source, crosswalk.match, str(len(crosswalk.codes)), *map(str, per_class))
        console.print(table)
    console.print(f"[green]ok[/green]: {', '.join(checked)} valid")


@legends_app.command("diff")
def legends_diff(
    first: Annotated[str, typer.Argument(help="Set to compare.")] = "toolkit",
    second: Annotated[str, typer.Argument(help="Set to compare it with.")] = "paper",
    legends_dir: LegendsDirOption = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """List the native codes whose harmonized class differs between two sets."""
    try:
        folder = _legends_dir(params, legends_dir)
        sets = check_sets(folder, [first, second])
    except CropharmonyError as error:
        report_and_exit(error)
    rows = differences(sets[first], sets[second])
    table = Table(title=f"{first} vs {second}: {len(rows)} codes differ")
    for column in ("source", "code", "name", first, second):
        table.add_column(column)
    for row in rows:
        table.add_row(row["source"], str(row["code"]), row["name"], row[first], row[second])
    console.print(table)


@app.command("sources")
def sources(legends_dir: LegendsDirOption = None, params: ParamsOption = DEFAULT_PARAMS) -> None:
    """List the registered label sources with provenance, crosswalk file and the raw layout each expects."""
    try:
        shared = load_section(SharedParams, params)
        legends = load_set(legends_dir or shared.legends_dir, shared.crosswalk_set).legends
    except CropharmonyError as error:
        report_and_exit(error)
    columns = ("source", "region", "continent", "years", "licence", "crosswalk", "layout")
    table = Table(title=f"label sources (crosswalks of set '{shared.crosswalk_set}')")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in registry_rows():
        legend = legends.get(row["source"])
        row["crosswalk"] = legend.crosswalk if legend is not None else "(none in this set)"
        table.add_row(*(row[c] for c in columns))
    console.print(table)


STAGE_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}


def _stage_command(stage: Stage) -> Callable[..., None]:
    """A command that hands its arguments to the stage's own entry point (`python -m <module>` has the same)."""

    def command(ctx: typer.Context, params: ParamsOption = DEFAULT_PARAMS) -> None:
        module = importlib.import_module(stage.entry)  # deferred: stages pull in their readers or torch
        module.main(["--params", str(params), *ctx.args])

    entry = " One matrix entry: --protocol, --backbone, --source, --size (default all)." if stage.matrix else ""
    command.__doc__ = (
        f"{stage.summary.rstrip('.')} (stage `{stage.name}`).{entry} Options: `python -m {stage.module} --help`."
    )
    return command


for _stage in STAGES:
    group, _, name = _stage.command.rpartition(" ")
    target = {"": app, "publish": publish_app}[group]
    target.command(name, context_settings=STAGE_CONTEXT)(_stage_command(_stage))


@app.command("app")
def review_app(
    root: Annotated[Path, typer.Option("--root", help="Project whose artifacts to show.")] = Path(),
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option("--address", help="Address to listen on (127.0.0.1: this machine only).")
    ] = launch_app.LOCALHOST,
    headless: Annotated[
        bool,
        typer.Option(
            "--headless/--browser", help="Print the URL, or open a browser tab (Streamlit may ask for an e-mail once)."
        ),
    ] = True,
) -> None:
    """Open the review app over the project's artifacts (Streamlit; Ctrl+C stops it)."""
    raise typer.Exit(subprocess.call(launch_app.command(root, port, address, headless=headless)))


@app.command("matrix")
def matrix(
    gpus: Annotated[
        str | None,
        typer.Option("--gpus", help="CUDA_VISIBLE_DEVICES of each queue worker, comma-separated [every GPU]."),
    ] = None,
) -> None:
    """Train and evaluate every matrix entry through DVC's experiment queue, one GPU per worker (docs/gpu-matrix.md)."""
    from training.fanout import main  # the training stack only for this command

    main([] if gpus is None else ["--gpus", gpus])


@publish_app.command("push")
def publish_push(
    remote: Annotated[str | None, typer.Option("--remote", help="DVC remote to push to [the default remote].")] = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Push the built release to the DVC remote, record it as published and tag it (dvc.lock must be committed)."""
    from curation.publish.stage import push

    try:
        settings = load_section(PublishParams, params)
        tag = push(settings, remote)
    except CropharmonyError as error:
        report_and_exit(error)
    console.print(f"[green]published[/green] {settings.out / settings.version} as tag {tag}")
    console.print(
        f"share it: git push origin {tag}; others: dvc import <repo url> {settings.out}/{settings.version} --rev {tag}"
    )


@publish_app.command("verify")
def publish_verify(
    release: Annotated[Path, typer.Argument(help="A release folder (holds SHA256SUMS).")],
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Published record to compare with [<release>/../published/<version>.json]."),
    ] = None,
) -> None:
    """Check a release: files inside it only, all listed in SHA256SUMS, agreeing with release.json and metadata."""
    from curation.publish.verify import check_release

    try:
        check = check_release(release, record)
    except CropharmonyError as error:
        report_and_exit(error)
    where = f"it is the release published in {check.record}" if check.record is not None else None
    console.print(
        f"[green]ok[/green]: {check.files} files of {release} match SHA256SUMS, release.json and the metadata",
        soft_wrap=True,  # paths stay whole, to copy
    )
    console.print(
        where
        or "[yellow]note[/yellow]: no published record beside it (published/<version>.json, or --record): its "
        "records agree with each other, which a wholesale rewrite would keep too",
        soft_wrap=True,
    )


@params_app.command("check")
def params_check(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Validate every section of params.yaml; unknown keys name the closest valid one."""
    try:
        sections = check_all(params)
    except CropharmonyError as error:
        report_and_exit(error)
    console.print(f"[green]ok[/green]: {params} ({', '.join(sections)})")


if __name__ == "__main__":
    app()
