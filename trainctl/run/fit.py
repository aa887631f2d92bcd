"""``trainctl fit``: the run folder, training (``model.fit`` or the custom loop), the test
evaluation and the run's final status.

Everything that can be wrong with the config or the data is found first, by
:func:`trainctl.run.prepare.prepare`, before the run folder is created, so a bad
input leaves nothing behind; once training starts, every way out (completed,
failed, interrupted) is recorded in run.json.

Example:
    >>> run_path = fit(load_config("configs/mnist.yaml"), runs_dir=Path("runs"))
"""

from __future__ import annotations

import functools
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from trainctl.artifacts import RunDir, copy_file, now, prefetch_git_state
from trainctl.config import LoadedConfig
from trainctl.errors import ConfigError, Interrupted, RunFailed, as_interrupted
from trainctl.keras_saving import save_keras
from trainctl.run.interrupt import new_stop, stop_on_signals
from trainctl.run.lock import hold
from trainctl.run.plan import Plan
from trainctl.run.prepare import Prepared, draw_seed, prepare
from trainctl.run.runtime import import_tensorflow
from trainctl.run.start import start_shared_run
from trainctl.run.workers import peer_failure, remove_scratch
from trainctl.run.timing import phase, timings


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
        stop.check()  # a signal after the last step (on_train_end, ...); agreed by workers
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
    # step: where it was seen; first_step: the earliest it can have happened (a group)
    run.update_run(diverged_at={"epoch": exc.epoch + 1, "step": exc.step + 1,
                                "first_step": exc.first + 1})
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
        complete(prep, run, last_is_final=last_is_final(cfg, prep, callbacks), stop=stop)
    except (KeyboardInterrupt, Interrupted) as exc:
        exc = as_interrupted(exc)
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
    from trainctl.run.checkpointer import discard_pending
    from trainctl.run.curves import settle_curves
    from trainctl.run.start import settle
    from trainctl.status import FINISHED
    from trainctl.sweep.trial import pruned_status

    try:
        with phase("status"):
            info = run.read_json("run.json")
            pruned = pruned_status(info) if status == "completed" else None
            if pruned:
                # a sweep's pruner stopped it (trainctl.sweep.trial): say so in the one
                # final write, so run.json never shows the trial as completed meanwhile
                status, reason = "pruned", pruned
            done = status in FINISHED  # trained and saved to the end
            notes = settle(run, timeout=30.0 if done else 3.0)
            discard_pending(run)  # a checkpoint saved for an epoch that did not end
            notes += settle_curves(run, keep=done)
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
    prefetch_git_state(cfg.config_dir)  # for run.json: git runs while TensorFlow loads
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
    with nothing that changes weights at the end of training."""
    from trainctl.run.assemble import weights_change_outside_steps
    from trainctl.run.checkpointer import Checkpointer

    if weights_change_outside_steps(cfg, prep.model):
        return False
    return any(isinstance(c, Checkpointer) and c.holds_final() for c in callbacks)


def save_model(model: Any, run: RunDir, last_is_final: bool) -> None:
    """model.keras: a copy of checkpoints/last.keras when that is the final model (see
    :func:`last_is_final`), else ``model.save``."""
    last = run.file("checkpoints") / "last.keras"
    if last_is_final and last.is_file():
        copy_file(last, run.file("model.keras"))
    else:
        save_keras(model, run.file("model.keras"))


def complete(prep: Prepared, run: RunDir, *, last_is_final: bool = False,
             stop: Any = None) -> None:
    """After training: model.keras, the test metrics, status completed.

    With ``last_is_final``, model.keras is a copy of checkpoints/last.keras instead
    of a second serialisation of the same model. Once the test metrics are written the
    run is complete: a signal (``stop``, the run's SignalStop) no longer interrupts it;
    a second Ctrl-C only cuts short the wait for its pictures (a note in run.json).
    """
    from trainctl.run.console import format_metrics
    from trainctl.run.curves import request_curves
    from trainctl.run.writer import BackgroundWriter

    request_curves(run)  # curves.png is drawn by its child process while we save and evaluate
    # the training's writer thread (if any) saves model.keras during the evaluation,
    # which changes no weight
    writer = BackgroundWriter.attached(run)
    try:
        with phase("save"):
            save = functools.partial(save_model, prep.model, run, last_is_final)
            if writer is None:
                save()
            else:
                writer.submit(save)
        with phase("evaluate"):
            metrics = evaluate_test(prep)
        with phase("save"):
            if writer is not None:
                writer.wait()  # every file whole before the run is called complete
            if metrics is not None:
                run.write_json("metrics.json", metrics)
    except Interrupted:
        raise
    except Exception as exc:  # e.g. a full disk: the run must not stay "running"
        finish(run, "failed", f"{type(exc).__name__}: {exc}")
        raise RunFailed(f"saving or evaluating the trained model failed: "
                        f"{type(exc).__name__}: {exc}") from None
    with stop.deferred() if stop is not None else nullcontext():
        if metrics is not None:
            print(f"test - {format_metrics(metrics)}", flush=True)
        else:
            print("note: no test split (the source has none, or data.test: false): no test "
                  "evaluation, no metrics.json", flush=True)
        finish(run, "completed", None)

