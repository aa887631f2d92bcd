"""``trainctl predict RUN_DIR``: predictions from a run's model.

The input is an array shaped like the model's inputs (after the config's
transforms: for configs/mnist.yaml, 784 floats in [0, 1]); without ``--input``
the test split is used, with the transforms applied.

Example:
    >>> out = predict(Path("runs/mnist-mlp-..."), input_path=Path("x.npy"),
    ...               output_path=Path("y.npy"))
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from trainctl.errors import DataError, UsageError


def read_input(path: Path, model: Any) -> Any:
    """Load ``.npy`` (one input) or ``.npz`` (one array per input name)."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"--input {path}: file not found") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"--input {path}: cannot read a .npy/.npz array: {exc}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        names = [t.name.split(":")[0] for t in model.inputs]
        missing = [n for n in names if n not in loaded.files]
        if missing:
            raise DataError(f"--input {path}: missing array(s) for input(s) "
                            f"{', '.join(missing)}; found {', '.join(loaded.files)}")
        return {n: loaded[n] for n in names} if len(names) > 1 else loaded[names[0]]
    return loaded


def check_shape(x: Any, model: Any, path: Path) -> None:
    """A single input array must match the model's input shape (batch first)."""
    if isinstance(x, dict):
        return
    expected = tuple(model.inputs[0].shape[1:])
    got = tuple(x.shape[1:])
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        raise DataError(f"--input {path}: expected arrays of shape (N, "
                        f"{', '.join('None' if e is None else str(e) for e in expected)}); "
                        f"received {tuple(x.shape)}. The model takes the data after the "
                        "config's transforms")


def predict(path: Path, *, input_path: Path | None, output_path: Path | None,
            verbose: bool = False) -> tuple[Path, Any]:
    """Predict on ``input_path`` (or the test split); save to ``output_path``."""
    from trainctl.data import load_splits
    from trainctl.run.plan import signature
    from trainctl.run.reload import reopen

    run, cfg, model = reopen(path, verbose=verbose)
    exp = cfg.experiment
    if input_path is not None:
        x = read_input(input_path, model)
        check_shape(x, model, input_path)
    else:
        splits = load_splits(exp.data, config_dir=cfg.config_dir,
                             signature=signature(model, cfg), seed=exp.seed, locate=cfg.locate)
        if splits.test is None:
            raise DataError("the dataset has no test split; pass --input FILE.npy")
        x = splits.test.x
    batch = exp.predict.batch_size or exp.evaluate.batch_size or exp.fit.batch_size
    y = model.predict(x, batch_size=batch, verbose=0)
    several = isinstance(y, (list, dict))
    output_path = check_output_path(output_path or run.file(
        "predictions.npz" if several else "predictions.npy"), several=several)
    save_predictions(output_path, y, model)
    run.add_record("predict", {"input": str(input_path) if input_path else "test split",
                               "output": str(output_path),
                               "shape": None if several else list(np.shape(y))})
    return Path(output_path), y


def check_output_path(path: Path, *, several: bool) -> Path:
    """``--output`` must be .npy (one output) or .npz (several) in an existing folder."""
    path = Path(path)
    wanted = ".npz" if several else ".npy"
    if path.suffix not in (".npy", ".npz") or (several and path.suffix != ".npz"):
        raise UsageError(f"--output {path}: expected a {wanted} file"
                         + (" (the model has several outputs, saved by name)" if several else ""))
    if not path.parent.is_dir():
        raise UsageError(f"--output {path}: folder {path.parent} does not exist")
    return path


def save_predictions(path: Path, y: Any, model: Any) -> None:
    """Write ``y`` atomically: .npy for one array, .npz keyed by output name for several."""
    from trainctl.artifacts import atomic_write

    buffer = io.BytesIO()
    if isinstance(y, dict):
        np.savez(buffer, **y)
    elif isinstance(y, list):
        np.savez(buffer, **dict(zip(model.output_names, y)))
    elif path.suffix == ".npz":
        np.savez(buffer, **{model.output_names[0]: y})
    else:
        np.save(buffer, y)
    atomic_write(path, buffer.getvalue())
