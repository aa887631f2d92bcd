"""A sweep's results: the trial table, best.yaml (the best trial's config, ready to run)
and two PNGs (optimisation history, parameter importances).

The table needs only sweep.json (``trainctl runs show SWEEP_DIR`` imports no Optuna).

Example:
    >>> print(table(load(Path("runs/mnist-mlp-sweep-20261124-101500-3f9a2c"))))
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import yaml

from trainctl.sweep.state import load, trial_folder, trial_name

BEST = "best.yaml"
PLOTS = ("optimization_history.png", "param_importances.png")


def ranked(state: dict) -> list[dict]:
    """The trials, best first: completed by the objective, then pruned, failed, running."""
    order = {"complete": 0, "pruned": 1, "fail": 2, "running": 3}
    sign = 1 if state["direction"] == "minimize" else -1
    return sorted(state["trials"].values(),
                  key=lambda e: (order.get(e["state"], 4),
                                 sign * e["value"] if e.get("value") is not None else 0,
                                 e["number"]))


def table(state: dict) -> str:
    """The trials as an aligned text table sorted by the objective.

    Example:
        >>> print(table(state))
        trial      state     val_loss  compile.optimizer.learning_rate  run
        trial-001  complete  1.0871    0.01                             trial-001-2026...
    """
    params = list(state["sweep"]["params"])
    head = ["trial", "state", state["metric"], *params, "run"]
    rows = [[trial_name(e["number"]), e["state"],
             f"{e['value']:.4f}" if e.get("value") is not None else "-",
             *(_short(e["params"].get(p)) for p in params), e.get("run") or "-"]
            for e in ranked(state)]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
                     for r in [head, *rows])


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def best(state: dict) -> dict | None:
    """The best completed trial's sweep.json entry (None when none completed)."""
    done = [e for e in ranked(state) if e["state"] == "complete"]
    return done[0] if done else None


def write_best(folder: Path, state: dict) -> Path | None:
    """best.yaml: the best trial's resolved config without its ``sweep:`` section."""
    top = best(state)
    run = trial_folder(folder, top["number"]) if top else None
    if run is None:
        return None
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    config.pop("sweep", None)
    head = (f"# The best trial of sweep {folder.name}: {trial_name(top['number'])}, "
            f"{state['metric']} {top['value']:.6g}\n# Relative paths (data.path, imports) are "
            f"relative to the sweep's config: {state['config_path']}\n")
    from trainctl.artifacts import atomic_write

    atomic_write(folder / BEST, head + yaml.safe_dump(config, sort_keys=False))
    return folder / BEST


def write_plots(folder: Path, study: Any) -> list[str]:
    """The optimisation history and parameter importances as PNGs; notes for the ones
    that cannot be drawn (importances need two completed trials that differ)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ov

    notes = []
    for name, draw in zip(PLOTS, (ov.plot_optimization_history, ov.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna's "experimental" warnings
                ax = draw(study)
                ax.figure.savefig(folder / name, dpi=100, bbox_inches="tight")
            plt.close("all")
        except Exception as exc:  # noqa: BLE001 - a plot must not fail a finished sweep
            notes.append(f"note: {name} not drawn: {type(exc).__name__}: {exc}")
    return notes


def write_report(folder: Path, study: Any) -> str:
    """best.yaml and the plots; return the text to print (table, best trial, files)."""
    state = load(folder)
    path = write_best(folder, state)
    notes = write_plots(folder, study)
    return "\n".join([*notes, summary(folder, state, wrote=path is not None)])


def summary(folder: Path, state: dict, *, wrote: bool | None = None) -> str:
    """The table, the best trial and the files: what ``runs show SWEEP_DIR`` prints."""
    top = best(state)
    lines = [f"sweep {folder}: {state['status']}, {len(state['trials'])} trial(s), "
             f"{state['sweep']['sampler']} sampler, {state['direction']} {state['metric']}",
             table(state)]
    if top:
        lines.append(f"best: {trial_name(top['number'])} {state['metric']} "
                     f"{top['value']:.4f} " + " ".join(f"{k}={_short(v)}"
                                                      for k, v in top["params"].items()))
    wrote = (folder / BEST).is_file() if wrote is None else wrote
    if wrote:
        lines.append(f"best config: {folder / BEST}")
    lines += [f"plot: {folder / p}" for p in PLOTS if (folder / p).is_file()]
    return "\n".join(lines)
