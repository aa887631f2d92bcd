"""Where a run's wall time went: named phases, written to run.json as ``timings``.

trainctl promises to cost its users no time (issue 5: its own work under 3% of
a run's wall time), so every run measures its own work instead of leaving it to
guesswork: the phases a plain Keras script also has (importing TensorFlow,
building the model, loading data, training, the test evaluation) and the ones
only trainctl has (:data:`OWN`: its own imports, the config, the checks, the run
folder, the callbacks it adds, saving and status). ``benchmarks/runner_vs_script.py`` prints
their sum against the process's wall time.

Example:
    >>> with phase("config"):
    ...     cfg = load_config("configs/mnist.yaml")
    >>> timings()["config"]
    0.21
"""

from __future__ import annotations

import functools
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

# trainctl's own work: what the plain script does not do at all. ``startup`` is
# trainctl's own imports (click, pydantic and the schema, its modules); ``compile``
# (tracing the test function on one batch, a check that validation then reuses)
# and ``callbacks`` (inside ``fit``) are listed apart. ``background`` (the files
# trainctl.run.writer writes on its thread while training goes on) is not in OWN: the
# training does not wait for it, though it shares the CPU (wall and fit times show it).
OWN = ("startup", "config", "checks", "run_dir", "callbacks", "save", "status")

_seconds: dict[str, float] = {}

# Modules trainctl's start-up needs (for pydantic, PyYAML and its own code) that
# ``import tensorflow`` imports too: a plain Keras script pays for them as well, so
# ``fit`` imports them first, timed as ``import``, and ``startup`` is what only
# trainctl loads. tests/test_timing.py checks that TensorFlow still imports each one.
TENSORFLOW_IMPORTS = (
    "numpy", "typing_extensions", "importlib.metadata", "email.message", "json", "logging",
    "subprocess", "zipfile", "shutil", "tempfile", "decimal", "fractions", "zoneinfo",
    "hashlib", "random", "socket", "csv", "base64", "gzip", "traceback", "signal")


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the wall time of the block to phase ``name`` (phases may repeat; ``fit``
    contains ``callbacks``, no other phase contains another)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - started)


def import_shared() -> None:
    """Import :data:`TENSORFLOW_IMPORTS` as phase ``import``."""
    import importlib

    with phase("import"):
        for name in TENSORFLOW_IMPORTS:
            importlib.import_module(name)


def add(name: str, seconds: float) -> None:
    """Add ``seconds`` to phase ``name``."""
    _seconds[name] = _seconds.get(name, 0.0) + seconds


def timed(name: str, func: Callable) -> Callable:
    """``func`` with its calls' wall time added to phase ``name``.

    Example:
        >>> callback.on_epoch_end = timed("callbacks", callback.on_epoch_end)
    """
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with phase(name):
            return func(*args, **kwargs)

    return wrapper


def timings() -> dict[str, float]:
    """The phases so far in seconds (3 decimals), with ``own``: the sum of :data:`OWN`."""
    out = {name: round(seconds, 3) for name, seconds in _seconds.items()}
    out["own"] = round(sum(_seconds.get(name, 0.0) for name in OWN), 3)
    return out


def reset() -> None:
    """Start counting afresh (a new run in the same process)."""
    _seconds.clear()


_startup_counted = False


def add_startup() -> None:
    """Phase ``startup``: the time since trainctl's own imports began (click, trainctl.cli),
    for the first run of a process only: later runs in it (tests, a batch of runs)
    imported nothing. The standard-library modules imported before them go to ``import``
    (``trainctl.SHARED_IMPORTS``)."""
    global _startup_counted
    import trainctl

    if not _startup_counted:
        _startup_counted = True
        add("import", trainctl.SHARED_IMPORT_SECONDS)
        add("startup", time.perf_counter() - trainctl.STARTED)
