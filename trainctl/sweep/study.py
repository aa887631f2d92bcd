"""The Optuna side of a sweep: storage, sampler, pruner, distributions, the grid queue.

The study lives in the sweep folder by default (``study.journal``, Optuna's
JournalFileBackend: safe for several local processes); any Optuna storage URL
(``sqlite:///...``, ``postgresql://...``) lets workers on several machines join.
A grid's points are enqueued once, up front, in a fixed order, so trial number
``n`` is always the same grid point and ``ask`` hands each one out once (Optuna
pops a waiting trial atomically), however many workers ask.

Example:
    >>> study = open_study(SweepPlan(...), Path("runs/mnist-sweep-..."))
    >>> number, params = ask(study, plan)
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Any

JOURNAL = "study.journal"


def require() -> None:
    """Fail with how to install Optuna when it is missing (it is the ``sweep`` extra).

    Raises:
        UsageError: Optuna is not installed.
    """
    import importlib.util

    from trainctl.errors import UsageError

    if importlib.util.find_spec("optuna") is None:
        raise UsageError("trainctl sweep needs Optuna, which is not installed\n"
                         "  hint: pip install 'trainctl[sweep]' (or pip install optuna)")


def storage(folder: Path, url: str | None) -> Any:
    """``url`` as Optuna takes it, or a JournalStorage on ``folder/study.journal``.

    Example:
        >>> storage(Path("runs/s"), None)    # doctest: +ELLIPSIS
        <optuna.storages.journal._storage.JournalStorage object at ...>
    """
    if url:
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(str(Path(folder) / JOURNAL)))


def distributions(params: dict[str, dict]) -> dict[str, Any]:
    """Optuna distributions of the ``sweep.params`` specs (already checked).

    Example:
        >>> distributions({"seed": {"choice": [1, 2]}})
        {'seed': CategoricalDistribution(choices=(1, 2))}
    """
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    out = {}
    for name, spec in params.items():
        (kind, values), = spec.items()
        if kind in ("choice", "grid"):
            out[name] = CategoricalDistribution(values)
        elif kind == "int":
            out[name] = IntDistribution(values[0], values[1])
        else:
            out[name] = FloatDistribution(float(values[0]), float(values[1]),
                                          log=kind == "loguniform")
    return out


def grid_points(params: dict[str, dict]) -> list[dict[str, Any]]:
    """Every grid point, in a fixed order (the first parameter varies slowest).

    Example:
        >>> grid_points({"a": {"grid": [1, 2]}, "b": {"grid": [3]}})
        [{'a': 1, 'b': 3}, {'a': 2, 'b': 3}]
    """
    names = list(params)
    return [dict(zip(names, combo))
            for combo in itertools.product(*(params[n]["grid"] for n in names))]


def make_sampler(sweep: dict, seed: int | None) -> Any:
    """The sampler of ``sweep.sampler`` (seeded with the config's seed)."""
    import optuna

    kind = sweep["sampler"]
    if kind == "grid":
        space = {n: spec["grid"] for n, spec in sweep["params"].items()}
        return optuna.samplers.GridSampler(space, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: dict) -> Any:
    """The pruner of ``{"type": median | hyperband, **args}``; NopPruner for ``{}``."""
    import optuna

    args = {k: v for k, v in spec.items() if k != "type"}
    if spec.get("type") == "median":
        return optuna.pruners.MedianPruner(**args)
    if spec.get("type") == "hyperband":
        return optuna.pruners.HyperbandPruner(**args)
    return optuna.pruners.NopPruner()


def open_study(state: dict, folder: Path, *, create: bool = False) -> Any:
    """The sweep's study (created with ``create``; a grid's points enqueued then).

    Args:
        state: sweep.json's content (study name, storage, sampler, pruner, objective).
        folder: the sweep folder (the default journal's place).
        create: create the study when missing (``trainctl sweep``); resume only loads.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = dict(study_name=state["study"], storage=storage(folder, state["storage"]),
                  sampler=make_sampler(state["sweep"], state.get("seed")),
                  pruner=make_pruner(state["pruner"]))
    if not create:
        return optuna.load_study(**kwargs)
    study = optuna.create_study(direction=state["direction"], load_if_exists=True, **kwargs)
    if state["sweep"]["sampler"] == "grid" and not study.trials:
        for point in grid_points(state["sweep"]["params"]):
            study.enqueue_trial(point)
    return study


def ask(study: Any, params: dict[str, dict]) -> tuple[int, dict[str, Any]]:
    """A new trial: ``(number, params)``. A waiting (enqueued) one first."""
    trial = study.ask(fixed_distributions=distributions(params))
    return trial.number, dict(trial.params)


def tell(study: Any, number: int, *, value: float | None = None, state: str = "complete") -> None:
    """Finish trial ``number`` as ``complete`` (with ``value``), ``pruned`` or ``fail``.

    A grid's last ``tell`` makes GridSampler call ``study.stop()``, which raises
    RuntimeError outside ``optimize`` after the state is saved: that one is ignored.
    Telling a trial that is finished already does nothing (a resumed sweep may
    tell twice what it told before it was killed).
    """
    from optuna.trial import TrialState

    states = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
              "fail": TrialState.FAIL}
    if study.trials[number].state.is_finished():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            study.tell(number, value if state == "complete" else None, state=states[state])
        except RuntimeError:
            if not study.trials[number].state.is_finished():
                raise


def trial_id(study: Any, number: int) -> int:
    """The storage's id of trial ``number`` (what a trial process reports under)."""
    return study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)


def started(study: Any) -> int:
    """How many trials have started (any state but waiting in the queue)."""
    from optuna.trial import TrialState

    return sum(1 for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING)
