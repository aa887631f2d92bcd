"""``trainctl runs show RUN`` and ``trainctl compare RUN RUN...``.

Example:
    >>> print(show_run(Path("runs/mnist-mlp-20261124-101500-3f9a2c")))
    >>> print(compare_runs([Path("runs/a"), Path("runs/b")]))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from trainctl.errors import UsageError
from trainctl.run.monitor import monitor_mode
from trainctl.run.resume import config_diff, flatten
from trainctl.runs.listing import align, number, seconds
from trainctl.runs.summary import RunSummary, best_of, finite, is_run, summarize

ABSENT = "<absent>"  # what config_diff reports for a key one config lacks
NO_CONFIG = "<no config.yaml>"  # a run whose config.yaml is missing or unreadable
# Logged per epoch but not a score: its final value only.
NOT_SCORED = ("learning_rate",)


def open_run(path: Path) -> RunSummary:
    """A run folder's summary.

    Args:
        path: the folder (``runs show RUN``, ``compare RUN...``).

    Raises:
        UsageError: no such folder, or no run.json in it.
    """
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{path}: no such run folder\n  hint: pass a folder that "
                         "'trainctl fit' printed; 'trainctl runs list' shows them")
    if not is_run(path):
        raise UsageError(f"{path}: not a trainctl run folder (no run.json)\n  hint: pass a "
                         "folder that 'trainctl fit' printed; 'trainctl runs list' shows them")
    return summarize(path)


def metric_rows(run: RunSummary) -> list[tuple[str, float | None, float | None, int | None]]:
    """``(history key, final value, best value, best epoch)`` per key of the history.

    Args:
        run: the run (``learning_rate`` gets no best: it is not a score).

    Example:
        >>> metric_rows(summarize(path))[0]
        ('loss', 0.1622, 0.1622, 2)
    """
    rows = []
    for key, values in run.history.items():
        final = float(values[-1]) if values else None
        best, epoch = (None, None) if key in NOT_SCORED else best_of(values, monitor_mode(key))
        rows.append((key, final, best, epoch))
    return rows


def files_of(path: Path) -> list[tuple[str, int]]:
    """``(relative path, bytes)`` of the run's files; hidden ones (locks, temp files) left out.

    Args:
        path: the run folder.

    Example:
        >>> files_of(path)[0]
        ('checkpoints/best.keras', 24189)
    """
    out = []
    for file in sorted(Path(path).rglob("*")):
        rel = file.relative_to(path)
        if file.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append((str(rel), file.stat().st_size))
    return out


def size(n: int) -> str:
    """``812 B``, ``24.1 kB``, ``3.2 MB``.

    Args:
        n: bytes.

    Example:
        >>> size(24189)
        '24.2 kB'
    """
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def show_data(path: Path) -> dict[str, Any]:
    """What ``runs show`` prints, as JSON-ready data (``--json``).

    Args:
        path: the run folder.

    Example:
        >>> show_data(path)["status"]
        'completed'
    """
    if (Path(path) / "sweep.json").is_file():  # a sweep folder: its own state
        from trainctl.sweep.state import load

        return load(path)
    run = open_run(path)
    info = run.info
    return finite({**run.to_json(), "exit_reason": info.get("exit_reason"),
                   "seed_from": info.get("seed_from"), "command": info.get("command"),
                   "overrides": info.get("overrides"), "notes": info.get("notes", []),
                   "config": run.config,
                   "metrics": [{"key": k, "final": f, "best": b, "best_epoch": e}
                               for k, f, b, e in metric_rows(run)],
                   "files": [{"path": p, "bytes": n} for p, n in files_of(run.path)]})


def _attempt(entry: dict) -> str:
    """``resume from epoch 3 (--force, --set compile.optimizer=adam): completed``."""
    what = str(entry.get("command") or "?")
    if entry.get("from_epoch") is not None:
        what += f" from epoch {entry['from_epoch'] + 1}"
    extra = (["--force"] if entry.get("forced") else []) + \
        [f"--set {o}" for o in entry.get("overrides") or []]
    return what + (f" ({', '.join(extra)})" if extra else "") + f": {entry.get('status', '?')}"


def show_run(path: Path) -> str:
    """``trainctl runs show RUN``: status, seed, command, final and best metrics, test
    metrics, notes, the config and the files.

    Args:
        path: the run folder.

    Example:
        >>> print(show_run(Path("runs/mnist-mlp-20261124-101500-3f9a2c")))
    """
    if (Path(path) / "sweep.json").is_file():  # a sweep folder: the trial table, best, plots
        from trainctl.sweep.report import summary
        from trainctl.sweep.state import load

        return summary(Path(path), load(path))
    run = open_run(path)
    info = run.info
    status = run.status + (" (no process holds it: it was killed; trainctl resume "
                           "continues it)" if run.stale else "")
    if info.get("exit_reason"):
        status += f": {info['exit_reason']}"
    epochs = f"{run.epochs}" + (f" of {run.planned_epochs}" if run.planned_epochs else "")
    head = [["run", str(run.path)], ["status", status],
            ["seed", f"{run.seed} ({info.get('seed_from', 'config')})"],
            ["command", " ".join(info.get("command") or []) or "-"],
            ["started", f"{run.start or '-'}  (took {seconds(run.duration)}, epochs {epochs}"
                        f"{', smoke' if run.smoke else ''})"],
            ["monitor", f"{run.monitor} ({'higher' if run.mode == 'max' else 'lower'} is "
                        f"better): best " + (f"{number(run.best)} at epoch {run.best_epoch}"
                                             if run.best is not None else "-")]]
    attempts = info.get("attempts") or []
    if len(attempts) > 1:  # resumed: each attempt, and what a forced resume changed
        head.append(["attempts", "; ".join(_attempt(a) for a in attempts)])
    parts = [align(head, left={0, 1}), ""]
    rows = [["history", "final", "best", "epoch"]] + [
        [k, number(f), number(b) if b is not None else "", str(e or "")]
        for k, f, b, e in metric_rows(run)]
    parts += [align(rows) if len(rows) > 1 else "history   (no epoch finished)", ""]
    if run.test:
        parts += [align([["test (metrics.json)", ""]] + [[k, number(v)]
                                                         for k, v in run.test.items()]), ""]
    parts += [f"note: {n}" for n in info.get("notes", [])]
    config = yaml.safe_dump(run.config, sort_keys=False, width=100,
                            default_flow_style=None).rstrip()
    parts += ["config (config.yaml):", _indent(config or "-"), "", "files:"]
    files = files_of(run.path)
    parts.append(align([[f"  {p}", size(n)] for p, n in files]) if files else "  -")
    if run.problems:
        parts += ["", *(f"warning: {p}" for p in run.problems)]
    return "\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _value(value: Any) -> str:
    if value in (ABSENT, NO_CONFIG) or isinstance(value, str):
        return str(value)
    return json.dumps(value)


def differing_keys(configs: list[dict]) -> list[str]:
    """The flattened config keys whose values are not the same in every config
    (:func:`trainctl.run.resume.config_diff` of each against the first).

    Args:
        configs: two or more config mappings (config.yaml).

    Example:
        >>> differing_keys([{"fit": {"epochs": 2}}, {"fit": {"epochs": 3}}])
        ['fit.epochs']
    """
    keys: set[str] = set()
    for other in configs[1:]:
        keys |= {key for key, _, _ in config_diff(configs[0], other)}
    return sorted(keys)


def compare_data(paths: list[Path]) -> dict[str, Any]:
    """What ``compare`` prints, as JSON-ready data (``--json``).

    Args:
        paths: two or more run folders.

    Example:
        >>> compare_data([Path("runs/a"), Path("runs/b")])["config"]
        {'fit.batch_size': [16, 8]}
    """
    runs = _open_all(paths)
    flat = [flatten(r.config) if r.config else None for r in runs]
    # a run without a readable config.yaml has no config to compare
    keys = differing_keys([r.config for r in runs if r.config] or [{}])
    return finite({
        "runs": [r.to_json() for r in runs],
        "config": {k: [NO_CONFIG if f is None else f.get(k, ABSENT) for f in flat]
                   for k in keys},
        "metrics": {k: [_final_best(r, k) for r in runs] for k in _history_keys(runs)},
        "test": {k: [r.test.get(k) for r in runs] for k in _test_keys(runs)}})


def compare_runs(paths: list[Path]) -> str:
    """``trainctl compare``: the config keys that differ, then final and best metrics and
    the test metrics side by side, one column per run.

    Args:
        paths: two or more run folders.

    Example:
        >>> print(compare_runs([Path("runs/a"), Path("runs/b")]))
    """
    data = compare_data(paths)
    runs = data["runs"]
    cols = [f"[{i + 1}]" for i in range(len(runs))]
    parts = [align([[c, r["path"], r["status"], f"seed {r['seed']}"]
                    for c, r in zip(cols, runs)], left={0, 1, 2, 3}), ""]
    if data["config"]:
        parts += ["config (keys that differ):", align(
            [["  key", *cols]] + [[f"  {k}", *map(_value, v)] for k, v in data["config"].items()],
            left=set(range(len(cols) + 1)))]
    else:
        parts.append("config: the same in every run")
    rows = [["  metric", *cols]]
    for key, values in data["metrics"].items():
        rows.append([f"  {key} (final)", *(number(v["final"]) for v in values)])
        if any(v["best"] is not None for v in values):
            rows.append([f"  {key} (best)", *(_best(v) for v in values)])
    rows += [[f"  test_{k}", *map(number, v)] for k, v in data["test"].items()]
    parts += ["", "metrics:", align(rows) if len(rows) > 1 else "  (none yet)"]
    parts += [f"warning: {c} {r['path']}: {p}" for c, r in zip(cols, runs) for p in r["problems"]]
    return "\n".join(parts)


def _open_all(paths: list[Path]) -> list[RunSummary]:
    if len(paths) < 2:
        raise UsageError("compare needs at least two runs\n  hint: trainctl compare RUN RUN...; "
                         "'trainctl runs show RUN' describes one run")
    return [open_run(p) for p in paths]


def _history_keys(runs: list[RunSummary]) -> list[str]:
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.history if k not in keys]
    return keys


def _test_keys(runs: list[RunSummary]) -> list[str]:
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.test if k not in keys]
    return keys


def _final_best(run: RunSummary, key: str) -> dict[str, Any]:
    values = run.history.get(key) or []
    best, epoch = (None, None) if key in NOT_SCORED else best_of(values, monitor_mode(key))
    return {"final": float(values[-1]) if values else None, "best": best, "best_epoch": epoch}


def _best(value: dict[str, Any]) -> str:
    return "-" if value["best"] is None else f"{number(value['best'])} @{value['best_epoch']}"
