"""``trainctl fit``: build, load data, train with ``model.fit``, evaluate, write the run.

Everything that can be wrong with the config or the data is found before the
run folder is created, so a bad input leaves nothing behind; once training
starts, every way out (completed, failed, interrupted) is recorded in run.json.

Example:
    >>> run_path = fit(load_config("configs/mnist.yaml"), runs_dir=Path("runs"))
"""

from __future__ import annotations

import signal
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from trainctl.artifacts import RunDir, command_line, git_state, now, versions
from trainctl.config import LoadedConfig
from trainctl.errors import ConfigError, ExitCode, Interrupted, RunFailed
from trainctl.run.plan import Plan, make_plan, signature
from trainctl.run.runtime import configure, import_tensorflow


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


def prepare(cfg: LoadedConfig, *, smoke: bool, verbose: bool = False) -> Prepared:
    """Build and compile the model and load and check the data: everything before training."""
    from trainctl.build import build_model, compile_model
    from trainctl.data import check_against_model, load_splits, make_dataset, weigh_splits
    from trainctl.plugins import import_plugins

    exp = cfg.experiment
    import_tensorflow(verbose)
    plugins = import_plugins(list(exp.imports), config_dir=cfg.config_dir, locate=cfg.locate)
    strategy = configure(exp.runtime, seed=exp.seed)
    with strategy.scope():
        model = build_model(exp, cfg.locate)
        compile_model(model, exp, cfg.locate)
    plan = make_plan(cfg, smoke=smoke)
    sig = signature(model, cfg)
    splits = load_splits(exp.data, config_dir=cfg.config_dir, signature=sig, seed=exp.seed,
                         locate=cfg.locate)
    check_against_model(splits, sig, locate=cfg.locate)
    # Class weights become sample weights here, for both loops: Keras 3 rejects
    # class_weight for several outputs and next to sample weights in the data.
    splits = weigh_splits(splits, sig, sample_weight=exp.data.sample_weight,
                          class_weight=exp.fit.class_weight, locate=cfg.locate)
    cap = 2 if smoke else None

    def dataset(split, batch_size, shuffle):
        if split is None:
            return None
        return make_dataset(split, batch_size=batch_size, shuffle=shuffle, seed=exp.seed,
                            take_batches=cap, outputs=list(sig.outputs))

    check_one_batch(model, splits.train, plan.batch_size, list(sig.outputs), cfg)
    train = dataset(splits.train, plan.batch_size, exp.data.shuffle)
    if plan.steps_per_epoch and not smoke:
        train = train.repeat()  # exactly steps_per_epoch steps in every epoch
    return Prepared(model=model, plan=plan, splits=splits, train=train,
                    validation=dataset(splits.validation, plan.batch_size, False),
                    test=dataset(splits.test, plan.test_batch_size, False),
                    plugins=plugins,
                    distribution={"strategy": type(strategy).__name__,
                                  "replicas": strategy.num_replicas_in_sync})


def check_one_batch(model: Any, split: Any, batch_size: int, outputs: list[str],
                    cfg: LoadedConfig) -> None:
    """Evaluate loss and metrics on the first training batch before the run starts.

    A loss or metric that does not fit its output (shapes, dtypes) then fails
    here as a config error (exit 2, no run folder) instead of as a crash deep in
    TensorFlow after training started. ``test_on_batch`` updates no weights and
    traces the same test function validation uses, so it costs one trace.
    """
    from trainctl.data import make_dataset

    head = split.take(slice(0, min(batch_size, len(split))))
    batch = next(iter(make_dataset(head, batch_size=batch_size, outputs=outputs)))
    try:
        model.test_on_batch(*batch)
    except Exception as exc:
        first = " ".join(str(exc).strip().splitlines()[:2])[:400]
        raise ConfigError(f"the loss or metrics do not fit the model's outputs and the data: "
                          f"{type(exc).__name__}: {first}", key="compile",
                          where=cfg.locate("compile"),
                          hint="check each output's loss and metrics against its targets "
                               "(sparse labels vs one-hot, output shapes)") from None


def start_run(cfg: LoadedConfig, prep: Prepared, *, runs_dir: Path, name: str | None) -> RunDir:
    """Create the run folder and write config.yaml, run.json and summary.txt."""
    from trainctl.plugins import module_hashes

    run = RunDir.create(runs_dir, name or cfg.run_name)
    run.write_config(cfg.raw)
    started = now()
    run.write_json("run.json", {
        "status": "running", "exit_reason": None, "command": command_line(),
        "config_path": str(cfg.path.resolve()), "overrides": list(cfg.overrides),
        "seed": cfg.experiment.seed, "smoke": prep.plan.smoke, "start": started, "end": None,
        "versions": versions(), "git": git_state(cfg.config_dir),
        "data_files": prep.splits.files, "plugins": module_hashes(prep.plugins),
        "distribution": prep.distribution,
        "attempts": [{"command": "fit", "start": started}],
    })
    lines: list[str] = []
    prep.model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    run.write_text("summary.txt", "\n".join(lines) + "\n")
    note = plot_model(prep.model, run)
    if note:
        run.update_run(notes=[note])
        print(f"note: {note}", flush=True)
    return run


def plot_model(model: Any, run: RunDir) -> str | None:
    """``model.png`` via keras.utils.plot_model; a note saying how to get it when it can't."""
    import shutil

    import keras

    if shutil.which("dot") is None:
        return ("model.png skipped: plot_model needs Graphviz's 'dot' program "
                "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)")
    try:
        keras.utils.plot_model(model, to_file=str(run.file("model.png")), show_shapes=True,
                               show_layer_names=True)
    except ImportError as exc:  # pydot missing
        return f"model.png skipped: {exc}"
    return None


def trainctl_callbacks(cfg: LoadedConfig, run: RunDir, prep: Prepared) -> tuple[list, Any]:
    """The user's ``fit.callbacks``, then history files, checkpoints, divergence guard,
    TensorBoard (``runtime.tensorboard``) and the epoch printer."""
    from trainctl.run.callbacks import (Checkpointer, DivergenceGuard, EpochPrinter,
                                        HistoryWriter, monitor_mode)

    exp = cfg.experiment
    monitor = exp.fit.monitor or ("val_loss" if prep.validation is not None else "loss")
    guard = DivergenceGuard()
    callbacks = user_callbacks(cfg, run)
    callbacks += [HistoryWriter(run), guard, Checkpointer(run, monitor, monitor_mode(monitor))]
    if exp.runtime.tensorboard:
        callbacks.append(tensorboard_callback(cfg, run))
    callbacks.append(EpochPrinter(prep.plan.epochs))
    return callbacks, guard


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


@contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """Turn SIGTERM into an exception so the run can record itself before exiting."""
    def handler(signum, frame):
        raise Interrupted("terminated by SIGTERM", ExitCode.TERMINATED)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def train(cfg: LoadedConfig, prep: Prepared, run: RunDir) -> None:
    """``model.fit`` with trainctl's callbacks; record how it ended."""
    try:
        callbacks, guard = trainctl_callbacks(cfg, run, prep)
    except ConfigError as exc:  # e.g. a callback's constructor refused its arguments
        finish(run, "failed", str(exc))
        raise
    plan = prep.plan
    try:
        with sigterm_as_exception():
            fit_fn = prep.model.fit
            if cfg.experiment.fit.loop == "custom":
                from trainctl.run.loop import CustomLoop

                fit_fn = CustomLoop(prep.model, log_every=cfg.experiment.fit.log_every).fit
            history = fit_fn(prep.train, epochs=plan.epochs,
                             steps_per_epoch=None if plan.smoke else plan.steps_per_epoch,
                             validation_data=prep.validation,
                             validation_steps=None if plan.smoke else plan.validation_steps,
                             validation_freq=cfg.experiment.fit.validation_freq,
                             callbacks=callbacks,  # class weights are in the data
                             shuffle=False, verbose=0)  # the tf.data pipeline shuffles
    except KeyboardInterrupt:
        finish(run, "interrupted", "interrupted by SIGINT")
        raise Interrupted("interrupted by SIGINT", ExitCode.INTERRUPTED) from None
    except Interrupted as exc:
        finish(run, "interrupted", str(exc))
        raise
    except Exception as exc:
        (run.file("error.txt")).write_text(traceback.format_exc(), encoding="utf-8")
        finish(run, "failed", f"{type(exc).__name__}: {exc}")
        raise RunFailed(f"training failed: {type(exc).__name__}: {exc}\n"
                        f"  traceback: {run.file('error.txt')}") from None
    if guard.diverged_at is not None:
        epoch, step = guard.diverged_at
        reason = f"loss became NaN or infinite at epoch {epoch}, step {step}"
        finish(run, "failed", reason)
        raise RunFailed(f"{reason}; the last good checkpoint is in {run.file('checkpoints')}")
    done = len(history.epoch) if history is not None else plan.epochs
    if done < plan.epochs:  # a callback (EarlyStopping, ...) set stop_training
        print(f"stopped early after epoch {done} of {plan.epochs}", flush=True)
        run.update_run(stopped_early_after_epoch=done)


def finish(run: RunDir, status: str, reason: str | None) -> None:
    """Set the final status in run.json."""
    info = run.read_json("run.json")
    end = now()
    if info.get("attempts"):
        info["attempts"][-1].update(end=end, status=status)
    run.update_run(status=status, exit_reason=reason, end=end, attempts=info["attempts"])


def evaluate_test(prep: Prepared) -> dict[str, float] | None:
    """Metrics on the test split under Keras's names, or None without a test split."""
    if prep.test is None:
        return None
    result = prep.model.evaluate(prep.test, steps=None if prep.plan.smoke else prep.plan.test_steps,
                                 return_dict=True, verbose=0)
    return {k: float(v) for k, v in result.items()}


def fit(cfg: LoadedConfig, *, runs_dir: Path, name: str | None = None, smoke: bool = False,
        verbose: bool = False) -> RunDir:
    """Train ``cfg`` and write a complete run folder; return it."""
    from trainctl.run.console import format_metrics

    import_tensorflow(verbose)  # first: anything below may import Keras
    prep = prepare(cfg, smoke=smoke, verbose=verbose)
    run = start_run(cfg, prep, runs_dir=runs_dir, name=name)
    print(f"run: {run.path}", flush=True)
    train(cfg, prep, run)
    try:
        save_model(prep.model, run)
        metrics = evaluate_test(prep)
    except Exception as exc:  # e.g. a full disk: the run must not stay "running"
        finish(run, "failed", f"{type(exc).__name__}: {exc}")
        raise RunFailed(f"saving or evaluating the trained model failed: "
                        f"{type(exc).__name__}: {exc}") from None
    if metrics is not None:
        run.write_json("metrics.json", metrics)
        print(f"test - {format_metrics(metrics)}", flush=True)
    finish(run, "completed", None)
    return run


def save_model(model: Any, run: RunDir) -> None:
    """``model.keras``, written through a temp file like every run file."""
    target = run.file("model.keras")
    tmp = target.with_name(".model.tmp.keras")
    model.save(tmp)
    tmp.replace(target)
