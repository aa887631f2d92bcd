"""``trainctl reproduce RUN_DIR``: re-run a run from its saved config and seed, and compare.

The new run is an ordinary run folder (beside the original unless
``--runs-dir``); the comparison covers every history value per epoch and every
test metric. A run with ``runtime.deterministic: true`` must match exactly; any
other run within :data:`TOLERANCE` (absolute), since its kernels may sum in a
different order from one run to the next. The result is recorded in the
original run's run.json under ``reproductions``.

Example:
    >>> ok = reproduce(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from trainctl.artifacts import RunDir, now
from trainctl.errors import UsageError

# Allowed absolute difference for runs that are not op-deterministic.
TOLERANCE = 0.02


def values(run: RunDir) -> dict[str, float]:
    """``{"history.loss[0]": 0.31, ..., "metrics.loss": 0.14}`` of a finished run."""
    out: dict[str, float] = {}
    if run.file("history.json").is_file():
        for key, series in run.read_json("history.json").items():
            out.update({f"history.{key}[{i}]": float(v) for i, v in enumerate(series)})
    if run.file("metrics.json").is_file():
        out.update({f"metrics.{k}": float(v) for k, v in run.read_json("metrics.json").items()})
    return out


def differences(old: dict[str, float], new: dict[str, float],
                tolerance: float) -> list[tuple[str, Any, Any]]:
    """``(key, original, re-run)`` for each value missing on one side or off by more
    than ``tolerance`` (0: any difference; NaN equals NaN).

    Example:
        >>> differences({"a": 1.0}, {"a": 1.5}, 0.1)
        [('a', 1.0, 1.5)]
    """
    rows = []
    for key in sorted(old.keys() | new.keys(), key=_in_epoch_order):
        a, b = old.get(key), new.get(key)
        same = a is not None and b is not None and (
            (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tolerance)
        if not same:
            rows.append((key, a, b))
    return rows


def _in_epoch_order(key: str) -> tuple:
    """``history.loss[3]`` before ``history.loss[37]``: numbers compared as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key))


def format_table(rows: list[tuple[str, Any, Any]]) -> str:
    """The differences as a table: key, original, re-run, difference."""
    def show(v: Any) -> str:
        return "-" if v is None else f"{v:.6g}"

    width = max([len("value")] + [len(k) for k, _, _ in rows])
    lines = [f"  {'value'.ljust(width)}  {'original':>12}  {'re-run':>12}  {'diff':>10}"]
    for key, a, b in rows:
        diff = "-" if a is None or b is None else f"{b - a:+.3g}"
        lines.append(f"  {key.ljust(width)}  {show(a):>12}  {show(b):>12}  {diff:>10}")
    return "\n".join(lines)


def reproduce(path: Path, *, runs_dir: Path | None = None, verbose: bool = False) -> bool:
    """Re-run the run in ``path``; print the comparison; True when it matches.

    Raises:
        UsageError: ``path`` is not a completed run.
    """
    from trainctl.run.fit import fit
    from trainctl.run.plan import Plan
    from trainctl.run.reload import changed_inputs, run_config

    original = RunDir.open(path)
    info = original.read_json("run.json")
    if info.get("status") != "completed":
        status = info.get("status")
        then = "; `trainctl resume` continues it" if status in ("interrupted", "running") else ""
        raise UsageError(f"{original.path}: only a completed run can be reproduced (its status "
                         f"is {status!r}){then}")
    cfg = pin_weights_source(run_config(original, info), info.get("weights_from"))
    workers = (info.get("distribution") or {}).get("workers") or 1
    if workers > 1:
        print(f"note: the run trained on {workers} workers; this re-run is one process: the "
              "same global batches, their gradients summed in another order", flush=True)
    plan = Plan(**info["plan"]) if info.get("plan") else None
    new = fit(cfg, runs_dir=runs_dir or original.path.parent, name=f"{cfg.run_name}-reproduce",
              smoke=bool(info.get("smoke")), verbose=verbose, seed=info.get("seed"), plan=plan)
    exact = bool(cfg.experiment.runtime.deterministic)
    tolerance = 0.0 if exact else TOLERANCE
    rows = differences(values(original), values(new), tolerance)
    rule = "exactly (runtime.deterministic)" if exact else f"within {tolerance} (absolute)"
    again = new.read_json("run.json")
    for line in changed_inputs(info, plugins=again.get("plugins") or {},
                               data_files=again.get("data_files") or {}):
        print(f"note: {line}: the re-run used the new one", flush=True)
    record = {"run": str(new.path), "time": now(), "tolerance": tolerance, "matched": not rows,
              "differences": len(rows)}
    original.update_run(reproductions=[*info.get("reproductions", []), record])
    if rows:
        print(f"{len(rows)} value(s) differ from {original.path} by more than allowed "
              f"({rule}):\n{format_table(rows)}", flush=True)
    else:
        print(f"reproduced: every history value and test metric matches {rule}", flush=True)
    print(new.path, flush=True)
    return not rows


def pin_weights_source(cfg: Any, record: dict | None) -> Any:
    """``cfg`` starting from the very file the run started from (run.json's
    ``weights_from``), not from what its ``model.weights_from`` names today: a glob
    (``runs/mnist-mlp-*``) may now match a newer run.

    Raises:
        UsageError: that file is gone or its bytes changed (sha256).
    """
    import copy
    import dataclasses

    from trainctl.config.schema import WeightsFrom
    from trainctl.transfer.load import sha256
    from trainctl.transfer.source import parts

    if not record or "source" not in record or "sha256" not in record:
        return cfg  # no weights_from, or a --smoke run that skipped a missing source
    source = Path(record["source"])
    if not source.is_file():
        raise UsageError(f"model.weights_from: the run started from {source}, which is gone; "
                         "a re-run from other weights would not reproduce it")
    if sha256(source) != record["sha256"]:
        raise UsageError(f"model.weights_from: {source} changed since the run started from it "
                         "(sha256 differs); a re-run from these weights would not reproduce it")
    skip = parts(cfg.experiment.model.weights_from)[2]
    pinned = WeightsFrom(path=str(source), skip_mismatch=skip)
    model = cfg.experiment.model.model_copy(update={"weights_from": pinned})
    raw = copy.deepcopy(cfg.raw)
    raw["model"]["weights_from"] = pinned.model_dump(exclude_defaults=True)
    return dataclasses.replace(cfg, experiment=cfg.experiment.model_copy(update={"model": model}),
                               raw=raw)
