"""``trainctl smoke``: every config at smoke size in one process, for CI.

TensorFlow is imported once (3-5 s a process, KERAS3_NOTES) and each config runs
as ``trainctl fit --smoke`` would, with what persists in a process (precision
policy, op determinism, seeds, Keras's session) reset in between. A config that
needs a device set-up TensorFlow allows only before its first operation (logical
CPUs, several workers, thread pools) runs in a ``python -m trainctl fit --smoke``
child process instead.

Example:
    >>> results = smoke_all(find_configs([Path("configs")]), runs_dir=Path("/tmp/r"))
    >>> exit_code(results)
    0
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from trainctl.errors import ExitCode, Interrupted, TrainctlError, UsageError

OK, FAILED, INVALID = "ok", "failed", "invalid"


@dataclass(frozen=True)
class SmokeResult:
    """How one config's smoke run ended.

    Args:
        config: the config file as found.
        status: ``ok``, ``failed`` (the run failed: exit 1 class) or ``invalid``
            (a config or data error: exit 2 class).
        seconds: wall time of the run.
        message: the error's full text ("" when ok).
        detail: a traceback or the run's output, for the JUnit file.
        output: what the run printed.
    """

    config: Path
    status: str
    seconds: float
    message: str = ""
    detail: str = ""
    output: str = ""

    @property
    def first_line(self) -> str:
        """The message's first line (the table's last column)."""
        return self.message.strip().splitlines()[0] if self.message.strip() else ""


def is_partial(path: Path, root: Path) -> bool:
    """Whether a file found under ``root`` is skipped: inside a folder whose name starts
    with ``_`` (``configs/_base/``: bases incomplete on their own, SPEC §2) or ``.``, or
    inside a run folder (its config.yaml is a record of that run, under runs/)."""
    folders = path.relative_to(root).parts[:-1]
    if any(part.startswith(("_", ".")) for part in folders):
        return True
    return any((root.joinpath(*folders[:i + 1]) / "run.json").is_file()
               for i in range(len(folders)))


def find_configs(paths: Iterable[Path]) -> list[Path]:
    """The config files of ``paths``: files as given, folders searched recursively for
    ``*.yaml`` / ``*.yml`` with partial bases skipped (:func:`is_partial`).

    Args:
        paths: config files or folders.

    Raises:
        UsageError: a path does not exist, or no config was found.

    Example:
        >>> find_configs([Path("configs")])[:1]
        [PosixPath('configs/examples/finetune.yaml')]
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            files = [p for pattern in ("*.yaml", "*.yml") for p in path.rglob(pattern)]
            found += sorted(p for p in files if p.is_file() and not is_partial(p, path))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder (expected a config file or a "
                             "folder of configs)")
    unique = list(dict.fromkeys(found))  # a file named twice runs once
    if not unique:
        shown = ", ".join(str(p) for p in paths)
        raise UsageError(f"no *.yaml config found in {shown} (folders whose name starts "
                         "with '_' or '.' are skipped: they hold partial bases)")
    return unique


def own_process_reason(cfg) -> str | None:
    """Why a config cannot run after other runs in this process (None: it can).

    Example:
        >>> own_process_reason(load_config("configs/examples/s24_mirrored.yaml")) is None
        True
    """
    runtime = cfg.experiment.runtime
    if runtime.distribution.logical_cpus:
        return "runtime.distribution.logical_cpus"
    if runtime.distribution.strategy == "multi_worker":
        return "runtime.distribution.strategy: multi_worker"
    if runtime.threads.intra_op or runtime.threads.inter_op:
        return "runtime.threads"
    return None


def smoke_in_process(cfg, runs_dir: Path, verbose: bool) -> str:
    """Run ``cfg`` as ``fit --smoke`` here, its output captured; return the output.

    Raises whatever :func:`trainctl.run.fit.fit` raises.
    """
    from trainctl.run.fit import fit
    from trainctl.run.runtime import reset_process_state
    from trainctl.run.timing import reset

    reset()  # run.json timings per run, as `trainctl fit` counts them
    reset_process_state(verbose)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            fit(cfg, runs_dir=runs_dir, smoke=True, verbose=verbose)
        except BaseException as exc:
            exc.smoke_output = out.getvalue()  # type: ignore[attr-defined]
            raise
    return out.getvalue()


def smoke_in_child(path: Path, runs_dir: Path, verbose: bool) -> SmokeResult:
    """Run ``python -m trainctl fit PATH --smoke`` in a child process."""
    started = time.perf_counter()
    env = dict(os.environ)
    # The child imports this very trainctl, also when it is not installed (a checkout)
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "trainctl", "fit", str(path), "--smoke",
               "--runs-dir", str(runs_dir), *(["--verbose"] if verbose else [])]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode == 0:
        return SmokeResult(path, OK, seconds, output=done.stdout)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    message = errors[-1][len("error: "):] if errors else \
        f"`{' '.join(command)}` exited with {done.returncode}"
    status = INVALID if done.returncode == int(ExitCode.USAGE) else FAILED
    return SmokeResult(path, status, seconds, message=message, detail=done.stderr,
                       output=done.stdout)


def smoke_one(path: Path, runs_dir: Path, verbose: bool = False) -> SmokeResult:
    """Smoke-run one config file; never raises for a config's own failure.

    Raises:
        Interrupted / KeyboardInterrupt: a signal stops the whole smoke run.
    """
    from trainctl.config import load_config

    started = time.perf_counter()
    try:
        cfg = load_config(path)
        if own_process_reason(cfg):
            return smoke_in_child(path, runs_dir, verbose)
        output = smoke_in_process(cfg, runs_dir, verbose)
    except (KeyboardInterrupt, Interrupted):
        raise
    except TrainctlError as exc:
        status = INVALID if exc.exit_code == ExitCode.USAGE else FAILED
        return SmokeResult(path, status, time.perf_counter() - started, message=str(exc),
                           detail=run_traceback(str(exc)), output=captured(exc))
    except Exception as exc:  # noqa: BLE001 - a plug-in's bug must not stop the other configs
        return SmokeResult(path, FAILED, time.perf_counter() - started,
                           message=f"{type(exc).__name__}: {exc}",
                           detail=traceback.format_exc(), output=captured(exc))
    return SmokeResult(path, OK, time.perf_counter() - started, output=output)


def captured(exc: BaseException) -> str:
    """What the run printed before ``exc`` (set by :func:`smoke_in_process`)."""
    return getattr(exc, "smoke_output", "")


def run_traceback(message: str) -> str:
    """The traceback file a RunFailed message names (``traceback: PATH``), read now:
    the runs folder may be a temporary one."""
    for line in message.splitlines():
        if line.strip().startswith("traceback: "):
            path = Path(line.split("traceback: ", 1)[1].strip())
            try:
                return path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return ""
    return ""


def smoke_all(configs: list[Path], runs_dir: Path, *, verbose: bool = False,
              report: Callable[[SmokeResult], None] | None = None) -> list[SmokeResult]:
    """Smoke-run every config in turn; ``report`` is called as each one ends.

    Args:
        configs: from :func:`find_configs`.
        runs_dir: where the run folders go.
        verbose: TensorFlow's start-up messages.
        report: e.g. print the result's table row.
    """
    results = []  # TensorFlow is imported by the first config run here (once)
    for path in configs:
        result = smoke_one(path, runs_dir, verbose)
        results.append(result)
        if report is not None:
            report(result)
    return results


def exit_code(results: list[SmokeResult]) -> ExitCode:
    """0 when every config passed, else 2 if one is invalid, else 1."""
    if any(r.status == INVALID for r in results):
        return ExitCode.USAGE
    if any(r.status == FAILED for r in results):
        return ExitCode.FAILED
    return ExitCode.OK


def format_row(result: SmokeResult, width: int) -> str:
    """``ok       3.1s  configs/mnist.yaml`` (+ the error's first line), padded to ``width``."""
    row = f"{result.status:<8}{result.seconds:6.1f}s  {str(result.config):<{width}}"
    return f"{row}  {result.first_line}".rstrip()


def format_summary(results: list[SmokeResult], seconds: float) -> str:
    """``35 configs: 34 ok, 1 failed, 0 invalid in 61.2s``."""
    counts = {s: sum(r.status == s for r in results) for s in (OK, FAILED, INVALID)}
    return (f"{len(results)} config{'s' if len(results) != 1 else ''}: {counts[OK]} ok, "
            f"{counts[FAILED]} failed, {counts[INVALID]} invalid in {seconds:.1f}s")
