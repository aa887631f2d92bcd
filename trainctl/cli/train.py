"""Commands that train: fit, resume, launch (several workers), reproduce, sweep."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trainctl.cli import SET_HELP, cli
from trainctl.errors import ExitCode


def training_options(command):
    """CONFIG and the options of ``fit``, which ``launch`` takes too."""
    options = [
        click.argument("config", type=click.Path(dir_okay=False, path_type=Path)),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP),
        click.option("--smoke", is_flag=True,
                     help="1 epoch of 2 steps, 2 validation and test steps."),
        click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("runs"), show_default=True, help="Where run folders go."),
        click.option("--name", help="Run name (default: the config's name: or file stem)."),
        click.option("--exact-name", is_flag=True,
                     help="The run folder is named --name exactly (no time stamp and id); "
                          "it must not exist yet."),
        click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@training_options
def fit(config: Path, overrides: tuple[str, ...], smoke: bool, runs_dir: Path,
        name: str | None, exact_name: bool, verbose: bool) -> None:
    """Train CONFIG; the last line printed is the run folder."""
    from trainctl.run.timing import add_startup, import_shared, phase, reset

    reset()
    add_startup()
    import_shared()  # numpy and what else a Keras script imports too: not trainctl's own
    with phase("startup"):
        from trainctl.config import load_config
        from trainctl.config.schema import check_run_name
        from trainctl.errors import UsageError
        from trainctl.run.fit import fit as run_fit

    if name is not None:
        try:
            check_run_name(name)
        except ValueError as exc:
            raise UsageError(f"--name: {exc}") from None
    elif exact_name:
        raise UsageError("--exact-name needs --name (the folder's whole name)")
    with phase("config"):
        cfg = load_config(config, overrides)
    run = run_fit(cfg, runs_dir=runs_dir, name=name, smoke=smoke, verbose=verbose,
                  exact_name=exact_name)
    click.echo(str(run.path))


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Change the run's config: only raising fit.epochs needs no --force.")
@click.option("--force", is_flag=True,
              help="Resume even though the config or a plug-in module changed.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
@click.option("--workers", type=click.IntRange(min=1), metavar="N",
              help="Continue a multi_worker run on N local workers (any N).")
def resume(run_dir: Path, overrides: tuple[str, ...], force: bool, verbose: bool,
           workers: int | None) -> None:
    """Continue an interrupted or crashed run in its own folder, at its last finished epoch."""
    if (run_dir / "sweep.json").is_file():  # a sweep folder: its unfinished trials go on
        from trainctl.errors import UsageError
        from trainctl.sweep.runner import resume_sweep

        if overrides or force or workers is not None:
            raise UsageError(f"{run_dir} is a sweep folder: a sweep resumes as it was "
                             "started, without --set, --force or --workers\n  hint: resume one "
                             "of its trial folders to change that trial")
        click.echo(str(resume_sweep(run_dir, verbose=verbose)))
        return
    if workers is not None:
        from trainctl.run.launch import check_multi_worker_run, launch

        check_multi_worker_run(run_dir)
        sys.exit(launch(workers, ["resume", str(run_dir), *_repeat("--set", overrides),
                                  *(["--force"] if force else []),
                                  *(["--verbose"] if verbose else [])]))
    from trainctl.run.resume import resume as run_resume

    run = run_resume(run_dir, overrides=overrides, force=force, verbose=verbose)
    click.echo(str(run.path))


@cli.command()
@click.option("--workers", type=click.IntRange(min=1), metavar="N", required=True,
              help="How many local worker processes.")
@training_options
def launch(config: Path, workers: int, overrides: tuple[str, ...], smoke: bool, runs_dir: Path,
           name: str | None, exact_name: bool, verbose: bool) -> None:
    """Train CONFIG on N local workers under tf.distribute (strategy multi_worker).

    Each worker's output lines are prefixed with its index ([0] is the chief, which
    alone writes the run folder); the exit code is the chief's; the last line printed
    is the run folder.
    """
    from trainctl.config import load_config
    from trainctl.run.launch import FORCE, launch as run_launch

    overrides = (*overrides, FORCE)
    load_config(config, overrides)  # a bad config fails here, before any worker starts
    sys.exit(run_launch(workers, ["fit", str(config), *_repeat("--set", overrides),
                                  "--runs-dir", str(runs_dir),
                                  *(["--smoke"] if smoke else []),
                                  *(["--name", name] if name is not None else []),
                                  *(["--exact-name"] if exact_name else []),
                                  *(["--verbose"] if verbose else [])]))


def _repeat(option: str, values: tuple[str, ...]) -> list[str]:
    """``["--set", "a=1", "--set", "b=2"]`` for ``("a=1", "b=2")``."""
    return [item for value in values for item in (option, value)]


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the new run goes (default: beside RUN_DIR).")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
def reproduce(run_dir: Path, runs_dir: Path | None, verbose: bool) -> None:
    """Re-run a run from its saved config and seed, and compare the results.

    Exit 0 when they match (exactly for runtime.deterministic runs, else within
    the printed tolerance), 1 with a table of the differences when they do not.
    """
    from trainctl.run.reproduce import reproduce as run_reproduce

    if not run_reproduce(run_dir, runs_dir=runs_dir, verbose=verbose):
        sys.exit(int(ExitCode.FAILED))


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--trials", type=click.IntRange(min=1), metavar="N",
              help="How many trials (default: sweep.trials; a grid: every point).")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              metavar="N", help="Trial processes at once.")
@click.option("--storage", metavar="URL",
              help="An Optuna storage URL shared by workers on several machines "
                   "(default: a journal file in the sweep folder).")
@click.option("--smoke", is_flag=True, help="Every trial at smoke size.")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs"), show_default=True, help="Where the sweep folder goes.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
def sweep(config: Path, overrides: tuple[str, ...], trials: int | None, parallel: int,
          storage: str | None, smoke: bool, runs_dir: Path, verbose: bool) -> None:
    """Optuna search over CONFIG's sweep: section; each trial is a run folder in the
    sweep folder, which is the last line printed."""
    from trainctl.config import load_config
    from trainctl.sweep.runner import sweep as run_sweep

    cfg = load_config(config, overrides)  # a bad config or search space fails here
    click.echo(str(run_sweep(cfg, runs_dir=runs_dir, trials=trials, parallel=parallel,
                             storage=storage, smoke=smoke, verbose=verbose)))
