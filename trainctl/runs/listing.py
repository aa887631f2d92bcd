"""``trainctl runs list``: one row per run folder, filtered and sorted.

Example:
    >>> out = list_runs(Path("runs"), status="completed", sort="test_loss")
    >>> print(out.text)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from trainctl.errors import UsageError
from trainctl.run.monitor import monitor_mode, suggest_logged
from trainctl.runs.summary import RunSummary, best_of, is_run, summarize

TEST_COLUMNS = 4  # the table's test metrics (the most common ones); --json has them all


@dataclass
class Listing:
    """What ``runs list`` prints: ``text`` on stdout, ``notes`` on stderr."""

    text: str
    notes: list[str] = field(default_factory=list)


def find_runs(folder: Path) -> tuple[list[RunSummary], list[Path]]:
    """The runs in ``folder`` and the sweep folders beside them.

    ``folder`` may be a folder of runs (``runs/``), a sweep folder (it holds
    sweep.json; its trials are the run folders inside it) or one run folder.

    Args:
        folder: the folder to look in (``runs list --runs``).

    Raises:
        UsageError: ``folder`` does not exist or is not a folder.

    Example:
        >>> runs, sweeps = find_runs(Path("runs"))
    """
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{folder}: {what}\n  hint: pass --runs the folder 'trainctl fit "
                         "--runs-dir' wrote to (default: runs), or a sweep folder")
    if is_run(folder):
        return [summarize(folder)], []
    runs, sweeps = [], []
    for child in sorted(folder.iterdir()):
        if is_run(child):
            runs.append(summarize(child))
        elif child.is_dir() and (child / "sweep.json").is_file():
            sweeps.append(child)
    return runs, sweeps


def sort_value(run: RunSummary, metric: str) -> float | None:
    """A run's value of ``metric``: ``test_<name>`` is metrics.json's ``<name>``; any other
    name is a history key, taken at its best epoch.

    Args:
        run: the run.
        metric: ``test_<name>`` or a history key.

    Example:
        >>> sort_value(summarize(path), "val_loss")   # the best val_loss
        0.1532
    """
    if metric.startswith("test_"):
        value = run.test.get(metric[len("test_"):])
    else:
        value = best_of(run.history.get(metric), monitor_mode(metric))[0]
    return value if value is not None and math.isfinite(value) else None


def sort_runs(runs: list[RunSummary], metric: str | None) -> tuple[list[RunSummary], str | None]:
    """Runs by start time, or by ``metric`` (best first; runs lacking it last).

    Args:
        runs: the runs.
        metric: as :func:`sort_value`; None: by start time.

    Returns:
        The runs and a line saying how they were sorted (None: by start time).

    Raises:
        UsageError: no run has ``metric``; names the ones they have.

    Example:
        >>> runs, how = sort_runs(find_runs(Path("runs"))[0], "test_loss")
        >>> how
        'sorted by test_loss (metrics.json), lower first'
    """
    by_start = sorted(runs, key=lambda r: (r.start or "", r.id))
    if metric is None:
        return by_start, None
    known = sorted({k for r in runs for k in r.history}
                   | {f"test_{k}" for r in runs for k in r.test})
    if metric not in known:
        raise UsageError(f"--sort {metric}: no run has it{suggest_logged(metric, known)}\n"
                         f"  hint: a history key (its best epoch: {', '.join(known[:6]) or '-'}"
                         f"{', ...' if len(known) > 6 else ''}) or test_<name> for metrics.json")
    higher = monitor_mode(metric.removeprefix("test_")) == "max"
    having = [r for r in by_start if sort_value(r, metric) is not None]
    having.sort(key=lambda r: sort_value(r, metric), reverse=higher)
    lacking = [r for r in by_start if sort_value(r, metric) is None]
    what = "metrics.json" if metric.startswith("test_") else "best epoch"
    return having + lacking, (f"sorted by {metric} ({what}), "
                              f"{'higher' if higher else 'lower'} first"
                              + (f"; {len(lacking)} without it last" if lacking else ""))


def list_runs(folder: Path, *, name: str | None = None,
              status: str | Sequence[str] | None = None, sort: str | None = None,
              as_json: bool = False) -> Listing:
    """``trainctl runs list``: the runs of ``folder``, filtered and sorted.

    Args:
        folder: a folder of runs, a sweep folder or a run folder.
        name: keep runs whose name contains this (case-insensitive).
        status: keep runs with this status (or with any of these statuses).
        sort: a history key (best epoch) or ``test_<name>``; default: start time.
        as_json: a JSON list (:meth:`RunSummary.to_json`) instead of a table.

    Example:
        >>> print(list_runs(Path("runs"), sort="val_loss").text)
    """
    runs, sweeps = find_runs(folder)
    total = len(runs)
    if name is not None:
        runs = [r for r in runs if name.lower() in r.name.lower()]
    statuses = (status,) if isinstance(status, str) else tuple(status or ())
    if statuses:
        runs = [r for r in runs if r.status in statuses]
    notes = [f"warning: {r.path}: {p}" for r in runs for p in r.problems]  # the runs listed
    runs, how = sort_runs(runs, sort) if runs else (runs, None)
    if (Path(folder) / "sweep.json").is_file():
        notes.append(f"sweep {folder}: {total} trial(s)")
    if name is not None:  # a sweep folder is named after its sweep, like a run
        sweeps = [s for s in sweeps if name.lower() in s.name.lower()]
    notes += [f"sweep {s}: list its trials with: trainctl runs list --runs {s}" for s in sweeps]
    if not runs:
        notes.append(_nothing(folder, total, name, statuses))
    elif how:
        notes.append(how)
    if any(r.stale for r in runs):
        notes.append("running (no process): run.json says running but no process holds the "
                     "run (it was killed); continue it with: trainctl resume RUN")
    if as_json:
        return Listing(json.dumps([r.to_json() for r in runs], indent=2), notes)
    return Listing(table(runs, sort) if runs else "", notes)


def _nothing(folder: Path, total: int, name: str | None, statuses: tuple[str, ...]) -> str:
    if total == 0:
        return (f"no runs in {folder} (a run folder holds run.json); "
                "trainctl fit --runs-dir puts runs there")
    wanted = " or ".join(f"--status {s}" for s in statuses)
    filters = " and ".join(f for f in (f"--name {name}" if name is not None else "",
                                       wanted) if f)
    return f"none of the {total} run(s) in {folder} match {filters}"


def number(value: float | None) -> str:
    """4 decimals, small values in exponent form (as ``fit`` prints metrics); ``-`` for none.

    Args:
        value: a metric value.

    Example:
        >>> number(0.15316), number(2e-5), number(None)
        ('0.1532', '2.0000e-05', '-')
    """
    if value is None or not math.isfinite(value):
        return "-" if value is None else str(value)
    return f"{value:.4e}" if value != 0 and abs(value) < 1e-3 else f"{value:.4f}"


def seconds(value: float | None) -> str:
    """``9s``, ``2m05s``, ``1h02m``; ``-`` when unknown (whole seconds: run.json's
    time stamps are to the second).

    Args:
        value: seconds.

    Example:
        >>> seconds(125.0)
        '2m05s'
    """
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.0f}s"
    minutes = int(value // 60)
    if minutes < 60:
        return f"{minutes}m{int(value % 60):02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def test_keys(runs: list[RunSummary]) -> list[str]:
    """The test metrics worth a column: the most common, at most :data:`TEST_COLUMNS`.

    Args:
        runs: the runs listed.

    Example:
        >>> test_keys(runs)
        ['loss', 'sparse_categorical_accuracy']
    """
    counts: dict[str, int] = {}
    for run in runs:
        for key in run.test:
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: -counts[k])[:TEST_COLUMNS]  # stable: first seen first


def table(runs: list[RunSummary], sort: str | None = None) -> str:
    """The runs as an aligned text table (ids in full; numbers right-aligned).

    Args:
        runs: the runs, in order.
        sort: the ``--sort`` key: a history key gets a column of its best value.

    Example:
        >>> print(table(find_runs(Path("runs"))[0]))
    """
    tests = test_keys(runs)
    extra = sort if sort and not sort.startswith("test_") else None
    header = ["id", "name", "status", "epochs", "monitor", "best",
              *([f"best {extra}"] if extra else []), *(f"test_{k}" for k in tests), "duration"]
    rows = []
    for r in runs:
        epochs = f"{r.epochs}/{r.planned_epochs}" if r.planned_epochs is not None \
            else str(r.epochs)
        best = f"{number(r.best)} @{r.best_epoch}" if r.best is not None else "-"
        rows.append([r.id, r.name, f"{r.status} (no process)" if r.stale else r.status, epochs,
                     r.monitor or "-", best,
                     *([number(sort_value(r, extra))] if extra else []),
                     *(number(r.test.get(k)) for k in tests), seconds(r.duration)])
    return align([header, *rows], left={0, 1, 2, 4})


def align(rows: list[list[str]], left: set[int] = frozenset({0})) -> str:
    """Rows of cells as columns two spaces apart: the ``left`` columns (text) left-aligned,
    the others (numbers) right-aligned.

    Args:
        rows: the header and the rows, all of one length.
        left: indexes of the left-aligned columns.

    Example:
        >>> print(align([["key", "a"], ["loss", "0.5"]]))
        key     a
        loss  0.5
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(w) if i in left else cell.rjust(w)
                 for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
