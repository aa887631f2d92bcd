"""``trainctl export RUN_DIR --format F``: a run's model for serving, checked against Keras.

Keras 3's ``model.export`` writes the artifact (``tf_saved_model``, ``litert`` or
``onnx``) into a temporary name beside the output. trainctl then loads it with
the runtime that will serve it (:mod:`trainctl.run.runtimes`), runs a batch of
the run's test data through it and through the Keras model (the data as
``trainctl predict`` sees it: after the config's transforms), and prints the
largest difference. Within the tolerance the artifact is renamed into place and
recorded in run.json; over it, nothing is installed and the command exits 1.

Default outputs, inside the run folder: ``exports/saved_model/`` (a SavedModel
folder), ``exports/litert/model.tflite``, ``exports/onnx/model.onnx``.

Example:
    >>> record = export(Path("runs/mnist-mlp-..."), fmt="litert")
    >>> record["max_abs_diff"] <= record["tolerance"]
    True
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np

from trainctl.errors import RunFailed, UsageError

DEFAULT_OUTPUT = {"saved_model": "exports/saved_model", "litert": "exports/litert/model.tflite",
                  "onnx": "exports/onnx/model.onnx"}
SUFFIX = {"litert": ".tflite", "onnx": ".onnx"}
TOLERANCE = {"saved_model": 1e-4, "litert": 1e-3, "onnx": 1e-4}
ONNX_PACKAGES = ("onnx", "tf2onnx", "onnxruntime")


def check_packages(fmt: str) -> None:
    """The packages ``fmt`` needs are installed (checked before TensorFlow starts).

    Raises:
        UsageError: naming the missing packages and the install command.
    """
    if fmt != "onnx":
        return
    missing = [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        raise UsageError(f"--format onnx needs the packages {', '.join(ONNX_PACKAGES)}; "
                         f"not installed: {', '.join(missing)}\n"
                         "  hint: pip install 'trainctl[onnx]'")


def output_path(run_path: Path, fmt: str, output: Optional[Path], *, force: bool) -> Path:
    """Where the artifact goes: ``output`` or the run's default, checked before any work.

    Raises:
        UsageError: a wrong suffix, a missing parent folder (for ``--output``), or an
            existing artifact without ``force``.
    """
    target = Path(output) if output is not None else Path(run_path) / DEFAULT_OUTPUT[fmt]
    suffix = SUFFIX.get(fmt)
    if suffix and target.suffix != suffix:
        raise UsageError(f"--output {target}: {ARTICLE[fmt]} {fmt} model is a {suffix} file")
    if fmt == "saved_model" and target.suffix in FILE_SUFFIXES:
        raise UsageError(f"--output {target}: a SavedModel is a folder, not a "
                         f"{target.suffix} file\n  hint: --format {FILE_SUFFIXES[target.suffix]}"
                         " writes that file, or give a folder name")
    if output is not None and not target.parent.is_dir():
        raise UsageError(f"--output {target}: folder {target.parent} does not exist")
    if target.exists() and not force:
        raise UsageError(f"{target} exists already\n  hint: pass --force to replace it, or "
                         "--output another path")
    if fmt == "saved_model" and target.is_file():
        raise UsageError(f"--output {target}: is a file; a SavedModel is a folder")
    if target.exists():
        _check_replaceable(target, Path(run_path), fmt)
    return target


# An article for each format's name, and the formats written as one file by suffix.
ARTICLE = {"saved_model": "a", "litert": "a", "onnx": "an"}
FILE_SUFFIXES = {suffix: fmt for fmt, suffix in SUFFIX.items()}


def _check_replaceable(target: Path, run_path: Path, fmt: str) -> None:
    """``--force`` replaces an earlier export only: never the run folder or a folder
    holding it, and never a folder that is not a SavedModel (it would be deleted)."""
    if run_path.resolve().is_relative_to(target.resolve()):
        raise UsageError(f"--output {target}: holds the run folder {run_path}; --force would "
                         "delete the run\n  hint: give a new path for the export")
    if target.is_dir() and fmt != "saved_model":
        raise UsageError(f"--output {target}: is a folder; {ARTICLE[fmt]} {fmt} model is a "
                         f"{SUFFIX[fmt]} file")
    if target.is_dir() and not (target / "saved_model.pb").is_file():
        raise UsageError(f"--output {target}: a folder that is not a SavedModel (no "
                         "saved_model.pb in it); --force replaces only an earlier export, never "
                         "other files\n  hint: give a new path for the export, or remove that "
                         "folder yourself")


def sample_inputs(cfg: Any, model: Any) -> tuple[dict[str, np.ndarray], str]:
    """One batch of the run's test data after the transforms (synthetic without a test
    split), by input name and in each input's dtype; and where it came from."""
    from trainctl.data import load_splits
    from trainctl.data.checks import check_features
    from trainctl.data.synthetic import make_features
    from trainctl.run.plan import signature
    from trainctl.run.predict import input_names

    exp = cfg.experiment
    sig = signature(model, cfg)
    splits = load_splits(exp.data, config_dir=cfg.config_dir, signature=sig, seed=exp.seed,
                         locate=cfg.locate)
    batch = exp.predict.batch_size or exp.evaluate.batch_size or exp.fit.batch_size
    names = input_names(model)
    if splits.test is not None:
        check_features(splits.test, sig, what="test", locate=cfg.locate)
        x, where = splits.test.take(slice(0, batch)).x, "test split"
    else:
        x = make_features(sig, batch, np.random.default_rng(0), length=16, int_high=2)
        where = "random inputs (the data has no test split)"
    arrays = x if isinstance(x, dict) else {names[0]: x}
    dtypes = {n: t.dtype for n, t in zip(names, model.inputs)}
    return {n: np.asarray(arrays[n]).astype(str(dtypes[n]).replace("bfloat16", "float32"))
            for n in names}, where


def keras_outputs(model: Any, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Keras model's predictions (as ``trainctl predict`` makes them) by output name:
    the dict of :func:`~trainctl.run.export_write.named_outputs`, else ``output_0``, ...
    (a subclassed model's, as its export names them)."""
    x = inputs if len(inputs) > 1 else next(iter(inputs.values()))
    y = model.predict(x, batch_size=len(next(iter(inputs.values()))), verbose=0)
    if isinstance(y, dict):
        return {name: np.asarray(v) for name, v in y.items()}
    ys = y if isinstance(y, (list, tuple)) else [y]
    return {f"output_{i}": np.asarray(v) for i, v in enumerate(ys)}


def _natural(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def largest_difference(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> float:
    """max |got - want| over every output, matched by name (by order when the runtime
    names them otherwise); inf when the outputs do not line up."""
    if set(got) != set(want):
        if len(got) != len(want):
            return float("inf")
        got = dict(zip(sorted(want, key=_natural), (got[k] for k in sorted(got, key=_natural))))
    pairs = [(got[k], want[k]) for k in want]
    if any(g.shape != w.shape for g, w in pairs):
        return float("inf")
    diffs = [np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))) if g.size else 0.0
             for g, w in pairs]
    worst = max(diffs, default=0.0)
    return float("inf") if np.isnan(worst) else float(worst)


def install(tmp: Path, target: Path) -> None:
    """Put ``tmp`` at ``target`` by renaming; an existing ``target`` (``--force``) is moved
    aside first and removed after, so ``target`` is never half written."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{secrets.token_hex(3)}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        remove(old)


def remove(path: Path) -> None:
    """Remove a file or folder, if there."""
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def export(path: Path, *, fmt: str, output: Optional[Path] = None, force: bool = False,
           verbose: bool = False, unsafe: bool = False, checkpoint: str = "final") -> dict:
    """Export the run in ``path`` as ``fmt``, check it with its runtime, record it.

    Args:
        path: the run folder.
        fmt: ``saved_model``, ``litert`` or ``onnx``.
        output: where to write (default: inside the run, :data:`DEFAULT_OUTPUT`).
        force: replace an existing artifact there.
        verbose: TensorFlow's start-up messages.
        unsafe: load model.keras without Keras's safe mode (see ``reload.reopen``).
        checkpoint: ``final`` (model.keras), ``best`` or ``last`` (``checkpoints/``).

    Returns:
        The record added to run.json (format, output, runtime, samples, max_abs_diff,
        tolerance, passed).

    Raises:
        UsageError: bad arguments or missing packages (exit 2).
        RunFailed: the export failed, or differs from Keras by more than the tolerance
            (exit 1); nothing is left at the output path.

    Example:
        >>> export(Path("runs/mnist-mlp-..."), fmt="onnx")["output"]
        'runs/mnist-mlp-.../exports/onnx/model.onnx'
    """
    from trainctl.run.export_write import explain, named_outputs, reason, write_artifact
    from trainctl.run.reload import reopen
    from trainctl.run.runtimes import run_artifact

    check_packages(fmt)
    target = output_path(Path(path), fmt, output, force=force)
    run, cfg, model = reopen(path, verbose=verbose, unsafe=unsafe, checkpoint=checkpoint)
    inputs, where = sample_inputs(cfg, model)
    model = named_outputs(model)
    want = keras_outputs(model, inputs)  # also the call Keras's ONNX export needs first
    created = make_parents(target)
    tmp = target.with_name(f".tmp-{secrets.token_hex(3)}-{target.name}")
    try:
        write_artifact(model, fmt, tmp)
        try:
            got, runtime = run_artifact(fmt, tmp, inputs)
        except Exception as exc:  # noqa: BLE001 - any runtime failure fails the check
            raise RunFailed(f"the {fmt} export was written but {fmt}'s runtime could not run "
                            f"it: {type(exc).__name__}: {reason(exc)}"
                            f"{explain(model, fmt)}") from None
        diff, tolerance = largest_difference(got, want), TOLERANCE[fmt]
        samples = len(next(iter(inputs.values())))
        record = {"format": fmt, "output": str(target.resolve()), "runtime": runtime,
                  **({"checkpoint": checkpoint} if checkpoint != "final" else {}),
                  "inputs": f"{samples} samples of the {where}", "max_abs_diff": diff,
                  "tolerance": tolerance, "passed": diff <= tolerance}
        print(f"{fmt}: {runtime} vs Keras on {samples} samples of the {where}: "
              f"max |difference| {diff:.3g} (tolerance {tolerance:g})", flush=True)
        if not record["passed"]:
            run.add_record("export", {**record, "output": None})
            raise RunFailed(f"the {fmt} export differs from the Keras model by {diff:.3g}, "
                            f"more than {tolerance:g}: not written to {target}")
        install(tmp, target)
    finally:
        remove(tmp)
        for folder in created if not target.exists() else []:
            try:
                folder.rmdir()  # only folders this export made, and only when empty
            except OSError:
                pass
    run.add_record("export", record)
    return record


def make_parents(target: Path) -> list[Path]:
    """Create ``target``'s missing parent folders; return them, deepest first."""
    missing = []
    folder = target.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    target.parent.mkdir(parents=True, exist_ok=True)
    return missing
