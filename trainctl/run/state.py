"""The resumable state of a run: ``checkpoints/resume/``, rewritten whole at each epoch's end.

What a resumed run needs to carry on as if it had never stopped (SPEC §6):

- ``model.npz``: every model variable, the random seed generators' state too;
- ``optimizers.npz``: the variables of ``model.optimizer`` and of any other optimizer
  the model holds (a GAN's ``d_optimizer``/``g_optimizer``), their iteration counter
  and learning rate included, so a schedule continues where it was;
- ``state.json``: the number of finished epochs, and each callback's state
  (EarlyStopping's ``wait`` and ``best``, ReduceLROnPlateau's ``cooldown_counter``,
  ModelCheckpoint's ``best`` (:data:`KNOWN_STATE`); for the user's own callbacks the
  numbers, strings and lists of numbers in their attributes, e.g. ``losses``), plus
  Python's and NumPy's global RNG state;
- ``arrays.npz``: callback arrays (EarlyStopping's ``best_weights``).

The folder is written next to itself and swapped in with renames, so a crash at
any moment leaves either the previous state or the new one, never a mix. A run
copies the state at each epoch's end (:func:`snapshot_state`) and writes it while the
next epoch trains (:func:`write_state` on :class:`trainctl.run.writer.BackgroundWriter`).

Example:
    >>> save_state(run, model, callbacks, epochs_done=3)
    >>> done = load_state(run, model, callbacks)   # in the resumed process
"""

from __future__ import annotations

import json
import numbers
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STATE_DIR = "resume"
# Attributes that hold configuration or live objects, never state.
_SKIP = {"params", "model", "_model", "validation_data", "monitor_op", "filepath", "monitor",
         "mode", "verbose", "log_dir", "run", "stream"}


def state_dir(run_path: Path) -> Path:
    """``<run>/checkpoints/resume``."""
    return run_path / "checkpoints" / STATE_DIR


def optimizers(model: Any) -> list[Any]:
    """``model.optimizer`` first, then every other optimizer among the model's attributes."""
    import keras

    found = [model.optimizer] if getattr(model, "optimizer", None) is not None else []
    for name, value in sorted(vars(model).items()):
        if isinstance(value, keras.optimizers.Optimizer) and all(value is not o for o in found):
            found.append(value)
    return found


def _is_state(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, numbers.Real):
        return True
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [float(v) for v in value]
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


# Keras's and trainctl's callbacks: exactly the attributes that carry state from one
# epoch to the next. Others of theirs keep none, or set theirs up in on_train_begin from
# the files on disk (CSVLogger's append_header), which a restore must not overwrite.
KNOWN_STATE = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch", "best_weights"),
    "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
    "ModelCheckpoint": ("best",),
    "Checkpointer": ("best",),
}


def state_attributes(callback: Any) -> tuple[str, ...] | None:
    """The attributes to save for ``callback``: a fixed list for Keras's and trainctl's
    callbacks, None (every number, bool, string or list of numbers) for the user's own."""
    cls = type(callback)
    if cls.__module__.startswith(("keras", "trainctl")):
        return next((attrs for klass in cls.__mro__
                     for name, attrs in KNOWN_STATE.items() if klass.__name__ == name
                     and klass.__module__.startswith(("keras", "trainctl"))), ())
    return None


def callback_state(callback: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The state a callback keeps between epochs: scalars/lists, and weight lists as arrays."""
    scalars, arrays = {}, {}
    wanted = state_attributes(callback)
    for name, value in vars(callback).items():
        if name in _SKIP or (wanted is not None and name not in wanted):
            continue
        if name == "best_weights" and isinstance(value, list):
            arrays.update({f"{name}/{i}": np.asarray(v) for i, v in enumerate(value)})
            scalars[name] = len(value)
        elif _is_state(value):
            scalars[name] = _plain(value)
    return scalars, arrays


def restore_callback(callback: Any, scalars: dict[str, Any], arrays: Any, prefix: str) -> None:
    """Set back what :func:`callback_state` saved."""
    for name, value in scalars.items():
        if name == "best_weights" and isinstance(value, int):
            setattr(callback, name, [arrays[f"{prefix}{name}/{i}"] for i in range(value)])
        elif hasattr(callback, name):
            setattr(callback, name, value)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
            "numpy": [kind, keys.tolist(), pos, has_gauss, gauss]}


def _set_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


def save_state(run_path: Path, model: Any, callbacks: list, *, epochs_done: int) -> None:
    """Write the state after ``epochs_done`` finished epochs (atomically: all or nothing).

    Args:
        run_path: the run folder.
        model: the model being trained (built, optimizer built).
        callbacks: the callbacks of the run, in order (their index is their key).
        epochs_done: finished epochs; the resumed run starts at this epoch.
    """
    write_state(run_path, snapshot_state(model, callbacks, epochs_done=epochs_done))


@dataclass(frozen=True)
class Snapshot:
    """The state of one moment, in memory: what :func:`write_state` puts on disk."""

    model: dict[str, np.ndarray]
    optimizers: dict[str, np.ndarray]
    arrays: dict[str, np.ndarray]
    info: dict[str, Any]


def snapshot_state(model: Any, callbacks: list, *, epochs_done: int) -> Snapshot:
    """Copy the state after ``epochs_done`` epochs out of the model, its optimizers, the
    callbacks and the global RNGs (a few ms): training may go on while it is written.

    Example:
        >>> write_state(run.path, snapshot_state(model, callbacks, epochs_done=3))
    """
    build_optimizers(model)  # before the first step (epoch 0) fit has not built them yet
    # model.variables: weights and seed-generator state, never the optimizer's (which
    # Keras's save_weights would include, and load_weights restore over a new optimizer).
    # np.array copies: the next steps update the variables while this is written.
    weights = {f"{i}": np.array(v.numpy()) for i, v in enumerate(model.variables)}
    slots = {f"{i}/{j}": np.array(v.numpy()) for i, opt in enumerate(optimizers(model))
             for j, v in enumerate(opt.variables)}
    states, arrays = {}, {}
    for i, callback in enumerate(callbacks):
        # best_weights lists are replaced, never changed in place: no copy needed
        scalars, arrs = callback_state(callback)
        states[f"{i}:{type(callback).__name__}"] = scalars
        arrays.update({f"{i}:{k}": v for k, v in arrs.items()})
    info = {"epochs_done": epochs_done, "callbacks": states, "rng": _rng_state()}
    return Snapshot(weights, slots, arrays, info)


def write_state(run_path: Path, snapshot: Snapshot) -> None:
    """Put ``snapshot`` in ``checkpoints/resume/``: written beside it, swapped in by renames."""
    target = state_dir(run_path)
    tmp = target.with_name(f".{STATE_DIR}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.savez(tmp / "model.npz", **snapshot.model)
    np.savez(tmp / "optimizers.npz", **snapshot.optimizers)
    np.savez(tmp / "arrays.npz", **snapshot.arrays)
    (tmp / "state.json").write_text(json.dumps(snapshot.info, indent=1), encoding="utf-8")
    old = target.with_name(f".{STATE_DIR}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def saved_epochs(run_path: Path) -> int | None:
    """Finished epochs in the run's saved state, or None when there is none.

    Raises:
        ValueError: the state folder exists but its state.json cannot be read.

    A crash between the two renames of :func:`save_state` leaves only ``.resume.old``,
    a complete earlier state: it is put back.
    """
    target = state_dir(run_path)
    old = target.with_name(f".{STATE_DIR}.old")
    if not target.exists() and old.exists():
        old.rename(target)
    if not target.exists():
        return None
    try:
        return int(json.loads((target / "state.json").read_text(encoding="utf-8"))["epochs_done"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{target / 'state.json'}: unreadable ({type(exc).__name__}: {exc})") \
            from None


def _assign(variables: list, saved: Any, prefix: str, what: str) -> None:
    """Assign ``saved[prefix + index]`` to each variable, checking count and shapes."""
    count = sum(k.startswith(prefix) for k in saved.files)
    if count != len(variables):
        raise ValueError(f"the saved state has {count} {what} variables, the model "
                         f"has {len(variables)}")
    for j, var in enumerate(variables):
        value = saved[f"{prefix}{j}"]
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(f"{what} variable {var.path}: saved shape {value.shape}, "
                             f"the model's is {tuple(var.shape)}")
        var.assign(value)


def build_optimizers(model: Any) -> None:
    """Create every optimizer's variables now (fit does it at the first step), under the
    strategy the model was built with (a distributed model's variables need it)."""
    import contextlib

    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        for opt in optimizers(model):
            if not opt.built:
                opt.build(model.trainable_variables)


def load_state(run_path: Path, model: Any, callbacks: list, *,
               restore_optimizers: bool = True) -> int:
    """Restore weights, optimizers, callback and RNG state; return the finished epochs.

    Call after the callbacks' ``on_train_begin`` (Keras's callbacks reset there).

    Args:
        run_path: the run folder.
        model: the model, built and compiled as when the state was saved.
        callbacks: the run's callbacks, in the order they were saved.
        restore_optimizers: also restore the optimizers' variables (False: they start afresh,
            for a resume that changed the optimizer).

    Raises:
        ValueError: the state does not fit this model (another config, a changed plug-in).
    """
    source = state_dir(run_path)
    info = json.loads((source / "state.json").read_text(encoding="utf-8"))
    build_optimizers(model)
    with np.load(source / "model.npz") as saved:
        _assign(model.variables, saved, "", "model")
    with np.load(source / "optimizers.npz") as saved:
        for i, opt in enumerate(optimizers(model) if restore_optimizers else []):
            _assign(opt.variables, saved, f"{i}/", "optimizer")
    with np.load(source / "arrays.npz") as arrays:
        for i, callback in enumerate(callbacks):
            scalars = info["callbacks"].get(f"{i}:{type(callback).__name__}")
            if scalars is not None:
                restore_callback(callback, scalars, arrays, f"{i}:")
    _set_rng(info["rng"])
    return int(info["epochs_done"])
