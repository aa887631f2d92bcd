"""Checks of ``fit:`` against the rest of the config, before any TensorFlow is imported.

Each one catches a setting that Keras 3 would reject mid-run or, worse,
silently ignore:

- a LearningRateSchedule together with ReduceLROnPlateau or
  LearningRateScheduler (a TypeError mid-run in Keras 3, when the callback sets the rate);
- a callback (or ``fit.monitor``) watching a ``val_*`` value with no validation
  data: Keras only warns, so EarlyStopping never stops and ModelCheckpoint's
  ``save_best_only`` never saves. An error, not a warning: the run would
  otherwise complete and look fine. (EarlyStopping, ModelCheckpoint and
  ReduceLROnPlateau watch ``val_loss`` when no ``monitor`` is given.)
- ``fit.validation_steps`` with no validation data (Keras ignores it);
- a ModelCheckpoint ``filepath`` Keras 3 cannot write (``.keras`` for models,
  ``.weights.h5`` with ``save_weights_only``; a legacy ``.h5`` model still works);
- a TensorBoard callback without the ``tensorboard`` package (fit would crash on
  its first batch);
- class weights (``fit.class_weight``, ``data.sample_weight``) on a model with
  no output trained on class labels, or ``data.sample_weight.output`` naming an
  unknown output.

Example:
    >>> errors = check_fit(loaded.experiment, loaded.locate)   # [] when sound
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable, Iterator, Optional

from trainctl.config.schema import Experiment
from trainctl.errors import ConfigError, Location, did_you_mean

Locate = Callable[[str], Location]

LR_CALLBACKS = ("ReduceLROnPlateau", "LearningRateScheduler")
# Callbacks that watch a logged value, with Keras's default for ``monitor``.
MONITORING = {"EarlyStopping": "val_loss", "ModelCheckpoint": "val_loss",
              "ReduceLROnPlateau": "val_loss"}
CLASS_KINDS = ("sparse", "onehot", "binary")


def check_fit(exp: Experiment, locate: Locate) -> list[ConfigError]:
    """Every problem of ``fit:`` (and the class weights of ``data:``) found without TensorFlow.

    Args:
        exp: a schema-valid experiment.
        locate: ``key -> Location`` for the messages.

    Returns:
        The errors, in no particular order (the caller sorts them by position).

    Example:
        >>> [str(e) for e in check_fit(exp, cfg.locate)]
        ['exp.yaml:9:5: compile.optimizer.learning_rate: a learning-rate schedule cannot ...']
    """
    return (check_lr_conflict(exp, locate) + check_monitors(exp, locate)
            + check_checkpoints(exp, locate) + check_tensorboard(exp, locate)
            + check_class_weights(exp, locate))


def _error(message: str, key: str, locate: Locate, hint: Optional[str] = None) -> ConfigError:
    return ConfigError(message, key=key, where=locate(key), hint=hint)


def callbacks(exp: Experiment) -> Iterator[tuple[str, str, dict]]:
    """``(key, class name, arguments)`` of each ``fit.callbacks`` item."""
    for i, spec in enumerate(exp.fit.callbacks):
        name, args = (spec, {}) if isinstance(spec, str) else (spec["type"], spec)
        yield f"fit.callbacks[{i}]", str(name).rpartition(":")[2], args


def check_lr_conflict(exp: Experiment, locate: Locate) -> list[ConfigError]:
    """A schedule as ``learning_rate`` cannot be combined with a callback that sets the rate."""
    opt = exp.compile.optimizer
    schedule = opt.get("learning_rate") if isinstance(opt, dict) else None
    if not (isinstance(schedule, dict) and "type" in schedule):
        return []
    errors = []
    for key, name, _ in callbacks(exp):
        if name in LR_CALLBACKS:
            errors.append(_error(
                f"a learning-rate schedule ({schedule['type']}) cannot be combined with "
                f"{name} at {key}: in Keras 3 the run fails with a TypeError mid-training, "
                "the first time the callback sets the rate", "compile.optimizer.learning_rate", locate,
                hint=f"give compile.optimizer.learning_rate a number and keep {name}, or drop "
                     f"{key} and keep the schedule"))
    return errors


def _has_validation(exp: Experiment) -> bool:
    return exp.data.validation is not None


def check_monitors(exp: Experiment, locate: Locate) -> list[ConfigError]:
    """``val_*`` monitors and ``fit.validation_steps`` need validation data."""
    if _has_validation(exp):
        return []
    hint = "add data.validation (holdout: N, split: 0.2, source:, or use_test: true)"
    watched = [(f"{key}.monitor" if "monitor" in args else key, args.get("monitor", default))
               for key, name, args in callbacks(exp)
               if (default := MONITORING.get(name)) is not None]
    if exp.fit.monitor:
        watched.append(("fit.monitor", exp.fit.monitor))
    errors = [_error(f"monitors {value!r}, but there is no validation data, so Keras never "
                     "logs it and the callback would silently do nothing", key, locate, hint)
              for key, value in watched if isinstance(value, str) and value.startswith("val_")]
    if exp.fit.validation_steps is not None:
        errors.append(_error("validation_steps is set, but there is no validation data",
                             "fit.validation_steps", locate, hint))
    return errors


def check_checkpoints(exp: Experiment, locate: Locate) -> list[ConfigError]:
    """ModelCheckpoint file names Keras 3 can write."""
    errors = []
    for key, name, args in callbacks(exp):
        path = args.get("filepath")
        if name != "ModelCheckpoint" or not isinstance(path, str):
            continue
        if args.get("save_weights_only") is True:
            if not path.endswith(".weights.h5"):
                errors.append(_error(
                    f"with save_weights_only Keras 3 writes only '.weights.h5' files; "
                    f"received {path!r}", f"{key}.filepath", locate,
                    hint="e.g. checkpoints/weights_{epoch}.weights.h5"))
        elif not path.endswith((".keras", ".h5")):
            errors.append(_error(
                f"Keras 3 saves whole models as '.keras' files; received {path!r}",
                f"{key}.filepath", locate,
                hint="e.g. checkpoints/model_{epoch}.keras, or save_weights_only: true with "
                     "a '.weights.h5' name"))
    return errors


def check_tensorboard(exp: Experiment, locate: Locate) -> list[ConfigError]:
    """A TensorBoard callback needs the tensorboard package (Keras 3 fails on the first batch)."""
    if importlib.util.find_spec("tensorboard") is not None:
        return []
    return [_error("the TensorBoard callback needs the 'tensorboard' package, which is not "
                   "installed", key, locate, hint="pip install tensorboard")
            for key, name, _ in callbacks(exp) if name == "TensorBoard"]


def output_losses(exp: Experiment) -> dict[str, Any]:
    """Each output's loss spec (None: no loss), by output name in model order."""
    from trainctl.config.validate import output_names

    names = output_names(exp)
    loss = exp.compile.loss
    if isinstance(loss, dict):
        return {n: loss.get(n) for n in names}
    if isinstance(loss, list) and len(names) > 1 and len(loss) == len(names):
        return dict(zip(names, loss))
    return {n: loss for n in names}


def check_class_weights(exp: Experiment, locate: Locate) -> list[ConfigError]:
    """Class weights need an output trained on class labels; ``output`` must name one."""
    sw = exp.data.sample_weight
    if not exp.fit.class_weight and sw is None:
        return []
    # imported only now: most configs have no class weights and need no trainctl.run
    from trainctl.run.plan import output_kind

    losses = output_losses(exp)
    with_classes = [n for n, loss in losses.items()
                    if loss is not None and output_kind(loss) in CLASS_KINDS]
    need = ("no output is trained on class labels (a sparse, categorical or binary "
            f"cross-entropy loss); outputs: {', '.join(losses)}")
    errors = []
    if exp.fit.class_weight and not with_classes:
        errors.append(_error(f"class weights need class labels: {need}", "fit.class_weight",
                             locate))
    if sw is None:
        return errors
    if sw.output is not None and sw.output not in losses:
        errors.append(_error(f"unknown output {sw.output!r}{did_you_mean(sw.output, losses)}; "
                             f"the model's outputs are: {', '.join(losses)}",
                             "data.sample_weight.output", locate))
    elif sw.output is not None and sw.output not in with_classes:
        errors.append(_error(f"output {sw.output!r} is not trained on class labels; outputs "
                             f"that are: {', '.join(with_classes) or 'none'}",
                             "data.sample_weight.output", locate))
    elif not with_classes:
        errors.append(_error(f"weights by class need class labels: {need}",
                             "data.sample_weight.by_class", locate))
    return errors
