"""Errors and exit codes: the one place that maps a failure to a process exit code.

Every error a user can cause (a bad config, bad data, a bad command line) is a
:class:`TrainctlError` subclass whose ``str()`` is the whole message the CLI
prints. The CLI catches these and exits with ``error.exit_code``; nothing else
in the package calls ``sys.exit``.

Example:
    >>> raise ConfigError("expected an integer; received 'sixty-four' (str)",
    ...                   key="model.layers[0].units",
    ...                   where=Location("configs/mnist.yaml", 9, 31))
    configs/mnist.yaml:9:31: model.layers[0].units: expected an integer; ...
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable


class ExitCode(enum.IntEnum):
    """Process exit codes (SPEC §3)."""

    OK = 0
    FAILED = 1  # the run started and failed (diverged, crashed)
    USAGE = 2  # bad usage, bad config or bad data
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


@dataclass(frozen=True)
class Location:
    """Where a config value came from: a file position or a command-line override.

    Args:
        file: the YAML file's path as the user gave it (or ``"--set"``).
        line: 1-based line, 0 when unknown.
        col: 1-based column, 0 when unknown.
    """

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class TrainctlError(Exception):
    """Base of every error trainctl reports to the user without a traceback."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(TrainctlError):
    """Bad command-line usage: a missing file, a malformed ``--set``, a bad run dir."""


class ConfigError(TrainctlError):
    """A config value is wrong.

    Args:
        message: what is wrong, what was expected and what was received.
        key: dotted key path (``fit.callbacks[1].mode``); ``None`` for the whole file.
        where: the :class:`Location` of the offending value.
        hint: how to fix it, appended on its own line.
    """

    def __init__(self, message: str, *, key: str | None = None,
                 where: Location | None = None, hint: str | None = None):
        self.message = message
        self.key = key
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        # One error, one line: a key or value from the config may hold a newline or a
        # control character, which would otherwise break (or forge) the output's lines.
        parts = []
        if self.where is not None:
            parts.append(printable(str(self.where)))
        if self.key:
            parts.append(printable(self.key))
        parts.append(printable(self.message))
        text = ": ".join(parts)
        if self.hint:
            text += f"\n  hint: {printable(self.hint)}"
        return text


class ConfigErrors(TrainctlError):
    """Several config errors found in one pass, reported together (one per line)."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class DataError(TrainctlError):
    """Data that cannot be used: a missing or corrupt file, a bad shape, a label out of range."""


class RunFailed(TrainctlError):
    """A run that started and then failed (diverged, crashed): exit code 1."""

    exit_code = ExitCode.FAILED


def did_you_mean(name: str, choices: Iterable[str], n: int = 3) -> str:
    """Return ``" (did you mean 'Dense'?)"`` for the nearest choices, or ``""``.

    Matching ignores case first, then falls back to difflib's ratio, the way
    click suggests misspelled options.

    Example:
        >>> did_you_mean("Dens", ["Dense", "Dropout"])
        " (did you mean 'Dense'?)"
    """
    import difflib  # only error messages get here: keep it out of every start-up

    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    exact_case = lowered.get(str(name).lower())
    if exact_case is not None and exact_case != name:
        close = [exact_case]
    else:
        close = difflib.get_close_matches(str(name), choices, n=n, cutoff=0.6)
        if not close:
            close = [lowered[c] for c in difflib.get_close_matches(
                str(name).lower(), list(lowered), n=n, cutoff=0.6)]
    if not close:
        return ""
    quoted = [f"'{c}'" for c in close]
    if len(quoted) == 1:
        return f" (did you mean {quoted[0]}?)"
    return f" (did you mean {', '.join(quoted[:-1])} or {quoted[-1]}?)"


def printable(text: str, limit: int | None = None) -> str:
    """``text`` on one line: characters that are not printable (newlines, tabs, control
    characters, U+2028) escaped as in a Python string; cut to ``limit`` characters.

    Example:
        >>> printable("a\\nb\\x00")
        'a\\\\nb\\\\x00'
    """
    text = str(text)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def describe(value: object) -> str:
    """Render a received value for an error message: ``'sixty-four' (str)``."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


class Interrupted(TrainctlError):
    """The run was stopped by SIGINT (exit 130) or SIGTERM (exit 143)."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.INTERRUPTED):
        super().__init__(message)
        self.exit_code = exit_code


class SignalReceived(KeyboardInterrupt):
    """A signal outside the training steps, raised by trainctl's handler where the
    program is; :func:`trainctl.run.interrupt.stop_on_signals` turns it into
    :class:`Interrupted` when it leaves its block.

    Not an ``Exception``, like KeyboardInterrupt: the code that turns a plug-in's or
    Keras's exception into a config error (``except Exception``) must let it through,
    or a Ctrl-C while the model is built would read as a bad layer (exit 2).

    Args:
        interrupted: the error to report (its message and exit code).
    """

    def __init__(self, interrupted: Interrupted):
        super().__init__(str(interrupted))
        self.interrupted = interrupted


def interrupted_by(signal_name: str, detail: str = "") -> Interrupted:
    """``interrupted by SIGINT`` (exit 130) or ``terminated by SIGTERM`` (exit 143),
    ``detail`` appended to the message."""
    code = ExitCode.TERMINATED if signal_name == "SIGTERM" else ExitCode.INTERRUPTED
    verb = "terminated" if code == ExitCode.TERMINATED else "interrupted"
    return Interrupted(f"{verb} by {signal_name}{detail}", code)


def as_interrupted(exc: BaseException) -> Interrupted:
    """The :class:`Interrupted` that ``exc`` (Interrupted, SignalReceived or a plain
    KeyboardInterrupt: a second Ctrl-C) stands for."""
    if isinstance(exc, Interrupted):
        return exc
    if isinstance(exc, SignalReceived):
        return exc.interrupted
    return interrupted_by("SIGINT")
