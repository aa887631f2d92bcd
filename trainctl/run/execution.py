"""``compile.steps_per_execution: auto``: how many steps each call of the train function runs.

Most of a small model's training time is per-step overhead (a Python round trip
and a ``tf.function`` call per batch), so running a group of steps per call is
the single largest speed-up there is (benchmarks/runner_vs_script.py). The
choice must not change what a run computes, and ``auto`` takes care of that:

- Keras runs every call to the end of its group: an epoch of 782 steps with
  groups of 128 would run 896. ``auto`` takes the largest group size up to
  :data:`AUTO_MAX` that divides the steps per epoch (and the validation and test
  step caps, when given), so each epoch runs exactly its steps (782 = 2·17·23: groups of 46).
- Callbacks with per-batch hooks see one call per group (Keras's rule). A plug-in
  callback that defines ``on_*_batch_*`` hooks, or a LambdaCallback given batch
  functions, presumably wants every step: ``auto`` is then 1. Keras's own
  callbacks work per group (ModelCheckpoint's ``save_freq`` counts the steps of
  each group), as do trainctl's NaN and signal checks, which then act at the end
  of the group (SPEC §6 allows that).

Example:
    >>> choose("auto", steps_per_epoch=782, other_steps=[], callbacks=[])
    46
"""

from __future__ import annotations

from typing import Any, Iterable

# The largest group auto picks: beyond it the gain is small (fit of the MNIST MLP,
# 2 epochs: 5.6 s at 1, 3.5 s at 32, 2.7 s at 128) and per-batch hooks get coarse.
AUTO_MAX = 64
BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
               "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
               "on_predict_batch_begin", "on_predict_batch_end")


def wants_every_step(callback_cls: Any, kwargs: dict | None = None) -> bool:
    """Whether a callback class (and its arguments) defines its own per-batch hooks."""
    import keras

    if not isinstance(callback_cls, type):
        return False
    if callback_cls is keras.callbacks.LambdaCallback:
        return any(name in (kwargs or {}) for name in BATCH_HOOKS)
    if callback_cls.__module__.startswith("keras"):
        return False  # Keras's own callbacks handle groups of steps
    base = keras.callbacks.Callback
    return any(getattr(callback_cls, hook, None) is not getattr(base, hook)
               for hook in BATCH_HOOKS)


def choose(value: int | str, *, steps_per_epoch: int, other_steps: Iterable[int | None],
           callbacks: list[tuple[Any, dict]], replicas: int = 1) -> int:
    """The steps per execution for a run.

    Args:
        value: ``compile.steps_per_execution``: a number (used as given) or ``"auto"``.
        steps_per_epoch: the steps of each training epoch.
        other_steps: validation and test step caps (None: the whole split).
        callbacks: ``(class, constructor arguments)`` of the user's callbacks.
        replicas: the strategy's replicas; with more than one, 1 (Keras 3.15's grouped
            train function fails under MirroredStrategy: "You must feed a value for
            placeholder tensor ... while/cond").

    Example:
        >>> choose("auto", steps_per_epoch=100, other_steps=[3], callbacks=[])
        1
    """
    if value != "auto":
        return int(value)
    if replicas > 1 or any(wants_every_step(cls, kwargs) for cls, kwargs in callbacks):
        return 1
    counts = [steps_per_epoch, *(s for s in other_steps if s)]
    return max(d for d in range(1, AUTO_MAX + 1) if all(c % d == 0 for c in counts))


def user_callback_classes(cfg: Any) -> list[tuple[Any, dict]]:
    """``(class, arguments)`` for each of ``fit.callbacks`` (looked up, not built)."""
    from trainctl.registry import get_registry
    from trainctl.registry.specs import split_spec

    out = []
    for i, spec in enumerate(cfg.experiment.fit.callbacks):
        key = f"fit.callbacks[{i}]"
        name, kwargs = split_spec(spec, key=key, where=cfg.locate(key))
        out.append((get_registry("callback").get(name, key=key, where=cfg.locate(key)), kwargs))
    return out


def apply(model: Any, steps: int) -> None:
    """Set the model's steps per execution after compile (its functions are rebuilt)."""
    if getattr(model, "steps_per_execution", 1) != steps:
        model.steps_per_execution = steps
        model.train_function = model.test_function = model.predict_function = None
