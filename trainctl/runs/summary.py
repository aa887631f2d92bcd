"""One run folder read into a :class:`RunSummary`: what ``runs list`` shows of it.

Example:
    >>> s = summarize(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))
    >>> s.status, s.epochs, s.monitor, s.best
    ('completed', 2, 'val_loss', 0.1532)
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from trainctl.run.monitor import default_monitor, monitor_mode
from trainctl.status import FINISHED

# <name>-<YYYYmmdd-HHMMSS>-<6 hex>: the run folder's name (trainctl.artifacts.RunDir.create)
_FOLDER = re.compile(r"^(?P<name>.+)-\d{8}-\d{6}-[0-9a-f]{6}$")


@dataclass
class RunSummary:
    """What a run folder says about its run.

    ``best`` is the best value of the run's checkpoint monitor (``fit.monitor``, else
    ``val_loss`` with validation data, else ``loss``) over the finished epochs, and
    ``best_epoch`` its epoch (1-based); ``test`` is metrics.json; ``duration`` the
    seconds of all attempts (fit and each resume). ``problems`` names unreadable files.
    """

    id: str
    path: Path
    name: str
    status: str
    epochs: int = 0
    planned_epochs: int | None = None
    monitor: str | None = None
    mode: str = "min"
    best: float | None = None
    best_epoch: int | None = None
    test: dict[str, float] = field(default_factory=dict)
    start: str | None = None
    end: str | None = None
    duration: float | None = None
    seed: int | None = None
    smoke: bool = False
    stale: bool = False
    problems: list[str] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict, repr=False)
    config: dict[str, Any] = field(default_factory=dict, repr=False)
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data (non-finite numbers as null).

        Example:
            >>> summarize(path).to_json()["status"]
            'completed'
        """
        keys = ("id", "name", "status", "epochs", "planned_epochs", "monitor", "mode", "best",
                "best_epoch", "test", "start", "end", "duration", "seed", "smoke", "stale",
                "problems")
        out = {k: finite(getattr(self, k)) for k in keys}
        out["exit_reason"] = self.info.get("exit_reason")  # why a failed run failed
        out["path"] = str(self.path)
        return out


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities (also inside dicts and lists) replaced by None:
    strict JSON has no spelling for them.

    Args:
        value: JSON-ready data.

    Example:
        >>> finite({"loss": float("nan"), "acc": [0.5]})
        {'loss': None, 'acc': [0.5]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def is_run(path: Path) -> bool:
    """Whether ``path`` is a run folder (it holds run.json).

    Args:
        path: any path.

    Example:
        >>> is_run(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))
        True
    """
    return (Path(path) / "run.json").is_file()


def summarize(path: Path) -> RunSummary:
    """Read a run folder; a missing or corrupt file is noted in ``problems``, not raised
    (one broken run must not hide the others in a listing).

    Args:
        path: a folder holding run.json.

    Example:
        >>> summarize(Path("runs/mnist-mlp-20261124-101500-3f9a2c")).epochs
        2
    """
    path = Path(path)
    problems: list[str] = []
    info = _read(path / "run.json", problems, json.loads) or {}
    finished = isinstance(info, dict) and info.get("status") in FINISHED
    # fit writes config.yaml first; a finished run has its history (a run folder missing
    # them was edited by hand: say so rather than show an empty run)
    history = _read(path / "history.json", problems, json.loads, optional=not finished) or {}
    test = _read(path / "metrics.json", problems, json.loads, optional=True) or {}
    config = _read(path / "config.yaml", problems, yaml.safe_load) or {}
    history = {k: v for k, v in history.items() if isinstance(v, list)} \
        if isinstance(history, dict) else {}
    status = str(info.get("status") or "unknown") if info else "unreadable"
    summary = RunSummary(
        id=path.name, path=path, name=run_name(path, config), status=status,
        epochs=max((len(v) for v in history.values()), default=0),
        planned_epochs=(info.get("plan") or {}).get("epochs"),
        test={k: float(v) for k, v in test.items() if _number(v)} if isinstance(test, dict)
        else {},
        start=info.get("start"), end=info.get("end"), duration=duration(info),
        seed=info.get("seed"), smoke=bool(info.get("smoke")),
        stale=status == "running" and not held(path),
        problems=problems, history=history, config=config if isinstance(config, dict) else {},
        info=info)
    data = summary.config.get("data")
    # no epoch yet: the config says whether there is validation data
    validated = "val_loss" in history if history else \
        isinstance(data, dict) and data.get("validation") is not None
    summary.monitor = default_monitor(_configured_monitor(summary.config),
                                      has_validation=validated)
    summary.mode = monitor_mode(summary.monitor)
    summary.best, summary.best_epoch = best_of(history.get(summary.monitor), summary.mode)
    return summary


def _read(path: Path, problems: list[str], parse: Any, optional: bool = False) -> Any:
    if not path.is_file():
        if not optional:
            problems.append(f"{path.name} is missing")
        return None
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        problems.append(f"{path.name} is unreadable: {type(exc).__name__}")
        return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _configured_monitor(config: dict) -> str | None:
    fit = config.get("fit") if isinstance(config, dict) else None
    monitor = fit.get("monitor") if isinstance(fit, dict) else None
    return monitor if isinstance(monitor, str) else None


def run_name(path: Path, config: dict) -> str:
    """The run's name: its folder name without the timestamp and id (``--name`` or the
    config's ``name:``), else the config's name.

    Args:
        path: the run folder.
        config: its config.yaml.

    Example:
        >>> run_name(Path("runs/mnist-mlp-20261124-101500-3f9a2c"), {})
        'mnist-mlp'
    """
    match = _FOLDER.match(path.name)
    if match:
        return match.group("name")
    name = config.get("name") if isinstance(config, dict) else None
    return str(name) if name else path.name


def best_of(values: list | None, mode: str) -> tuple[float | None, int | None]:
    """The best finite value of a history list and its epoch (1-based); ties: the first.

    Args:
        values: one value per epoch (None: no such key).
        mode: ``min`` or ``max`` (:func:`trainctl.run.monitor.monitor_mode`).

    Example:
        >>> best_of([0.5, 0.2, 0.3], "min")
        (0.2, 2)
    """
    pairs = [(float(v), i + 1) for i, v in enumerate(values or [])
             if _number(v) and math.isfinite(float(v))]
    if not pairs:
        return None, None
    sign = -1.0 if mode == "max" else 1.0
    value, epoch = min(pairs, key=lambda p: (sign * p[0], p[1]))
    return value, epoch


def _time(text: Any) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def duration(info: dict) -> float | None:
    """Seconds the run trained: the sum of its attempts (fit, then each resume), so the
    time between an interruption and its resume is left out. An attempt still running
    counts until now.

    Args:
        info: run.json.

    Example:
        >>> duration({"attempts": [{"start": "2026-11-24T10:15:00+01:00",
        ...                         "end": "2026-11-24T10:15:09+01:00"}]})
        9.0
    """
    attempts = info.get("attempts") or [{"start": info.get("start"), "end": info.get("end")}]
    total, counted = 0.0, False
    for attempt in attempts:
        start = _time(attempt.get("start"))
        end = _time(attempt.get("end"))
        if start is None:
            continue
        if end is None and attempt is attempts[-1] and info.get("status") == "running":
            end = _dt.datetime.now(start.tzinfo)
        if end is not None:
            total += (end - start).total_seconds()
            counted = True
    return total if counted else None


def held(path: Path) -> bool:
    """Whether a process holds the run's lock (it is training it now).

    A run killed by SIGKILL still says ``running`` in run.json; the operating system
    dropped its lock (:mod:`trainctl.run.lock`), which tells the two apart.

    Args:
        path: the run folder.

    Example:
        >>> held(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))   # no fit running it
        False
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: cannot tell
        return True
    lock = Path(path) / ".lock"
    if not lock.is_file():
        return False
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # fails while fit holds LOCK_EX
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and releases the shared lock at once
