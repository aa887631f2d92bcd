"""``trainctl smoke``: every config at smoke size in one process, for CI.

TensorFlow is imported once (3-5 s a process, KERAS3_NOTES) and each config runs
as ``trainctl fit --smoke`` would, with what persists in a process (precision
policy, op determinism, seeds, Keras's session) reset in between; the objects alive
after a reset are kept out of the garbage collector's walks until the loop ends, and
a Keras data set file (mnist.npz) is read once (trainctl.data.sources). A config that
needs a device set-up TensorFlow allows only before its first operation (logical
CPUs, several workers, thread pools) runs in a ``python -m trainctl fit --smoke``
child process instead, and so does a config whose plug-in module is already imported
here from another file (two folders' ``plugins.py``): ``import`` would hand it the other
config's code. What a run prints to stderr (trainctl's ``warning:`` lines, Keras's
``UserWarning``) is kept with its result, for the JUnit file, not printed between rows.
A SIGINT or SIGTERM ends the loop: the config that was running is ``stopped``, the
rest ``skipped``, and the results so far are returned (exit 130 / 143).

Example:
    >>> results = smoke_all(find_configs([Path("configs")]), runs_dir=Path("/tmp/r"))
    >>> exit_code(results)   # trainctl.run.smoke_report: the rows, summary and exit code
    0
"""

from __future__ import annotations

import contextlib
import gc
import io
import re
import signal
import subprocess
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from trainctl.errors import (ExitCode, Interrupted, SignalReceived, TrainctlError, UsageError,
                             as_interrupted, interrupted_by)
from trainctl.run.own_process import child_command, child_reason

OK, FAILED, INVALID = "ok", "failed", "invalid"
STOPPED, SKIPPED = "stopped", "skipped"  # a signal stopped the smoke run


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
        errors: what the run printed to stderr (warnings), for ``<system-err>``.
        note: why it ran in a child process ("" when it ran here).
        exit: the exit code of a ``stopped`` result (130 or 143).
    """

    config: Path
    status: str
    seconds: float
    message: str = ""
    detail: str = ""
    output: str = ""
    errors: str = ""
    note: str = ""
    exit: int = 0

    @property
    def warnings(self) -> list[str]:
        """The warning lines of ``errors``: trainctl's ``warning: ...`` and Python's
        ``file:line: UserWarning: ...``."""
        return [line for line in self.errors.splitlines() if _WARNING.search(line)]

    @property
    def first_line(self) -> str:
        """The message's first line (the table's last column)."""
        return self.message.strip().splitlines()[0] if self.message.strip() else ""


_WARNING = re.compile(r"^warning: |^\S.*:\d+: \w*Warning: ")


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


def smoke_in_process(path: Path, runs_dir: Path, verbose: bool) -> tuple[str, str]:
    """Load config ``path`` and run it as ``fit --smoke`` here, its output captured;
    return the output and what it printed to stderr (warnings, also those of importing
    its plug-ins; Python's are shown again for each config).

    Raises whatever :func:`trainctl.config.load_config` and
    :func:`trainctl.run.fit.fit` raise.
    """
    from trainctl.config import load_config
    from trainctl.run.fit import fit
    from trainctl.run.runtime import reset_process_state
    from trainctl.run.timing import reset

    reset()  # run.json timings per run, as `trainctl fit` counts them
    reset_process_state(verbose)
    if _freeze_heap:  # inside smoke_all's loop: see heap_frozen_between_configs
        gc.freeze()  # reset's gc.collect() left only live objects
    out, err = io.StringIO(), io.StringIO()
    # Python's warnings are recorded (a new filter state: one shown for an earlier
    # config is shown again), whoever would have shown them (pytest records its own)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as caught:
        try:
            fit(load_config(path), runs_dir=runs_dir, smoke=True, verbose=verbose)
        except BaseException as exc:
            exc.smoke_output = out.getvalue()  # type: ignore[attr-defined]
            exc.smoke_errors = err.getvalue() + shown(caught)  # type: ignore[attr-defined]
            raise
    return out.getvalue(), err.getvalue() + shown(caught)


def shown(caught: list) -> str:
    """Recorded warnings as Python prints them (``file:line: UserWarning: ...``)."""
    return "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line)
                   for w in caught)


def smoke_in_child(path: Path, runs_dir: Path, verbose: bool, note: str = "") -> SmokeResult:
    """Run ``python -m trainctl fit PATH --smoke`` in a child process; ``note`` says why."""
    started = time.perf_counter()
    command, env = child_command(["fit", str(path), "--smoke", "--runs-dir", str(runs_dir),
                                  *(["--verbose"] if verbose else [])])
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode == 0:
        return SmokeResult(path, OK, seconds, output=done.stdout, errors=done.stderr, note=note)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    message = errors[-1][len("error: "):] if errors else \
        f"`{' '.join(command)}` exited with {done.returncode}"
    status = INVALID if done.returncode == int(ExitCode.USAGE) else FAILED
    return SmokeResult(path, status, seconds, message=message, detail=done.stderr,
                       output=done.stdout, note=note)  # its stderr is the detail


def smoke_one(path: Path, runs_dir: Path, verbose: bool = False) -> SmokeResult:
    """Smoke-run one config file; never raises for a config's own failure.

    Raises:
        Interrupted / KeyboardInterrupt: a signal stops the whole smoke run.
    """
    started = time.perf_counter()
    try:
        reason = child_reason(path)
        if reason:
            return smoke_in_child(path, runs_dir, verbose, note=f"in a child process: {reason}")
        output, errors = smoke_in_process(path, runs_dir, verbose)
    except (KeyboardInterrupt, Interrupted):
        raise
    except TrainctlError as exc:
        status = INVALID if exc.exit_code == ExitCode.USAGE else FAILED
        return SmokeResult(path, status, time.perf_counter() - started, message=str(exc),
                           detail=run_traceback(str(exc)), output=captured(exc),
                           errors=captured(exc, "smoke_errors"))
    except Exception as exc:  # noqa: BLE001 - a plug-in's bug must not stop the other configs
        return SmokeResult(path, FAILED, time.perf_counter() - started,
                           message=f"{type(exc).__name__}: {exc}",
                           detail=traceback.format_exc(), output=captured(exc),
                           errors=captured(exc, "smoke_errors"))
    return SmokeResult(path, OK, time.perf_counter() - started, output=output, errors=errors)


def captured(exc: BaseException, what: str = "smoke_output") -> str:
    """What the run printed (``smoke_errors``: to stderr) before ``exc`` (set by
    :func:`smoke_in_process`)."""
    return getattr(exc, what, "")


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


def is_scratch(runs_dir: Path) -> bool:
    """Whether ``runs_dir`` is the temporary runs folder the ``smoke`` command makes
    (``$TMPDIR/trainctl-smoke-*``, removed when it ends) rather than a ``--runs-dir``."""
    try:
        return runs_dir.name.startswith("trainctl-smoke-") and \
            runs_dir.resolve().parent == Path(tempfile.gettempdir()).resolve()
    except OSError:
        return False


_RESUME_HINT = re.compile(r": continue it with `trainctl resume [^`]*`")
_TRACEBACK_LINE = re.compile(r"^(\s*)traceback: .*$", re.MULTILINE)


def without_scratch_paths(result: SmokeResult) -> SmokeResult:
    """``result`` without the hints that name a file in a temporary runs folder, which
    is gone when smoke ends: ``continue it with trainctl resume ...`` is dropped, and
    ``traceback: .../error.txt`` says where the traceback is instead (it was read
    into ``detail`` for the JUnit file)."""
    from dataclasses import replace

    message = _RESUME_HINT.sub("", result.message)
    message = _TRACEBACK_LINE.sub(
        r"\1traceback: in the --junit file (the temporary runs folder is removed; "
        r"--runs-dir DIR keeps it)", message)
    return replace(result, message=message) if message != result.message else result


@contextlib.contextmanager
def signals_stop_the_loop():
    """SIGTERM raises where the program is, like SIGINT does, for the ``with`` block
    (fit installs its own handlers while a run trains, and restores these)."""
    def handler(signum: int, frame) -> None:
        raise SignalReceived(interrupted_by(signal.Signals(signum).name))  # fit's words

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals are not ours to handle
        pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


_freeze_heap = False


@contextlib.contextmanager
def heap_frozen_between_configs():
    """For the ``with`` block, :func:`smoke_in_process` moves the objects alive after each
    config's reset to the collector's permanent generation (``gc.freeze``), so that the
    full collection Keras's ``clear_session`` makes before every config walks only what
    the last config left, not TensorFlow's and Keras's own objects again (measured:
    0.35 s of a config's 3 s). They become collectable again when the block ends."""
    global _freeze_heap
    _freeze_heap = True
    try:
        yield
    finally:
        _freeze_heap = False
        gc.unfreeze()


def stopped_result(path: Path, exc: BaseException, seconds: float) -> SmokeResult:
    """The ``stopped`` result of the config a signal stopped."""
    stopped = as_interrupted(exc)
    return SmokeResult(path, STOPPED, seconds, message=str(stopped),
                       output=captured(exc), errors=captured(exc, "smoke_errors"),
                       exit=int(stopped.exit_code))


def smoke_all(configs: list[Path], runs_dir: Path, *, verbose: bool = False,
              report: Callable[[SmokeResult], None] | None = None,
              keep_runs: bool | None = None) -> list[SmokeResult]:
    """Smoke-run every config in turn; ``report`` is called as each one ends.

    A SIGINT or SIGTERM stops the loop and still returns: the running config's result
    is ``stopped`` (its exit code 130 / 143, see :func:`exit_code`), the others
    ``skipped``, so the caller writes its report as usual.

    Args:
        configs: from :func:`find_configs`.
        runs_dir: where the run folders go.
        verbose: TensorFlow's start-up messages.
        report: e.g. print the result's table row.
        keep_runs: whether ``runs_dir`` stays after smoke (default: unless it is the
            command's temporary folder, :func:`is_scratch`); when not, no message
            names a file in it.
    """
    from trainctl.data.sources import keras_datasets_read_once

    keep = not is_scratch(runs_dir) if keep_runs is None else keep_runs
    results: list[SmokeResult] = []  # TensorFlow is imported by the first config run here
    with signals_stop_the_loop(), heap_frozen_between_configs(), keras_datasets_read_once():
        for i, path in enumerate(configs):
            started = time.perf_counter()
            try:
                result = smoke_one(path, runs_dir, verbose)
            except (KeyboardInterrupt, Interrupted) as exc:
                result = stopped_result(path, exc, time.perf_counter() - started)
            if not keep:
                result = without_scratch_paths(result)
            results.append(result)
            if report is not None:
                report(result)
            if result.status == STOPPED:
                results += [SmokeResult(p, SKIPPED, 0.0, message=f"not run: the smoke run "
                                        f"was {result.message.split(';')[0]}")
                            for p in configs[i + 1:]]
                _exiting_ignores_signals()
                break
    return results


def _exiting_ignores_signals() -> None:
    """A trainctl process stopped by a signal ignores further ones while it writes its
    report and exits (as the CLI does for any stopped command)."""
    from trainctl.cli import _ignore_signals

    _ignore_signals()
