"""The ``trainctl`` command line: thin wrappers over config, run and artifacts.

The group and its error handling are here; the commands, by what they work on:
:mod:`~trainctl.cli.train` (fit, resume, launch, reproduce, sweep),
:mod:`~trainctl.cli.configs` (validate, smoke, components, schema),
:mod:`~trainctl.cli.models` (evaluate, predict, export: a finished run's model) and
:mod:`~trainctl.cli.runs` (runs list/show, compare, plot).

TensorFlow is imported only inside the commands that train or load models
(click's "deferring imports"), so ``--help``, ``validate``, ``components`` and
``schema`` start fast. Errors become exit codes here and nowhere else.
"""

from __future__ import annotations

import sys

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


def main() -> None:
    """Console-script entry point."""
    global _EXITING_PROCESS
    _EXITING_PROCESS = True
    cli(prog_name="trainctl")


# The commands register themselves on `cli` (after it exists: they import it).
from trainctl.cli import configs, models, runs, train  # noqa: E402,F401
