"""The `cropharmony` command line: one sub-app per concern, each command a thin call into the stages."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from app import launch
from curation.crosswalks import check_sets, differences
from curation.errors import CropharmonyError, report_and_exit
from curation.params import (
    DEFAULT_PARAMS,
    CrosswalksParams,
    DemoParams,
    PublishParams,
    SharedParams,
    check_all,
    load_section,
)

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
def sources() -> None:
    """List the registered label sources with provenance and the raw layout each expects."""
    from curation.sources import registry_rows  # deferred: readers pull in rasterio and pyogrio

    table = Table(title="label sources")
    for column in ("source", "region", "continent", "years", "licence", "crosswalk", "layout"):
        table.add_column(column, overflow="fold")
    for row in registry_rows():
        table.add_row(*(row[c] for c in ("source", "region", "continent", "years", "licence", "crosswalk", "layout")))
    console.print(table)


@app.command("demo")
def demo(
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder to write the demo world to [params demo.out].")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed [params demo.seed].")] = None,
    chip_px: Annotated[int | None, typer.Option("--chip-px", help="Chip side in pixels [params demo.chip_px].")] = None,
    chips_per_source: Annotated[
        int | None, typer.Option("--chips-per-source", help="Chips per source [params demo.chips_per_source].")
    ] = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Write the synthetic demo world: all six sources in their native layouts plus Sentinel-2 chips."""
    from curation.demo import build  # deferred: the demo pulls in geopandas and the readers

    try:
        config = load_section(DemoParams, params)
        overrides = {"seed": seed, "chip_px": chip_px, "chips_per_source": chips_per_source}
        config = DemoParams.model_validate(config.model_dump() | {k: v for k, v in overrides.items() if v is not None})
        target = out or config.out
        manifest = build(config, load_section(SharedParams, params).legends_dir, target)
    except (CropharmonyError, ValidationError) as error:
        report_and_exit(error if isinstance(error, CropharmonyError) else CropharmonyError(str(error)))
    sources = manifest["sources"]
    assert isinstance(sources, dict)
    console.print(
        f"[green]ok[/green]: demo world (seed {config.seed}, synthetic) written to {target}: "
        + ", ".join(f"{name} {info['chips']}" for name, info in sources.items())
    )


@app.command("validate")
def validate(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage validate: check every source's label product and image chips (reports in params validate.out)."""
    from curation import validate as stage

    stage.main(["--params", str(params)])


@app.command("chips")
def chips(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage chips: cut a harmonized label chip on every image chip's grid and write the manifest."""
    from curation import chips as stage

    stage.main(["--params", str(params)])


@app.command("subsets")
def subsets(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage subsets: size-normalized, stratified, spatially blocked train and test sets per source."""
    from curation import subsets as stage

    stage.main(["--params", str(params)])


ProtocolOption = Annotated[str, typer.Option(help="a protocol of train.protocols, or all")]
BackboneOption = Annotated[str, typer.Option(help="ssl4eo, satlas, imagenet, or all")]
SourceOption = Annotated[str, typer.Option(help="the target source, or all")]
SizeOption = Annotated[str, typer.Option(help="k target chips (0: protocols without), or all")]


def _entry(protocol: str, backbone: str, source: str, size: str, params: Path) -> list[str]:
    return ["--protocol", protocol, "--backbone", backbone, "--source", source, "--size", size, "--params", str(params)]


@app.command("train")
def train(
    protocol: ProtocolOption = "all",
    backbone: BackboneOption = "all",
    source: SourceOption = "all",
    size: SizeOption = "all",
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Stage train: fine-tune backbones under the protocols for one matrix entry (runs/<entry>/)."""
    from training import train as stage

    stage.main(_entry(protocol, backbone, source, size, params))


@app.command("evaluate")
def evaluate(
    protocol: ProtocolOption = "all",
    backbone: BackboneOption = "all",
    source: SourceOption = "all",
    size: SizeOption = "all",
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Stage evaluate: every model of one matrix entry on every source's test set (evals/<entry>/)."""
    from training import evaluate as stage

    stage.main(_entry(protocol, backbone, source, size, params))


@app.command("report")
def report(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage report: the tidy transfer table (metrics/transfer.parquet), DVC metrics and plots."""
    from training import report as stage

    stage.main(["--params", str(params)])


@app.command("app")
def review_app(
    root: Annotated[Path, typer.Option("--root", help="Project whose artifacts to show.")] = Path(),
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8501,
    address: Annotated[
        str, typer.Option("--address", help="Address to listen on (localhost: this machine only).")
    ] = "localhost",
    headless: Annotated[
        bool,
        typer.Option(
            "--headless/--browser", help="Print the URL, or open a browser tab (Streamlit may ask for an e-mail once)."
        ),
    ] = True,
) -> None:
    """Open the review app over the project's artifacts (Streamlit; Ctrl+C stops it)."""
    raise typer.Exit(subprocess.call(launch.command(root, port, address, headless=headless)))


@publish_app.command("build")
def publish_build(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Write publish.out/<version>/ (the `publish` stage; `dvc repro publish` runs it)."""
    from curation import publish as stage

    stage.main(["--params", str(params)])


@publish_app.command("push")
def publish_push(
    remote: Annotated[str | None, typer.Option("--remote", help="DVC remote to push to [the default remote].")] = None,
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Push the built release to the DVC remote, record it as published and tag it (dvc.lock must be committed)."""
    from curation.publish import push

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
) -> None:
    """Check every file of a release against its SHA256SUMS."""
    from curation.publish import verify_sums

    problems = verify_sums(release)
    for problem in problems:
        console.print(f"[red]{problem}[/red]")
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: every file of {release} matches SHA256SUMS")


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
