"""``trainctl fit``: build, load data, train with ``model.fit``, evaluate, write the run.

Everything that can be wrong with the config or the data is found before the
run folder is created, so a bad input leaves nothing behind; once training
starts, every way out (completed, failed, interrupted) is recorded in run.json.

Example:
    >>> run_path = fit(load_config("configs/mnist.yaml"), runs_dir=Path("runs"))
"""

from __future__ import annotations

import secrets
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainctl.artifacts import RunDir, copy_file, now, save_keras
from trainctl.config import LoadedConfig
from trainctl.errors import ConfigError, ExitCode, Interrupted, RunFailed
from trainctl.run.execution import apply as apply_steps_per_execution
from trainctl.run.interrupt import new_stop, stop_on_signals
from trainctl.run.lock import hold
from trainctl.run.plan import Plan, make_plan, signature
from trainctl.run.runtime import configure_for, import_tensorflow
from trainctl.run.start import start_shared_run
from trainctl.run.workers import peer_failure, remove_scratch
from trainctl.run.timing import phase, timings


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
        check_one_batch(model, loop, splits.train, plan.batch_size, list(sig.outputs), cfg)
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
                    cfg: LoadedConfig) -> None:
    """Evaluate loss and metrics on the first training batch before the run starts.

    A loss or metric that does not fit its output (shapes, dtypes), or that cannot
    run inside a compiled function, then fails here as a config error (exit 2, no
    run folder) instead of as a crash after training started. It runs the test
    function validation uses (``model.evaluate``, or the custom loop's), on a batch
    shaped like validation's: that function's trace is kept and validation reuses
    it, so the check costs one batch, not one trace. No weights change.
    """
    from trainctl.data import make_dataset

    head = split.take(slice(0, min(batch_size, len(split))))
    batch = make_dataset(head, batch_size=batch_size, outputs=outputs)
    try:
        if loop is not None:
            loop.evaluate(batch)
        else:
            model.evaluate(batch, verbose=0)
        model.reset_metrics()
    except Exception as exc:
        lost = peer_failure(exc) if cfg.experiment.runtime.distribution.strategy == \
            "multi_worker" else None
        if lost:
            raise RunFailed(lost) from None
        first = " ".join(str(exc).strip().splitlines()[:2])[:400]
        raise ConfigError(f"the loss or metrics do not fit the model's outputs and the data: "
                          f"{type(exc).__name__}: {first}", key="compile",
                          where=cfg.locate("compile"),
                          hint="check each output's loss and metrics against its targets "
                               "(sparse labels vs one-hot, output shapes)") from None


def train(cfg: LoadedConfig, prep: Prepared, run: RunDir, *, stop: Any, resume: bool = False,
          restore_optimizers: bool = True) -> list:
    """``model.fit`` (or the custom loop) with trainctl's callbacks; record how it ended.

    Args:
        cfg: the config.
        prep: model and data; ``prep.initial_epoch`` is where training starts.
        run: the run folder.
        stop: the SignalStop the signal handlers report to.
        resume: restore the run's saved state first (``trainctl resume``).
        restore_optimizers: with ``resume``, the optimizers' state too.

    Returns:
        The run's callbacks.

    Raises:
        RunFailed: training crashed or diverged (status failed, exit 1).
        Interrupted / KeyboardInterrupt: a signal; :func:`run_to_end` records it.
    """
    from trainctl.run.assemble import run_callbacks
    from trainctl.run.callbacks import Diverged

    try:
        callbacks = run_callbacks(cfg, run, prep, stop=stop, resume=resume,
                                  restore_optimizers=restore_optimizers)
    except ConfigError as exc:  # e.g. a callback's constructor refused its arguments
        finish(run, "failed", str(exc))
        raise
    plan = prep.plan
    started = time.perf_counter()
    try:
        with stop.deferred():
            fit_fn = prep.loop.fit if prep.loop is not None else prep.model.fit
            with phase("fit"):
                history = fit_fn(prep.train, epochs=plan.epochs, initial_epoch=prep.initial_epoch,
                                 steps_per_epoch=prep.steps_per_epoch,
                                 validation_data=prep.validation,
                                 validation_steps=None if plan.smoke else plan.validation_steps,
                                 validation_freq=cfg.experiment.fit.validation_freq,
                                 callbacks=callbacks,  # class weights are in the data
                                 shuffle=False, verbose=0)  # the stream is ordered already
        if stop.signal_name is not None:  # it came after the last step (on_train_end, ...)
            raise stop.interrupted()
    except (KeyboardInterrupt, Interrupted):
        raise
    except Diverged as exc:
        diverged(run, exc)
    except Exception as exc:
        write_quietly(run.file("error.txt"), traceback.format_exc())
        finish(run, "failed", f"{type(exc).__name__}: {exc}")
        lost = peer_failure(exc) if prep.worker is not None else None
        if lost:
            raise RunFailed(f"training failed: {lost}\n  hint: once every worker has "
                            f"stopped, continue with `trainctl resume {run.shown} --workers "
                            f"{prep.worker.count}` (any number of workers)\n"
                            f"  traceback: {run.file('error.txt')}") from None
        raise RunFailed(f"training failed: {type(exc).__name__}: {exc}\n"
                        f"  traceback: {run.file('error.txt')}") from None
    # model.fit's wall time, for benchmarks/ (run.json only: history stays timing-free)
    run.update_run(fit_seconds=round(time.perf_counter() - started, 3))
    done = prep.initial_epoch + (len(history.epoch) if history is not None else 0)
    if done < plan.epochs:  # a callback (EarlyStopping, ...) set stop_training
        print(f"stopped early after epoch {done} of {plan.epochs}", flush=True)
        run.update_run(stopped_early_after_epoch=done)
    return callbacks


def diverged(run: RunDir, exc: Any) -> None:
    """Record a NaN/inf loss (status failed, epoch and step) and raise RunFailed."""
    finish(run, "failed", str(exc))
    run.update_run(diverged_at={"epoch": exc.epoch + 1, "step": exc.step + 1})
    last = run.file("checkpoints") / "last.keras"
    where = (f"the last good checkpoint is {last}" if last.is_file() else
             f"no epoch finished; the starting state is in {run.file('checkpoints')}/resume")
    raise RunFailed(f"{exc}; {where}") from None


def run_to_end(cfg: LoadedConfig, prep: Prepared, run: RunDir, stop: Any, *,
               resume: bool = False, restore_optimizers: bool = True) -> None:
    """Train, save and evaluate; a signal at any point marks the run interrupted.

    Raises:
        Interrupted: exit 130 (SIGINT) or 143 (SIGTERM), with how to resume.
    """
    try:
        callbacks = train(cfg, prep, run, stop=stop, resume=resume,
                          restore_optimizers=restore_optimizers)
        if prep.worker is not None:
            report_weights(prep, run)
        complete(prep, run, last_is_final=last_is_final(cfg, prep, callbacks))
    except (KeyboardInterrupt, Interrupted) as exc:
        if not isinstance(exc, Interrupted):
            exc = Interrupted("interrupted by SIGINT", ExitCode.INTERRUPTED)
        finish(run, "interrupted", str(exc))
        raise Interrupted(f"{exc}; the run stopped cleanly: continue it with "
                          f"`trainctl resume {run.shown}`", exc.exit_code) from None


def report_weights(prep: Prepared, run: RunDir) -> None:
    """Print (and record in run.json) a digest of the final weights: every worker of a
    multi-worker run prints its own, and in-step workers print the same."""
    from trainctl.run.workers import weights_digest

    digest = weights_digest(prep.model)
    print(f"{prep.worker}: final weights sha256 {digest}", flush=True)
    run.update_run(weights_sha256=digest)


def write_quietly(path: Path, text: str) -> None:
    """Best effort (the disk may be full): the run's status matters more than this file."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError:
        pass


def finish(run: RunDir, status: str, reason: str | None) -> None:
    """Set the final status in run.json (and of the current attempt).

    A failure to write it (a full disk) is reported on stderr, not raised: the
    error that ended the run is the one to report.
    """
    from trainctl.run.curves import settle_curves
    from trainctl.run.start import settle

    try:
        with phase("status"):
            notes = settle(run, timeout=30.0 if status == "completed" else 3.0)
            notes += settle_curves(run, keep=status == "completed")
            info = run.read_json("run.json")
            end = now()
            attempts = info.get("attempts") or [{}]
            attempts[-1].update(end=end, status=status)
            if notes:
                for note in notes:
                    print(f"note: {note}", flush=True)
                notes = {"notes": [*info.get("notes", []), *notes]}
        run.update_run(status=status, exit_reason=reason, end=end, attempts=attempts,
                       timings=timings(), **(notes or {}))
        close_tracking_of(run, status)
    except Exception as exc:  # noqa: BLE001 - anything here would hide the real error
        print(f"warning: could not record status {status!r} in {run.file('run.json')}: {exc}",
              file=sys.stderr, flush=True)


def close_tracking_of(run: RunDir, status: str) -> None:
    """End the run's MLflow run, after its final run.json (logged with its folder)."""
    from trainctl.run.tracking import close_tracking

    notes = close_tracking(run, status)
    if notes:
        run.update_run(notes=[*run.read_json("run.json").get("notes", []), *notes])


def evaluate_test(prep: Prepared) -> dict[str, float] | None:
    """Metrics on the test split under Keras's names, or None without a test split."""
    if prep.test is None:
        return None
    if prep.worker is not None:  # model.evaluate cannot run under several workers either
        return prep.loop.evaluate(prep.test, steps=None if prep.plan.smoke else
                                  prep.plan.test_steps)
    result = prep.model.evaluate(prep.test, steps=None if prep.plan.smoke else prep.plan.test_steps,
                                 return_dict=True, verbose=0)
    return {k: float(v) for k, v in result.items()}


def draw_seed(seed: int | None) -> int:
    """The config's seed, or a fresh one recorded in run.json (so any run can be
    resumed in the same data order and reproduced)."""
    return seed if seed is not None else secrets.randbelow(2**31)


def fit(cfg: LoadedConfig, *, runs_dir: Path, name: str | None = None, smoke: bool = False,
        verbose: bool = False, seed: int | None = None, plan: Plan | None = None,
        exact_name: bool = False) -> RunDir:
    """Train ``cfg`` and write a complete run folder; return it.

    Args:
        cfg: the config.
        runs_dir: where the run folder goes.
        name: the run's name (default: the config's).
        smoke: smoke sizes.
        verbose: TensorFlow's start-up messages.
        seed: the seed (default: the config's, else a drawn one); ``reproduce`` passes
            the original run's.
        plan: the sizes (default: from the config); ``reproduce`` passes the original's.
        exact_name: the run folder is ``runs_dir/name`` exactly (a sweep's ``trial-003``).
    """
    with phase("import"):
        import_tensorflow(verbose)  # first: anything below may import Keras
    seed = seed if seed is not None else draw_seed(cfg.experiment.seed)
    stop = new_stop()
    run = None
    try:
        with stop_on_signals(stop):  # before the folder exists: no folder is left behind
            prep = prepare(cfg, smoke=smoke, seed=seed, plan=plan, verbose=verbose)
            with phase("run_dir"):
                run = start_shared_run(cfg, prep, runs_dir=runs_dir, name=name,
                                       exact=exact_name)
            print(f"run: {run.shown}", flush=True)
            with hold(run.path):
                run_to_end(cfg, prep, run, stop)
    finally:
        if run is not None and run.path != run.shown:  # a worker's scratch copy
            remove_scratch(run.path.parent)
    return RunDir(run.shown)


def last_is_final(cfg: LoadedConfig, prep: Prepared, callbacks: list) -> bool:
    """Whether checkpoints/last.keras is the final model: saved after the last step,
    with nothing that changes weights at the end of training (a user callback, such
    as EarlyStopping's restore_best_weights; an optimizer's EMA)."""
    from trainctl.run.callbacks import Checkpointer

    if cfg.experiment.fit.callbacks or optimizer_uses_ema(getattr(prep.model, "optimizer", None)):
        return False
    return any(isinstance(c, Checkpointer) and c.holds_final() for c in callbacks)


def optimizer_uses_ema(optimizer: Any) -> bool:
    """Whether fit ends by swapping in EMA weights (``use_ema``), also for an optimizer
    wrapped in mixed_float16's LossScaleOptimizer."""
    inner = getattr(optimizer, "inner_optimizer", None)
    return any(bool(getattr(o, "use_ema", False)) for o in (optimizer, inner))


def complete(prep: Prepared, run: RunDir, *, last_is_final: bool = False) -> None:
    """After training: model.keras, the test metrics, status completed.

    With ``last_is_final``, model.keras is a copy of checkpoints/last.keras instead
    of a second serialisation of the same model.
    """
    from trainctl.run.console import format_metrics
    from trainctl.run.curves import request_curves

    request_curves(run)  # curves.png is drawn by its child process while we save and evaluate
    try:
        with phase("save"):
            last = run.file("checkpoints") / "last.keras"
            if last_is_final and last.is_file():
                copy_file(last, run.file("model.keras"))
            else:
                save_keras(prep.model, run.file("model.keras"))
        with phase("evaluate"):
            metrics = evaluate_test(prep)
        if metrics is not None:
            with phase("save"):
                run.write_json("metrics.json", metrics)
    except Interrupted:
        raise
    except Exception as exc:  # e.g. a full disk: the run must not stay "running"
        finish(run, "failed", f"{type(exc).__name__}: {exc}")
        raise RunFailed(f"saving or evaluating the trained model failed: "
                        f"{type(exc).__name__}: {exc}") from None
    if metrics is not None:
        print(f"test - {format_metrics(metrics)}", flush=True)
    finish(run, "completed", None)

