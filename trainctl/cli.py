"""The ``trainctl`` command line: thin wrappers over config, run and artifacts.

TensorFlow is imported only inside the commands that train or load models
(click's "deferring imports"), so ``--help``, ``validate``, ``components`` and
``schema`` start fast. Errors become exit codes here and nowhere else.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trainctl.errors import ExitCode, TrainctlError

SET_HELP = "Override a config key: KEY=VALUE, VALUE parsed as YAML (repeatable)."


class Group(click.Group):
    """A click group that turns trainctl errors into a message and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TrainctlError as exc:
            if exc.exit_code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
                _ignore_signals()
            click.echo(f"error: {exc}", err=True)
            sys.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            _ignore_signals()
            click.echo("interrupted", err=True)
            sys.exit(int(ExitCode.INTERRUPTED))


# Set by main(): only a real trainctl process (not a CliRunner test) ignores signals.
_EXITING_PROCESS = False


def _ignore_signals() -> None:
    """A run already stopped by a signal exits with its code: a second Ctrl-C while the
    process shuts down (TensorFlow's atexit hooks) must not turn it into a traceback or
    a death by signal."""
    import signal

    if not _EXITING_PROCESS:
        return
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread (CliRunner in a thread)
            pass


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="trainctl")
def cli() -> None:
    """Train, evaluate and compare Keras models described by YAML configs."""


@cli.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--smoke", is_flag=True, help="1 epoch of 2 steps, 2 validation and test steps.")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("runs"), show_default=True, help="Where run folders go.")
@click.option("--name", help="Run name (default: the config's name: or file stem).")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
def fit(config: Path, overrides: tuple[str, ...], smoke: bool, runs_dir: Path,
        name: str | None, verbose: bool) -> None:
    """Train CONFIG; the last line printed is the run folder."""
    from trainctl.run.timing import add_startup, phase, reset

    reset()
    add_startup()
    with phase("import"):
        # numpy is the first import of any Keras script (TensorFlow needs it too):
        # timed as an import, not as trainctl's own start-up.
        import numpy  # noqa: F401
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
    with phase("config"):
        cfg = load_config(config, overrides)
    run = run_fit(cfg, runs_dir=runs_dir, name=name, smoke=smoke, verbose=verbose)
    click.echo(str(run.path))


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Change the run's config: only raising fit.epochs needs no --force.")
@click.option("--force", is_flag=True,
              help="Resume even though the config or a plug-in module changed.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
def resume(run_dir: Path, overrides: tuple[str, ...], force: bool, verbose: bool) -> None:
    """Continue an interrupted or crashed run in its own folder, at its last finished epoch."""
    from trainctl.run.resume import resume as run_resume

    run = run_resume(run_dir, overrides=overrides, force=force, verbose=verbose)
    click.echo(str(run.path))


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
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--unsafe", is_flag=True,
              help="Load model.keras without Keras's safe mode (it may run Python code stored "
                   "in the file, e.g. a Lambda layer): only for files you trust.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
def evaluate(run_dir: Path, unsafe: bool, verbose: bool) -> None:
    """Evaluate a run's model on the test split; writes metrics.json."""
    from trainctl.run.console import format_metrics
    from trainctl.run.evaluate import evaluate as run_evaluate

    metrics = run_evaluate(run_dir, verbose=verbose, unsafe=unsafe)
    click.echo(f"test - {format_metrics(metrics)}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--input", "input_path", type=click.Path(dir_okay=False, path_type=Path),
              help=".npy (or .npz by input name) shaped like the model's inputs; "
                   "default: the test split.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save predictions: .npy, or .npz keyed by output name for a "
                   "model with several outputs (default: RUN_DIR/predictions.npy|.npz).")
@click.option("--unsafe", is_flag=True,
              help="Load model.keras without Keras's safe mode (it may run Python code stored "
                   "in the file, e.g. a Lambda layer): only for files you trust.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
def predict(run_dir: Path, input_path: Path | None, output_path: Path | None,
            unsafe: bool, verbose: bool) -> None:
    """Predict with a run's model."""
    import numpy as np

    from trainctl.run.predict import predict as run_predict

    path, y = run_predict(run_dir, input_path=input_path, output_path=output_path,
                          verbose=verbose, unsafe=unsafe)
    shape = {k: np.shape(v) for k, v in y.items()} if isinstance(y, dict) else \
        [np.shape(v) for v in y] if isinstance(y, list) else np.shape(y)
    click.echo(f"predictions {shape} -> {path}")


@cli.command()
@click.argument("configs", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--build", is_flag=True,
              help="Also build the model and run one synthetic batch through a train step "
                   "(imports TensorFlow).")
def validate(configs: tuple[Path, ...], overrides: tuple[str, ...], build: bool) -> None:
    """Check configs (schema, names, arguments) without training.

    No TensorFlow import unless --build.
    """
    from trainctl.config import load_config

    failed = 0
    for path in configs:
        try:
            cfg = load_config(path, overrides)
            if build:
                from trainctl.run.check import build_check

                build_check(cfg)
        except TrainctlError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
            continue
        click.echo(f"ok: {path}")
    if failed:
        sys.exit(int(ExitCode.USAGE))


@cli.command()
@click.argument("kind", required=False)
def components(kind: str | None) -> None:
    """List what can be named in a config (all kinds, or one KIND)."""
    import trainctl.data  # noqa: F401  registers the data sources (no TensorFlow)
    from trainctl.registry.catalog import format_components

    click.echo(format_components(kind))


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the config, for editors."""
    import json

    from trainctl.config.schema import Experiment

    click.echo(json.dumps(Experiment.model_json_schema(), indent=2))


def main() -> None:
    """Console-script entry point."""
    global _EXITING_PROCESS
    _EXITING_PROCESS = True
    cli(prog_name="trainctl")
