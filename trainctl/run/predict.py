"""``trainctl predict RUN_DIR``: predictions from a run's model.

The input is an array shaped like the model's inputs (after the config's
transforms: for configs/mnist.yaml, 784 floats in [0, 1]); without ``--input``
the test split is used, with the transforms applied. A model with a ``generator``
and a ``latent_dim`` (a GAN) predicts through its generator, from seeded latent
vectors or ``--input`` ones (:mod:`trainctl.run.generate`).

Example:
    >>> out = predict(Path("runs/mnist-mlp-..."), input_path=Path("x.npy"),
    ...               output_path=Path("y.npy"))
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from trainctl.errors import DataError, UsageError


def input_names(model: Any) -> list[str]:
    """The model's input names, in order (``digits``, not ``digits:0``)."""
    return [t.name.split(":")[0] for t in model.inputs]


def read_input(path: Path, model: Any) -> Any:
    """Load ``.npy`` (one input) or ``.npz`` (one array per input name).

    Raises:
        DataError: a missing, unreadable, truncated or corrupt file, pickled objects,
            or an ``.npz`` without an array for each input (naming what it has).
    """
    from trainctl.data.files import read_bytes, read_npz

    path = Path(path)
    data = read_bytes(path, "--input")
    if data.startswith(b"PK"):  # a zip archive: an .npz
        arrays, _sha = read_npz(path, "--input")
        names = input_names(model)
        if len(names) == 1 and len(arrays) == 1:
            return next(iter(arrays.values()))
        missing = [n for n in names if n not in arrays]
        if missing:
            raise DataError(f"--input: {path}: no array for input(s) {', '.join(missing)}; "
                            f"the file has: {', '.join(arrays) or 'nothing'}\n"
                            f"  hint: save one array per input, by name: "
                            f"numpy.savez(path, {', '.join(f'{n}=...' for n in names)})")
        return {n: arrays[n] for n in names} if len(names) > 1 else arrays[names[0]]
    if not data.startswith(_NPY_MAGIC):
        raise _unreadable(path, data, what_it_is(data))
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        # past the header check, numpy names allow_pickle only for an object array
        reason = ("it holds an array of Python objects (dtype=object, stored pickled), which "
                  "trainctl does not load" if "allow_pickle" in str(exc)
                  else f"it is truncated or corrupt: {type(exc).__name__}: {exc}")
        raise _unreadable(path, data, reason) from None


# Every .npy file starts with these bytes (numpy.lib.format); a .npz is a zip ("PK").
_NPY_MAGIC = b"\x93NUMPY"
# A pickle of protocol 2 or later starts with PROTO (0x80) and the protocol number.
_PICKLE_PROTOCOLS = (2, 3, 4, 5)
_SAVE_HINT = "save the arrays with numpy.save (one input) or numpy.savez (by input name)"


def looks_like_text(data: bytes) -> bool:
    """Whether ``data`` starts like a text file (UTF-8, printable, some non-blank)."""
    head = data[:4096].decode("utf-8", errors="replace")
    if len(data) > 4096:
        head = head.rstrip("\ufffd")  # a character cut in two at the 4096th byte
    return bool(head.strip()) and "\ufffd" not in head and all(
        c.isprintable() or c in "\r\n\t" for c in head)


def what_it_is(data: bytes) -> str:
    """Say what a file without a .npy header holds, from its first bytes, for a message.

    Args:
        data: the file's content.

    Example:
        >>> what_it_is(b"hello").split(",")[0]
        'it has no .npy header: it is a text file'
    """
    if not data:
        return "the file is empty"
    if data[:1] == b"\x80" and data[1:2] and data[1] in _PICKLE_PROTOCOLS:
        return "it is a Python pickle, which trainctl does not load: loading one can run code"
    kind = "a text file" if looks_like_text(data) else "something else"
    return (f"it has no .npy header: it is {kind}, starting {data[:12]!r}, while a .npy "
            f"starts with {_NPY_MAGIC!r} and an .npz with b'PK'")


def _unreadable(path: Path, data: bytes, reason: str) -> DataError:
    hint = _SAVE_HINT
    if looks_like_text(data):
        hint += "; to convert a text file: numpy.save(out, numpy.loadtxt(path, dtype='float32'))"
    return DataError(f"--input: {path}: not a readable .npy/.npz array file: {reason} "
                     f"({len(data)} bytes)\n  hint: {hint}")


def _shape(shape: tuple) -> str:
    return "(N, " + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def check_shape(x: Any, model: Any, path: Path) -> None:
    """Every input array must be numeric, finite and shaped like its model input (batch first).

    Raises:
        DataError: naming the input, the expected and the received shape.
    """
    from trainctl.data.checks import first_nonfinite

    names = input_names(model)
    arrays = x if isinstance(x, dict) else {names[0]: x}
    if not isinstance(x, dict) and len(names) > 1:
        raise DataError(f"--input: {path}: the model has {len(names)} inputs "
                        f"({', '.join(names)}) but the file holds one array\n"
                        f"  hint: save an .npz with one array per input, by name")
    for name, tensor in zip(names, model.inputs):
        a = arrays[name]
        expected = tuple(tensor.shape[1:])
        got = tuple(np.shape(a)[1:])
        if np.ndim(a) == 0 or len(got) != len(expected) or any(
                e is not None and e != g for e, g in zip(expected, got)):
            raise DataError(f"--input: {path}: input {name!r} expected arrays of shape "
                            f"{_shape(expected)}; received {tuple(np.shape(a))}. The model "
                            "takes the data after the config's transforms")
        if np.asarray(a).dtype.kind not in "biuf":
            raise DataError(f"--input: {path}: input {name!r} needs numbers; the array has "
                            f"dtype {np.asarray(a).dtype}")
        at = first_nonfinite(np.asarray(a))
        if at is not None:
            raise DataError(f"--input: {path}: input {name!r} has NaN or infinite values; the "
                            f"first is sample {at[0]} (index [{', '.join(map(str, at))}])\n"
                            "  hint: clean the data before predicting")
    counts = {name: len(arrays[name]) for name in names}
    if len(set(counts.values())) > 1:
        raise DataError(f"--input: {path}: the inputs hold different numbers of samples ("
                        + ", ".join(f"{n!r}: {c}" for n, c in counts.items())
                        + "); each sample needs a row in every input")
    if 0 in counts.values():
        raise DataError(f"--input: {path}: holds 0 samples; nothing to predict")


def predict_input(model: Any, x: Any, batch: int, path: Path) -> Any:
    """``model.predict`` on arrays from ``--input``: what the model cannot take (a sequence
    shorter than a convolution's kernel, ...) is a DataError naming the file."""
    import tensorflow as tf

    from trainctl.diagnose import exception_text, plugin_bug

    try:
        return model.predict(x, batch_size=batch, verbose=0)
    except (ValueError, tf.errors.InvalidArgumentError) as exc:
        if plugin_bug(exc) is not None:  # the user's layer code: not the data's fault
            raise
        # TensorFlow names the graph node and all its attributes: noise to the user
        text = re.sub(r" for '\{\{node .*?' with", " with", exception_text(exc, lines=2))
        raise DataError(f"--input: {path}: the model cannot take these arrays: "
                        f"{text}\n  hint: the model takes the data "
                        "after the config's transforms, shaped as for training") from None


def predict(path: Path, *, input_path: Path | None, output_path: Path | None,
            verbose: bool = False, unsafe: bool = False,
            checkpoint: str = "final") -> tuple[Path, Any]:
    """Predict on ``input_path`` (or the test split); save to ``output_path``.

    ``unsafe``: load model.keras with Keras's safe mode off (see :func:`reload.reopen`).
    ``checkpoint``: ``best`` or ``last`` predicts with that checkpoint (recorded).
    The input is checked first (names, shapes, NaN/inf).
    """
    from trainctl.data import load_splits
    from trainctl.data.checks import check_features
    from trainctl.run.plan import signature
    from trainctl.run.reload import reopen, warn_changed

    from trainctl.run.generate import SAMPLES, generator_of, latents
    from trainctl.run.input_range import out_of_range

    run, cfg, model = reopen(path, verbose=verbose, unsafe=unsafe, checkpoint=checkpoint)
    exp = cfg.experiment
    generator = generator_of(model)
    if generator is not None:  # a GAN: samples from its generator (trainctl.run.generate)
        model = generator
    if generator is not None and input_path is None:
        x = latents(SAMPLES, int(model.inputs[0].shape[-1]), seed=exp.seed)
    elif input_path is not None:
        x = read_input(input_path, model)
        check_shape(x, model, input_path)
        arrays = x if isinstance(x, dict) else {input_names(model)[0]: x}
        for line in out_of_range(run.read_json("run.json").get("input_ranges") or {}, arrays):
            print(f"warning: --input {input_path}: {line}", file=sys.stderr, flush=True)
    else:
        sig = signature(model, cfg)
        splits = load_splits(exp.data, config_dir=cfg.config_dir,
                             signature=sig, seed=exp.seed, locate=cfg.locate)
        if splits.test is None:
            raise DataError("the dataset has no test split; pass --input FILE.npy")
        check_features(splits.test, sig, what="test", locate=cfg.locate)
        warn_changed(run.read_json("run.json"), data_files=splits.files)
        x = splits.test.x
    batch = exp.predict.batch_size or exp.evaluate.batch_size or exp.fit.batch_size
    if input_path is not None:
        y = predict_input(model, x, batch, input_path)
    else:
        y = model.predict(x, batch_size=batch, verbose=0)
    several = isinstance(y, (list, dict))
    output_path = check_output_path(output_path or run.file(
        "predictions.npz" if several else "predictions.npy"), several=several)
    save_predictions(output_path, y, model)
    source = "seeded latent vectors" if generator is not None else "test split"
    run.add_record("predict", {"input": str(Path(input_path).resolve()) if input_path else source,
                               "output": str(Path(output_path).resolve()),
                               "shape": None if several else list(np.shape(y)),
                               **({"checkpoint": checkpoint} if checkpoint != "final" else {})})
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
