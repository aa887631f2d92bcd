"""Commands that read run folders: runs list, runs show, compare, plot."""

from __future__ import annotations

from pathlib import Path

import click

from trainctl.cli import cli
from trainctl.status import STATUSES


@cli.group()
def runs() -> None:
    """Look at runs: list them, show one."""


@runs.command("list")
@click.option("--runs", "runs_dir", type=click.Path(path_type=Path), default=Path("runs"),
              show_default=True, help="A folder of runs (fit's --runs-dir), or a sweep folder.")
@click.option("--name", metavar="SUBSTR", help="Only runs whose name contains SUBSTR.")
@click.option("--status", type=click.Choice(STATUSES), multiple=True,
              help="Only runs with this status (repeatable: any of them).")
@click.option("--sort", metavar="METRIC",
              help="A history key (its best epoch, e.g. val_loss) or test_<name> "
                   "(metrics.json); best first (higher first for accuracy-like names), "
                   "runs without it last. Default: start time.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for machines.")
def runs_list(runs_dir: Path, name: str | None, status: tuple[str, ...], sort: str | None,
              as_json: bool) -> None:
    """One row per run: id, name, status, epochs, best monitored value, test metrics,
    duration."""
    from trainctl.runs.listing import list_runs

    listing = list_runs(runs_dir, name=name, status=status or None, sort=sort,
                        as_json=as_json)
    for note in listing.notes:
        click.echo(note, err=True)
    if listing.text or as_json:
        click.echo(listing.text)


@runs.command("show")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="JSON, for machines.")
def runs_show(run_dir: Path, as_json: bool) -> None:
    """Status, seed, command, final and best metrics, test metrics, config and files of a run."""
    from trainctl.runs.show import show_data, show_run

    if as_json:
        import json

        click.echo(json.dumps(show_data(run_dir), indent=2))
    else:
        click.echo(show_run(run_dir))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="JSON, for machines.")
def compare(run_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Runs side by side: the config keys that differ, final and best metrics, test metrics."""
    from trainctl.runs.show import compare_data, compare_runs

    if as_json:
        import json

        click.echo(json.dumps(compare_data(list(run_dirs)), indent=2))
    else:
        click.echo(compare_runs(list(run_dirs)))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--metric", metavar="NAME",
              help="One metric (its train and val_ curves); default: every metric.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("curves.png"), show_default=True,
              help="The file to write: .png, .pdf or .svg.")
def plot(run_dirs: tuple[Path, ...], metric: str | None, output: Path) -> None:
    """Learning curves of one or more runs (overlaid) as a PNG (or PDF, SVG)."""
    from trainctl.plot import plot_runs, save_figure

    skipped: list[str] = []
    figure = plot_runs(list(run_dirs), metric=metric, skipped=skipped)
    save_figure(figure, output)
    for line in skipped:
        click.echo(f"note: {line}", err=True)
    click.echo(str(output))
