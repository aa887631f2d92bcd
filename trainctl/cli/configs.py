"""Commands on configs, no training of one's own: validate, smoke (every config at
smoke size), components (what a config can name), schema (for editors)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trainctl.cli import SET_HELP, cli
from trainctl.errors import ExitCode, TrainctlError


@cli.command()
@click.argument("configs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=SET_HELP)
@click.option("--build", is_flag=True,
              help="Also build the model and run one synthetic batch through a train step "
                   "(imports TensorFlow).")
def validate(configs: tuple[Path, ...], overrides: tuple[str, ...], build: bool) -> None:
    """Check configs (schema, names, arguments) without training.

    CONFIGS are config files or folders, searched recursively for *.yaml as `smoke`
    does (folders named _*, such as configs/_base/, are skipped). One line per config:
    ok, or its error; exit 2 if any is invalid. No TensorFlow import unless --build.
    A config whose plug-in module is already imported from another file (two folders'
    plugins.py) is validated in a child process, with a note saying so.
    """
    from trainctl.config import load_config
    from trainctl.data.load import require_files as require_data_files
    from trainctl.plugins import plugin_paths
    from trainctl.run.own_process import shared_process_reason
    from trainctl.transfer.source import require as require_weights_source

    paths, failed = config_files(configs)
    for path in paths:
        reason = None
        if plugin_paths():  # an earlier config imported plug-ins: this one's may clash
            try:
                reason = shared_process_reason(load_config(path, overrides, semantic=False))
            except TrainctlError:
                pass  # loading it below reports the error
        if reason:
            click.echo(f"note: {path}: validated in a child process: {reason}", err=True)
            code = validate_in_child(path, overrides, build)
            if code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
                sys.exit(code)  # a signal stopped the child: it stops validate too
            failed += code != 0
            continue
        try:
            cfg = load_config(path, overrides)
            require_weights_source(cfg)  # fit --smoke skips a missing one instead (SPEC §6)
            require_data_files(cfg)
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


def validate_in_child(path: Path, overrides: tuple[str, ...], build: bool) -> int:
    """``trainctl validate PATH`` in a child process, its output passed on; its exit code."""
    import subprocess

    from trainctl.run.own_process import child_command

    command, env = child_command(["validate", str(path),
                                  *(a for o in overrides for a in ("--set", o)),
                                  *(["--build"] if build else [])])
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.stdout:
        click.echo(done.stdout, nl=False)
    if done.stderr:
        click.echo(done.stderr, nl=False, err=True)
    return done.returncode


def config_files(paths: tuple[Path, ...]) -> tuple[list[Path], int]:
    """The configs to validate: folders replaced by the configs in them, as ``smoke``
    finds them; files kept as given (a missing one is reported when it is loaded).

    A folder holding no config is reported here, one ``error:`` line, and counted.

    Args:
        paths: the command line's config files and folders.

    Returns:
        The files, each once, in order, and the number of folders that had none.

    Example:
        >>> config_files((Path("configs"),))[0][:1]
        [PosixPath('configs/examples/finetune.yaml')]
    """
    from trainctl.run.smoke import find_configs

    found: list[Path] = []
    failed = 0
    for path in paths:
        if not path.is_dir():
            found.append(path)
            continue
        try:
            found += find_configs([path])
        except TrainctlError as exc:  # a folder with no *.yaml
            failed += 1
            click.echo(f"error: {exc}", err=True)
    return list(dict.fromkeys(found)), failed


@cli.command()
@click.argument("kind", required=False)
@click.argument("name", required=False)
def components(kind: str | None, name: str | None) -> None:
    """List what can be named in a config (all kinds, or one KIND), or the arguments of
    one component: `components layer Dense` (or just `components Dense`)."""
    import trainctl.data  # noqa: F401  registers the data sources (no TensorFlow)
    from trainctl.errors import UsageError, did_you_mean
    from trainctl.registry import KINDS
    from trainctl.registry.listing import (format_component, format_components, kinds_of,
                                           nearest_component)

    if kind is not None and kind not in KINDS and name is None:
        if not kinds_of(kind):
            near = did_you_mean(kind, KINDS) or nearest_component(kind)
            raise UsageError(f"{kind!r} is neither a kind of component nor one's name"
                             f"{near}; kinds: {', '.join(KINDS)}")
        kind, name = None, kind  # `components Dense`: the component, whatever its kind
    if name is None:
        click.echo(format_components(kind))
        return
    kinds = [kind] if kind is not None else kinds_of(name)
    click.echo("\n\n".join(format_component(k, name) for k in kinds))


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
    _* (configs/_base/: partial bases) and run folders are skipped. One row per config:
    ok, failed or invalid, seconds, the error's first line. Exit 0 when all pass, 2 when a config
    is invalid (config or data error), else 1 when a run failed.
    """
    import tempfile
    import time

    from trainctl.run.smoke import find_configs, smoke_all
    from trainctl.run.smoke_report import exit_code, format_row, format_summary

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
