"""Which logged value a run watches (its checkpoint monitor) and which way is better.

No Keras import: ``trainctl runs list`` ranks runs with the same rules the
training used (:class:`trainctl.run.callbacks.Checkpointer`).

Example:
    >>> monitor_mode(default_monitor(None, has_validation=True))
    'min'
"""

from __future__ import annotations

from typing import Any


def default_monitor(configured: str | None, *, has_validation: bool) -> str:
    """``fit.monitor`` when set, else ``val_loss`` with validation data, else ``loss``.

    Example:
        >>> default_monitor(None, has_validation=False)
        'loss'
    """
    return configured or ("val_loss" if has_validation else "loss")


def monitor_mode(monitor: str) -> str:
    """Keras's ``auto`` rule, stated: accuracy-like metrics go up, everything else down.

    Example:
        >>> monitor_mode("val_sparse_categorical_accuracy"), monitor_mode("val_loss")
        ('max', 'min')
    """
    name = monitor.lower()
    return "max" if any(t in name for t in ("acc", "auc", "precision", "recall", "f1")) else "min"


# Keras's callbacks that watch a logged value, and the one they watch by default
# (ModelCheckpoint only with save_best_only: otherwise it saves every epoch unwatched).
KERAS_WATCHERS = {"EarlyStopping": "val_loss", "ReduceLROnPlateau": "val_loss",
                  "ModelCheckpoint": "val_loss"}
# Logged by callbacks rather than the model: learning-rate callbacks log the rate
# (learning_rate, learning_rate_<optimizer>), trainctl's loss-weight schedules the weights.
CALLBACK_LOGGED = ("learning_rate", "loss_weight/")


def watched(cfg: Any, trial_metric: str | None = None) -> list[tuple[str, str]]:
    """``(config key, logged name)`` of every value the run watches: ``fit.monitor``, each
    callback's ``monitor`` (Keras's own default for theirs), a sweep trial's objective.

    Example:
        >>> watched(cfg)     # fit.callbacks: [{type: EarlyStopping, monitor: val_los}]
        [('fit.callbacks[0].monitor', 'val_los')]
    """
    from trainctl.registry.specs import split_spec

    fit = cfg.experiment.fit
    out = [("fit.monitor", fit.monitor)] if fit.monitor else []
    for i, spec in enumerate(fit.callbacks):
        name, kwargs = split_spec(spec, key=f"fit.callbacks[{i}]")
        given = kwargs.get("monitor")
        if isinstance(given, str):
            out.append((f"fit.callbacks[{i}].monitor", given))
        elif given is None and name in KERAS_WATCHERS and (
                name != "ModelCheckpoint" or kwargs.get("save_best_only")):
            out.append((f"fit.callbacks[{i}]", KERAS_WATCHERS[name]))
    if trial_metric:
        out.append(("sweep.objective.metric", trial_metric))
    return out


def unknown_watched(watch: list[tuple[str, str]], logged: list[str], *,
                    has_validation: bool) -> list[tuple[str, str, str]]:
    """``(key, name, why)`` for each watched name the run will never log.

    Args:
        watch: from :func:`watched`.
        logged: the keys of the model's logs (one evaluated batch), without ``val_``.
        has_validation: whether the run has validation data (``val_`` keys).

    Example:
        >>> unknown_watched([("fit.monitor", "val_acc")], ["loss", "accuracy"],
        ...                 has_validation=True)
        [('fit.monitor', 'val_acc', "... (did you mean 'val_accuracy'?) ...")]
    """
    names = list(logged) + ([f"val_{k}" for k in logged] if has_validation else [])
    out = []
    for key, name in watch:
        if name in names or name.startswith(CALLBACK_LOGGED) or \
                name.removeprefix("val_").startswith(CALLBACK_LOGGED):
            continue
        if name.startswith("val_") and name[4:] in logged:  # so not has_validation
            why = (f"{name!r} is a validation value, and the run has no validation data "
                   "(data.validation)")
        else:
            suggestion = suggest_logged(name, names)
            why = (f"{name!r} is not a value this run logs{suggestion}; it logs "
                   + ", ".join(names))
        out.append((key, name, why))
    return out


def suggest_logged(name: str, names: list[str]) -> str:
    """`` (did you mean 'x'?)`` for a logged value's name, or "": a close spelling, else
    (Keras 2's ``val_acc``/``val_accuracy`` habit) the logged names ending like ``name``.

    Example:
        >>> suggest_logged("val_accuracy", ["loss", "val_sparse_categorical_accuracy"])
        " (did you mean 'val_sparse_categorical_accuracy'?)"
    """
    from trainctl.errors import did_you_mean

    return did_you_mean(name, names) or _same_ending(name, names)


def _same_ending(name: str, names: list[str]) -> str:
    """Keras 2's ``val_accuracy`` habit: the logged names ending like ``name`` does."""
    tail = name.split("_")[-1]
    tail = {"acc": "accuracy"}.get(tail, tail)  # Keras 2 logged accuracy as acc
    close = [n for n in names if n.endswith(tail) and n.startswith("val_") ==
             name.startswith("val_")]
    return f" (did you mean {' or '.join(repr(n) for n in close[:3])}?)" if close else ""
