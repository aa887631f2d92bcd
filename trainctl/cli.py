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
    from trainctl.transfer.source import require as require_weights_source

    failed = 0
    for path in configs:
        try:
            cfg = load_config(path, overrides)
            require_weights_source(cfg)  # fit --smoke skips a missing one instead (SPEC §6)
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
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write it to this file (the repository's: configs/trainctl.schema.json).")
def schema(output: Path | None) -> None:
    """Print the JSON Schema of the config, for editors.

    A config's first line `# yaml-language-server: $schema=<path to the file>` points
    YAML editors at it.
    """
    from trainctl.config.editor_schema import schema_text

    if output is None:
        click.echo(schema_text(), nl=False)
        return
    from trainctl.artifacts import atomic_write, write_failed

    try:
        atomic_write(output, schema_text())
    except OSError as exc:
        raise write_failed(output, exc) from None
    click.echo(f"wrote {output}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True,
              type=click.Choice(["saved_model", "litert", "onnx"]),
              help="SavedModel (serving_default signature), LiteRT flat buffer, or ONNX "
                   "(needs pip install 'trainctl[onnx]').")
@click.option("--output", "output_path", type=click.Path(path_type=Path),
              help="Where to write it (default: RUN_DIR/exports/saved_model/, "
                   "exports/litert/model.tflite or exports/onnx/model.onnx).")
@click.option("--force", is_flag=True, help="Replace an existing export at that path.")
@click.option("--unsafe", is_flag=True,
              help="Load model.keras without Keras's safe mode (it may run Python code stored "
                   "in the file, e.g. a Lambda layer): only for files you trust.")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
def export(run_dir: Path, fmt: str, output_path: Path | None, force: bool, unsafe: bool,
           verbose: bool) -> None:
    """Export a run's model for serving, checked against Keras on its test data.

    The artifact is loaded with its own runtime and a batch of the test split runs
    through it and through the Keras model: exit 1 when they differ by more than
    1e-4 (1e-3 for LiteRT), and nothing is written.
    """
    from trainctl.run.export import export as run_export

    record = run_export(run_dir, fmt=fmt, output=output_path, force=force, verbose=verbose,
                        unsafe=unsafe)
    click.echo(record["output"])


@cli.group()
def runs() -> None:
    """Look at runs: list them, show one."""


@runs.command("list")
@click.option("--runs", "runs_dir", type=click.Path(path_type=Path), default=Path("runs"),
              show_default=True, help="A folder of runs (fit's --runs-dir), or a sweep folder.")
@click.option("--name", metavar="SUBSTR", help="Only runs whose name contains SUBSTR.")
@click.option("--status", type=click.Choice(["running", "completed", "failed", "interrupted",
                                             "pruned"]), help="Only runs with this status.")
@click.option("--sort", metavar="METRIC",
              help="A history key (its best epoch, e.g. val_loss) or test_<name> "
                   "(metrics.json); best first (higher first for accuracy-like names), "
                   "runs without it last. Default: start time.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, for machines.")
def runs_list(runs_dir: Path, name: str | None, status: str | None, sort: str | None,
              as_json: bool) -> None:
    """One row per run: id, name, status, epochs, best monitored value, test metrics,
    duration."""
    from trainctl.runs.listing import list_runs

    listing = list_runs(runs_dir, name=name, status=status, sort=sort, as_json=as_json)
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
              default=Path("curves.png"), show_default=True, help="The PNG to write.")
def plot(run_dirs: tuple[Path, ...], metric: str | None, output: Path) -> None:
    """Learning curves of one or more runs (overlaid) as a PNG."""
    from trainctl.plot import plot_runs, save_png

    save_png(plot_runs(list(run_dirs), metric=metric), output)
    click.echo(str(output))


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write JUnit XML here: one testcase per config, for CI.")
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the run folders here (default: a temporary folder, removed).")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up messages.")
def smoke(paths: tuple[Path, ...], junit_path: Path | None, runs_dir: Path | None,
          verbose: bool) -> None:
    """Run every config at smoke size (as `fit --smoke`) in one process.

    PATHS are config files or folders, searched recursively for *.yaml; folders named
    _* (configs/_base/: partial bases) are skipped. One row per config: ok, failed or
    invalid, seconds, the error's first line. Exit 0 when all pass, 2 when a config
    is invalid (config or data error), else 1 when a run failed.
    """
    import tempfile
    import time

    from trainctl.run.smoke import exit_code, find_configs, format_row, format_summary, smoke_all

    configs = find_configs(paths)
    width = max(len(str(p)) for p in configs)
    started = time.perf_counter()

    def report(result) -> None:
        click.echo(format_row(result, width))
        for line in result.message.strip().splitlines()[1:]:
            click.echo(f"    {line}")

    with tempfile.TemporaryDirectory(prefix="trainctl-smoke-") as scratch:
        click.echo(f"{'status':<8}{'time':>7}  {'config':<{width}}  error")
        results = smoke_all(configs, runs_dir or Path(scratch), verbose=verbose, report=report)
    seconds = time.perf_counter() - started
    click.echo(format_summary(results, seconds))
    if junit_path is not None:
        from trainctl.run.junit import write_junit

        write_junit(results, junit_path, seconds)
        click.echo(f"junit: {junit_path}")
    sys.exit(int(exit_code(results)))


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


def main() -> None:
    """Console-script entry point."""
    global _EXITING_PROCESS
    _EXITING_PROCESS = True
    cli(prog_name="trainctl")
