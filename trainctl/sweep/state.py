"""sweep.json: a sweep's own state at the top of its folder (trials are run folders in it).

Example:
    >>> folder = create_folder(Path("runs"), "mnist-mlp")
    >>> save(folder, {"status": "running", "trials": {}})
    >>> load(folder)["status"]
    'running'
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from trainctl.artifacts import atomic_write, check_folder_name, dump_json, short_id, write_failed
from trainctl.errors import UsageError

FILE = "sweep.json"


def is_sweep(folder: Path) -> bool:
    """Whether ``folder`` is a sweep folder (it holds sweep.json).

    Example:
        >>> is_sweep(Path("runs/mnist-mlp-sweep-20261124-101500-3f9a2c"))
        True
    """
    return (Path(folder) / FILE).is_file()


def create_folder(runs_dir: Path, name: str) -> Path:
    """Make ``runs_dir/<name>-sweep-<timestamp>-<6 hex>/`` (never an existing one).

    Raises:
        UsageError: the folder cannot be created (the message names it).
    """
    check_folder_name(name)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    try:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failed(Path(runs_dir), exc, "create the runs directory") from None
    for _ in range(50):
        path = Path(runs_dir) / f"{name}-sweep-{stamp}-{short_id()}"
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        except OSError as exc:
            raise write_failed(path, exc, "create the sweep folder") from None
        return path
    raise UsageError(f"could not find a free sweep folder name in {runs_dir}")


def load(folder: Path) -> dict:
    """sweep.json's content.

    Raises:
        UsageError: missing or unreadable (the message names the file).
    """
    path = Path(folder) / FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the sweep's state: {exc}") from None


def save(folder: Path, state: dict) -> None:
    """Write sweep.json atomically (readers never see half a file)."""
    path = Path(folder) / FILE
    try:
        atomic_write(path, dump_json(state))
    except OSError as exc:
        raise write_failed(path, exc) from None


def trial_name(number: int) -> str:
    """``trial-007``: the stable name (and run-folder prefix) of trial ``number``.

    Example:
        >>> trial_name(7)
        'trial-007'
    """
    return f"trial-{number:03d}"


def trial_folder(folder: Path, number: int) -> Path | None:
    """Trial ``number``'s run folder (``<sweep>/trial-007``), None before it started."""
    path = Path(folder) / trial_name(number)
    return path if (path / "run.json").is_file() else None


def objective_value(run: Path, metric: str, direction: str) -> float | None:
    """The best epoch's ``metric`` in the run's history.json (None when it has none)."""
    try:
        history: dict[str, Any] = json.loads((Path(run) / "history.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    values = [v for v in history.get(metric, []) if v is not None and v == v]
    if not values:
        return None
    return min(values) if direction == "minimize" else max(values)
