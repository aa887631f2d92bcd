"""Run an exported model with the runtime that serves it, not with Keras.

``trainctl export`` checks each artifact the way it will be used: a SavedModel
through ``tf.saved_model.load`` and its ``serving_default`` signature, a LiteRT
flat buffer through the LiteRT interpreter (``ai_edge_litert`` when installed,
else ``tf.lite.Interpreter``), an ONNX file through onnxruntime. Inputs go in by
the model's input names (Keras's export keeps them); outputs come back by the
names the artifact gives them (the model's output names: trainctl exports a
functional model with named outputs).

Example:
    >>> outputs, runtime = run_artifact("litert", Path("model.tflite"), {"digits": x})
    >>> runtime
    'tf.lite.Interpreter'
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

SIGNATURE = "serving_default"


def run_saved_model(path: Path,
                    inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """Outputs of a SavedModel's ``serving_default`` signature, and the runtime's name.

    Example:
        >>> run_saved_model(Path("exports/saved_model"), {"digits": x})[0]["predictions"].shape
        (128, 10)
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if SIGNATURE not in loaded.signatures:
        raise ValueError(f"the SavedModel has no {SIGNATURE!r} signature "
                         f"(it has: {', '.join(loaded.signatures) or 'none'})")
    out = loaded.signatures[SIGNATURE](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: np.asarray(v.numpy()) for k, v in out.items()}, "tf.saved_model.load"


def litert_interpreter() -> tuple[Callable[..., Any], str]:
    """The LiteRT ``Interpreter`` class: ai_edge_litert's when installed, else TensorFlow's.

    Example:
        >>> Interpreter, name = litert_interpreter()
    """
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        from tensorflow.lite.python.interpreter import Interpreter

        return Interpreter, "tf.lite.Interpreter"


def run_litert(path: Path, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """Outputs of a ``.tflite`` model's ``serving_default`` signature (the batch is resized
    to the inputs'), and the runtime's name."""
    from trainctl.run.runtime import with_stderr_silenced

    interpreter_class, name = litert_interpreter()
    with warnings.catch_warnings():
        # tf.lite.Interpreter warns that it moves to ai_edge_litert: not the user's problem
        warnings.simplefilter("ignore")
        interpreter = interpreter_class(model_path=str(path))
    runner = interpreter.get_signature_runner(SIGNATURE)
    # its C++ side prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on the
    # first run; a failure is still raised (with its message) as a Python exception
    out = with_stderr_silenced(lambda: runner(**inputs))
    return {k: np.asarray(v) for k, v in out.items()}, name


def run_onnx(path: Path, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """Outputs of an ONNX model under onnxruntime (CPU), by the graph's output names."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]
    missing = [n for n in wanted if n not in inputs]
    if missing:
        raise ValueError(f"the ONNX graph takes inputs {', '.join(wanted)}; the model's are "
                         f"{', '.join(inputs)}")
    names = [o.name for o in session.get_outputs()]
    values = session.run(None, {n: inputs[n] for n in wanted})
    return {n: np.asarray(v) for n, v in zip(names, values)}, f"onnxruntime {ort.__version__}"


RUNNERS = {"saved_model": run_saved_model, "litert": run_litert, "onnx": run_onnx}


def run_artifact(fmt: str, path: Path,
                 inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """Load ``path`` with ``fmt``'s own runtime and run ``inputs`` (by input name) through it.

    Args:
        fmt: ``saved_model``, ``litert`` or ``onnx``.
        path: the exported artifact.
        inputs: one array per model input, by name, in the input's dtype.

    Returns:
        ``(outputs by name, the runtime's name)``.

    Example:
        >>> outputs, runtime = run_artifact("onnx", Path("model.onnx"), {"digits": x})
    """
    return RUNNERS[fmt](Path(path), inputs)
