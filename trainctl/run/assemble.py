"""The callbacks of a run: the user's ``fit.callbacks`` (output files kept inside the
run folder), then trainctl's own (history, checkpoints, divergence, signals,
TensorBoard, resumable state, epoch lines), in the order their hooks must run.

Example:
    >>> callbacks = run_callbacks(cfg, run, prep, resume=False)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainctl.artifacts import RunDir
from trainctl.config import LoadedConfig
from trainctl.errors import ConfigError


def run_callbacks(cfg: LoadedConfig, run: RunDir, prep: Any, *, stop: Any,
                  resume: bool, restore_optimizers: bool = True) -> list:
    """All callbacks of a run, in hook order.

    The user's ``fit.callbacks`` come first, then history files, the divergence
    guard, checkpoints, the signal check, TensorBoard (``runtime.tensorboard``), the
    resumable state, the epoch printer, the curves drawer (``runtime.plots``) and the
    MLflow tracker (``runtime.tracking``). The state saver comes after every callback
    whose state it saves, so each epoch's state includes their updates, and it
    restores a resumed run after their ``on_train_begin`` reset them.

    Args:
        cfg: the run's config.
        run: the run folder.
        prep: the prepared model and data (:class:`trainctl.run.prepare.Prepared`).
        stop: the :class:`~trainctl.run.callbacks.SignalStop` to check each step.
        resume: restore ``checkpoints/resume/`` when training begins.
        restore_optimizers: with ``resume``, the optimizers' state too.
    """
    from trainctl.run.callbacks import (DivergenceGuard, EpochPrinter, HistoryWriter,
                                        ResumableState)
    from trainctl.run.checkpointer import Checkpointer
    from trainctl.run.curves import CurvesCallback, wants_curves
    from trainctl.run.loss_weights import LossWeightScheduler, scheduled_of
    # shared with `trainctl runs` and sweeps (no Keras there)
    from trainctl.run.monitor import default_monitor, monitor_mode

    exp = cfg.experiment
    if prep.worker is not None and prep.worker.count > 1:
        from trainctl.run.workers import signal_agreement

        stop.agree_across(signal_agreement(prep.strategy))
    monitor = default_monitor(exp.fit.monitor, has_validation=prep.validation is not None)
    callbacks = user_callbacks(cfg, run)
    if resume:
        continue_files(callbacks, prep.initial_epoch)
    own = len(callbacks)  # trainctl's own callbacks follow
    if scheduled_of(prep.model):  # first: its loss_weight/<output> logs reach the history
        callbacks.append(LossWeightScheduler())
    writer = background_writer(cfg, run)
    # checkpoints are saved beside the validation (or the test evaluation) only when
    # nothing but the training steps changes the weights
    checkpoint_writer = None if weights_change_outside_steps(cfg, prep.model) else writer
    callbacks += [HistoryWriter(run, resume=resume), DivergenceGuard(),
                  Checkpointer(run, monitor, monitor_mode(monitor),
                               keep=exp.fit.keep_checkpoints, writer=checkpoint_writer),
                  stop]
    if exp.runtime.tensorboard:
        callbacks.append(tensorboard_callback(cfg, run))
    callbacks.append(ResumableState(run, list(callbacks), resume=resume,
                                    optimizers=restore_optimizers, writer=writer))
    callbacks.append(EpochPrinter(prep.plan.epochs))
    # After the state saver, which saves callbacks by position; neither runs on a
    # multi-worker run's other workers (their files are a scratch copy).
    chief = run.path == run.shown
    if wants_curves(exp.runtime, smoke=prep.plan.smoke) and chief:
        callbacks.append(CurvesCallback(run))
    if exp.runtime.tracking.mlflow is not None and chief and prep.plan.smoke:
        # a check of the config, not a result: kept out of the team's MLflow store
        print("note: MLflow tracking is off at smoke size (runtime.tracking.mlflow)",
              flush=True)
    elif exp.runtime.tracking.mlflow is not None and chief:
        from trainctl.run.tracking import MlflowTracker

        callbacks.append(MlflowTracker(run, exp.runtime.tracking.mlflow, cfg.raw,
                                       experiment=cfg.run_name))
    from trainctl.sweep.trial import trial_callbacks

    callbacks += trial_callbacks(run)  # a sweep's trial: report each epoch, stop when pruned
    for callback in callbacks[own:]:
        time_hooks(callback)
    return callbacks


def weights_change_outside_steps(cfg: LoadedConfig, model: Any) -> bool:
    """Whether something besides the training steps may change the weights: a user
    callback (EarlyStopping's restore_best_weights when training ends, SwapEMAWeights
    around validation), an optimizer's EMA (swapped in when training ends)."""
    return bool(cfg.experiment.fit.callbacks) or optimizer_uses_ema(
        getattr(model, "optimizer", None))


def optimizer_uses_ema(optimizer: Any) -> bool:
    """Whether fit ends by swapping in EMA weights (``use_ema``), also for an optimizer
    wrapped in mixed_float16's LossScaleOptimizer."""
    inner = getattr(optimizer, "inner_optimizer", None)
    return any(bool(getattr(o, "use_ema", False)) for o in (optimizer, inner))


def background_writer(cfg: LoadedConfig, run: RunDir) -> Any:
    """The run's :class:`~trainctl.run.writer.BackgroundWriter`, or None under a
    tf.distribute strategy, whose variables are read on the training thread only."""
    from trainctl.run.writer import BackgroundWriter

    if cfg.experiment.runtime.distribution.strategy != "default":
        return None
    return BackgroundWriter.of(run)


# Hooks whose time is trainctl's own work (run.json ``timings.callbacks``). The batch
# hooks are left out: they cost a float comparison, but timing them would count the
# wait for the step that a loss read implies as trainctl's.
TIMED_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
               "on_test_begin")


def time_hooks(callback: Any) -> None:
    """Count the time of ``callback``'s own epoch-level hooks as phase ``callbacks``."""
    import keras

    from trainctl.run.timing import timed

    for hook in TIMED_HOOKS:
        if getattr(type(callback), hook) is not getattr(keras.callbacks.Callback, hook):
            setattr(callback, hook, timed("callbacks", getattr(callback, hook)))


def continue_files(callbacks: list, epochs_done: int) -> None:
    """On resume, a CSVLogger carries on in its file: cut to the header and the rows of
    the ``epochs_done`` finished epochs (a kill between its write and the state's may
    have left one more), then appended to (Keras's ``append=False`` would drop them)."""
    import keras

    from trainctl.artifacts import keep_csv_rows

    for callback in callbacks:
        if isinstance(callback, keras.callbacks.CSVLogger):
            callback.append = True
            keep_csv_rows(callback.filename, epochs_done)


# Constructor arguments that name an output file: a relative one lands in the run folder.
PATH_ARGS = ("filepath", "filename", "log_dir", "backup_dir")


def user_callbacks(cfg: LoadedConfig, run: RunDir) -> list:
    """``fit.callbacks`` built from the registry, their output files inside the run folder."""
    from trainctl.registry import get_registry

    built = []
    for i, spec in enumerate(cfg.experiment.fit.callbacks):
        key = f"fit.callbacks[{i}]"
        if isinstance(spec, dict):
            spec = {k: (in_run(run, v, key=f"{key}.{k}", where=cfg.locate(f"{key}.{k}"))
                        if k in PATH_ARGS and isinstance(v, str) else v)
                    for k, v in spec.items()}
        built.append(get_registry("callback").build(spec, key=key, where=cfg.locate(key),
                                                     locate=cfg.locate))
    return built


def in_run(run: RunDir, value: str, *, key: str, where: Any) -> str:
    """A relative output path resolved inside the run folder (its parents created).

    A relative path may not climb out of the run folder: ``../../x`` is a ConfigError.
    """
    path = Path(value)
    if path.is_absolute():
        return value
    target = (run.path / path).resolve()
    if not target.is_relative_to(run.path.resolve()):
        raise ConfigError(f"relative output path {value!r} leaves the run folder",
                          key=key, where=where,
                          hint="give a path inside the run folder, or an absolute path")
    target.parent.mkdir(parents=True, exist_ok=True)
    return str(target)


def tensorboard_callback(cfg: LoadedConfig, run: RunDir) -> Any:
    """Keras's TensorBoard callback writing under ``<run>/tensorboard``."""
    from trainctl.registry import get_registry

    options = cfg.experiment.runtime.tensorboard
    args = dict(options) if isinstance(options, dict) else {}
    args["log_dir"] = in_run(run, args.get("log_dir", "tensorboard"), key="runtime.tensorboard",
                             where=cfg.locate("runtime.tensorboard.log_dir"))
    return get_registry("callback").build({"type": "TensorBoard", **args},
                                          key="runtime.tensorboard",
                                          where=cfg.locate("runtime.tensorboard"))
