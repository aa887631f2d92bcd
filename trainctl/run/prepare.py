"""Everything before training: the model built and compiled, the data loaded and checked.

Nothing here writes a file: whatever can be wrong with the config or the data is
found before the run folder exists (:mod:`trainctl.run.fit`), so a bad input
leaves nothing behind. Shared by ``fit``, ``resume`` and ``reproduce``.

Example:
    >>> prep = prepare(load_config("configs/mnist.yaml"), smoke=True)
    >>> prep.model.fit(prep.train, steps_per_epoch=prep.steps_per_epoch, epochs=1)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from trainctl.config import LoadedConfig
from trainctl.errors import ConfigError, RunFailed
from trainctl.run.execution import apply as apply_steps_per_execution
from trainctl.run.plan import Plan, make_plan, signature
from trainctl.run.runtime import configure_for, import_tensorflow
from trainctl.run.timing import phase
from trainctl.run.workers import peer_failure


@dataclass
class Prepared:
    """A compiled model with its data, ready to train."""

    model: Any
    plan: Plan
    splits: Any
    train: Any
    validation: Any
    test: Any
    plugins: list
    distribution: dict
    seed: int
    steps_per_epoch: int
    initial_epoch: int = 0
    steps_per_execution: int = 1
    loop: Any = None  # the CustomLoop of fit.loop: custom; None: model.fit
    strategy: Any = None
    worker: Any = None  # a multi-worker run's trainctl.run.workers.Role; None otherwise
    weights_from: Any = None  # what model.weights_from loaded, for run.json (trainctl.transfer)


def prepare(cfg: LoadedConfig, *, smoke: bool, seed: int | None = None, plan: Plan | None = None,
            initial_epoch: int = 0, verbose: bool = False) -> Prepared:
    """Build and compile the model and load and check the data: everything before training.

    Args:
        cfg: the config.
        smoke: smoke sizes (:func:`trainctl.run.plan.make_plan`).
        seed: the run's seed (default: the config's, else a drawn one): weights,
            dropout and the data order all follow from it.
        plan: the sizes, when resuming (the run's own); default: from the config.
        initial_epoch: the first epoch to run; the training stream starts there.
    """
    from trainctl.build import build_model, compile_model
    from trainctl.data import (batches_per_pass, check_against_model, load_splits, make_dataset,
                               make_stream, weigh_splits)
    from trainctl.plugins import import_plugins
    from trainctl.run.state import build_optimizers
    from trainctl.transfer.load import load_weights_from

    exp = cfg.experiment
    seed = draw_seed(exp.seed) if seed is None else seed
    with phase("import"):
        import_tensorflow(verbose)
    with phase("build"):
        plugins = import_plugins(list(exp.imports), config_dir=cfg.config_dir,
                                 locate=cfg.locate)
        strategy = configure_for(cfg, seed=seed)
        with strategy.scope():
            model = build_model(exp, cfg.locate)
            compile_model(model, exp, cfg.locate)
            weights_from = load_weights_from(model, cfg, smoke=smoke, initial_epoch=initial_epoch)
        plan = plan or make_plan(cfg, smoke=smoke)
        sig = signature(model, cfg)
    with phase("data"):
        splits = load_splits(exp.data, config_dir=cfg.config_dir, signature=sig, seed=seed,
                             locate=cfg.locate)
    with phase("checks"):
        check_against_model(splits, sig, locate=cfg.locate)
    with phase("data"):
        # Class weights become sample weights here, for both loops: Keras 3 rejects
        # class_weight for several outputs and next to sample weights in the data.
        splits = weigh_splits(splits, sig, sample_weight=exp.data.sample_weight,
                              class_weight=exp.fit.class_weight, locate=cfg.locate)
    cap = 2 if smoke else None

    def dataset(split, batch_size):
        if split is None:
            return None
        return make_dataset(split, batch_size=batch_size, shuffle=False, take_batches=cap,
                            outputs=list(sig.outputs), prefetch=exp.runtime.prefetch,
                            cache=exp.runtime.cache)

    # One endless stream read steps_per_epoch at a time: the data order is a function
    # of (seed, epoch), so a resumed run sees what an uninterrupted one would have.
    steps = plan.steps_per_epoch or batches_per_pass(len(splits.train), plan.batch_size)
    worker = multi_worker_role(cfg)
    custom = exp.fit.loop == "custom" or worker is not None
    if custom:
        refuse_own_train_step(cfg, model)
    # Keras's grouped train function fails under several replicas; the custom loop's does not
    per_call = choose_steps_per_execution(cfg, plan, steps,
                                          1 if custom else strategy.num_replicas_in_sync)
    apply_steps_per_execution(model, per_call)
    loop = None
    if custom:
        from trainctl.run.loop import CustomLoop

        loop = CustomLoop(model, log_every=exp.fit.log_every)
    with phase("compile"):
        logged = check_one_batch(model, loop, splits.train, plan.batch_size,
                                 list(sig.outputs), cfg)
        # fit would at its first step; the resumable state saved when training begins
        # needs the slots, and this is Keras's work, not trainctl's (timings.compile)
        build_optimizers(model)
    with phase("checks"):
        check_watched(cfg, model, logged, has_validation=splits.validation is not None)
    with phase("data"):
        train = make_stream(splits.train, batch_size=plan.batch_size, shuffle=exp.data.shuffle,
                            seed=seed, skip_batches=initial_epoch * steps,
                            outputs=list(sig.outputs), prefetch=exp.runtime.prefetch)
        validation = dataset(splits.validation, plan.batch_size)
        test = dataset(splits.test, plan.test_batch_size)
    return Prepared(model=model, plan=plan, splits=splits, train=train,
                    validation=validation, test=test,
                    plugins=plugins,
                    distribution=describe_distribution(strategy, worker, plan.batch_size),
                    seed=seed, steps_per_epoch=steps, initial_epoch=initial_epoch,
                    steps_per_execution=per_call, loop=loop, strategy=strategy, worker=worker,
                    weights_from=weights_from)


def multi_worker_role(cfg: LoadedConfig) -> Any:
    """This worker's Role in a ``multi_worker`` run (None for other strategies)."""
    from trainctl.run.workers import role

    if cfg.experiment.runtime.distribution.strategy != "multi_worker":
        return None
    return role()


def refuse_own_train_step(cfg: LoadedConfig, model: Any) -> None:
    """The custom loop (``fit.loop: custom``, and every multi_worker run: Keras 3's
    ``model.fit`` cannot run under MultiWorkerMirroredStrategy) runs its own step, never
    a model's ``train_step`` (S19, a GAN's): such a model would train wrongly.

    Raises:
        ConfigError: the model overrides ``train_step``.
    """
    import keras

    if type(model).train_step is keras.Model.train_step:
        return
    multi = cfg.experiment.runtime.distribution.strategy == "multi_worker"
    key = "runtime.distribution.strategy" if multi else "fit.loop"
    raise ConfigError(f"{'multi_worker trains with ' if multi else ''}trainctl's custom loop, "
                      f"which does not call {type(model).__name__}.train_step",
                      key=key, where=cfg.locate(key),
                      hint="use strategy mirrored (one machine) for a model with its own "
                           "train_step" if multi else "use fit.loop: keras, which calls it")


def describe_distribution(strategy: Any, worker: Any, batch_size: int) -> dict:
    """run.json's ``distribution``: the strategy, its replicas and, for several workers,
    how each global batch is split (``fit.batch_size`` is the global batch)."""
    replicas = strategy.num_replicas_in_sync
    out = {"strategy": type(strategy).__name__, "replicas": replicas}
    if worker is not None:
        out["strategy"] = "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
        # Every global batch is split over the workers' replicas (tf.data's DATA policy:
        # the loop's datasets are in-memory, so there are no files to shard by)
        out.update(workers=worker.count, global_batch_size=batch_size,
                   per_replica_batch_size=-(-batch_size // replicas), auto_shard="DATA")
    return out


def choose_steps_per_execution(cfg: LoadedConfig, plan: Plan, steps: int,
                               replicas: int = 1) -> int:
    """``compile.steps_per_execution`` for this run (``auto`` resolved: run.execution)."""
    from trainctl.run.execution import choose, user_callback_classes

    exp = cfg.experiment
    others = [] if plan.smoke else [plan.validation_steps, plan.test_steps]
    return choose(exp.compile.steps_per_execution, steps_per_epoch=steps, other_steps=others,
                  callbacks=user_callback_classes(cfg), replicas=replicas)


def check_one_batch(model: Any, loop: Any, split: Any, batch_size: int, outputs: list[str],
                    cfg: LoadedConfig) -> list[str]:
    """Evaluate loss and metrics on the first training batch before the run starts.

    A loss or metric that does not fit its output (shapes, dtypes), or that cannot
    run inside a compiled function, then fails here as a config error (exit 2, no
    run folder) instead of as a crash after training started. It runs the test
    function validation uses (``model.evaluate``, or the custom loop's), on a batch
    shaped like validation's: that function's trace is kept and validation reuses
    it, so the check costs one batch, not one trace. No weights change.

    Returns:
        The names the model logs (``loss``, its metrics; no ``val_`` prefix).
    """
    from trainctl.data import make_dataset

    head = split.take(slice(0, min(batch_size, len(split))))
    batch = make_dataset(head, batch_size=batch_size, outputs=outputs)
    try:
        if loop is not None:
            logs = loop.evaluate(batch)
        else:
            logs = model.evaluate(batch, verbose=0, return_dict=True)
        model.reset_metrics()
    except Exception as exc:
        lost = peer_failure(exc) if cfg.experiment.runtime.distribution.strategy == \
            "multi_worker" else None
        if lost:
            raise RunFailed(lost) from None
        from trainctl.diagnose import exception_text

        first = exception_text(exc, lines=2)[:400]
        raise ConfigError(f"the loss or metrics do not fit the model's outputs and the data: "
                          f"{type(exc).__name__}: {first}", key="compile",
                          where=cfg.locate("compile"),
                          hint="check each output's loss and metrics against its targets "
                               "(sparse labels vs one-hot, output shapes)") from None
    return list(logs)


def check_watched(cfg: LoadedConfig, model: Any, logged: list[str], *,
                  has_validation: bool) -> None:
    """Every value the run watches (``fit.monitor``, a callback's ``monitor``, a sweep
    trial's objective) is one it logs: a typo would otherwise pass unnoticed (Keras's
    callbacks warn each epoch and never act; best.keras is never written) or fail after
    the first epoch.

    When the model has its own ``train_step`` or a callback of the user's may add to the
    logs, the run may log more than ``logged``: a warning then, not an error.

    Raises:
        ConfigError: a watched name the run will not log (with the names it logs).
    """
    import sys

    import keras

    from trainctl.run.execution import user_callback_classes
    from trainctl.run.monitor import unknown_watched, watched
    from trainctl.sweep.trial import current_trial

    trial = (current_trial() or {}).get("metric")
    problems = unknown_watched(watched(cfg, trial), logged, has_validation=has_validation)
    if not problems:
        return
    own = [cls.__name__ for cls, _ in user_callback_classes(cfg)
           if not cls.__module__.startswith(("keras", "trainctl."))]
    may_log_more = own or type(model).train_step is not keras.Model.train_step
    for key, _, why in problems:
        if may_log_more:
            source = (f"a callback of yours ({', '.join(own)})" if own else
                      f"{type(model).__name__}.train_step")
            print(f"warning: {cfg.locate(key)}: {key}: {why} (unless {source} logs it)",
                  file=sys.stderr, flush=True)
        else:
            raise ConfigError(why, key=key, where=cfg.locate(key),
                              hint="watch one of the names the run logs; validation values "
                                   "carry the val_ prefix")


def draw_seed(seed: int | None) -> int:
    """The config's seed, or a fresh one recorded in run.json (so any run can be
    resumed in the same data order and reproduced)."""
    return seed if seed is not None else secrets.randbelow(2**31)
