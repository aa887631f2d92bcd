"""Write an export with Keras 3's ``model.export``, and say why one failed.

A failed conversion's message runs to pages of MLIR or converter logs; the user
needs the op that could not be converted, the custom layers that may hold it,
and, for a mixed-precision model, that its float16/bfloat16 ops are the cause.

Example:
    >>> write_artifact(model, "litert", Path("exports/litert/.tmp-1a2b3c-model.tflite"))
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from trainctl.errors import RunFailed

KERAS_FORMAT = {"saved_model": "tf_saved_model", "litert": "litert", "onnx": "onnx"}
# ops that call back into the exporting Python process: they cannot serve anywhere else
PYTHON_OPS = {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
_USEFUL = re.compile(r"Custom ops:|Flex ops:|not supported|Unsupported ops|neither a custom op|"
                     r"is not a registered|No Op registered|NOT_IMPLEMENTED|Could not find")


def is_functional(model: Any) -> bool:
    """A Keras functional model (a graph of layers), not a subclassed one."""
    return any(k.__name__ == "Functional" for k in type(model).__mro__)


def named_outputs(model: Any) -> Any:
    """The model to export: a functional model's outputs as a dict by output name, so
    every format names them as the config does (Keras would call them ``output_0``,
    ``output_1``, ..., tf2onnx ``Identity:0``). The layers and weights are shared, not
    copied. A subclassed model is returned as it is (its outputs have no names)."""
    names = list(getattr(model, "output_names", None) or [])
    outputs = model.outputs if isinstance(model.outputs, (list, tuple)) else [model.outputs]
    if not is_functional(model) or len(names) != len(outputs):
        return model
    import keras

    return keras.Model(model.inputs, dict(zip(names, outputs)), name=model.name)


def named_inputs(model: Any) -> Any:
    """The export's input signature: Keras's own (None) for a functional model; for a
    subclassed one, its inputs named as in ``model.inputs`` (Keras would call them
    ``args_0``, ...), so every artifact takes its inputs by the config's names."""
    if is_functional(model):
        return None
    from trainctl.run.predict import input_names

    names = input_names(model)
    return [model.inputs[0] if len(names) == 1 else dict(zip(names, model.inputs))]


@contextmanager
def quiet_converters() -> Iterator[None]:
    """Keep tf2onnx's per-rewrite log lines and Keras's NumPy warnings out of the output;
    tf2onnx's errors (an op it cannot convert) still show."""
    import logging
    import warnings

    loggers = [logging.getLogger(n) for n in ("tf2onnx", "root")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def write_artifact(model: Any, fmt: str, tmp: Path) -> None:
    """``model.export`` to ``tmp`` (``fmt``: saved_model, litert or onnx).

    Raises:
        RunFailed: the export failed, or (SavedModel) it calls back into Python; the
            message names the op and the model's custom layers.
    """
    try:
        with quiet_converters():
            model.export(str(tmp), format=KERAS_FORMAT[fmt], verbose=False,
                         input_signature=named_inputs(model))
    except Exception as exc:  # noqa: BLE001 - converters raise anything; explained below
        raise RunFailed(f"export to {fmt} failed: {type(exc).__name__}: {reason(exc)}"
                        f"{explain(model, fmt)}") from None
    if fmt == "saved_model":
        found = python_ops(tmp)
        if found:
            raise RunFailed(f"the SavedModel calls back into Python ({', '.join(found)}: "
                            "tf.py_function or tf.numpy_function): it would run only inside "
                            f"this process, not in a server{explain(model, fmt)}")


def reason(exc: BaseException, limit: int = 400) -> str:
    """The lines of a converter's message that say what failed (an op it cannot convert),
    without MLIR locations; else its first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful: list[str] = []
    for line in lines:
        if _USEFUL.search(line):
            text = line.rsplit("): ", 1)[-1] if line.startswith(("<unknown>", "loc(")) else line
            if text not in useful:
                useful.append(text)
    text = "; ".join(useful) if useful else (lines[0] if lines else type(exc).__name__)
    return text[:limit]


def explain(model: Any, fmt: str) -> str:
    """Hints for a failed export: the custom layers it may come from, a mixed precision."""
    hints = []
    mine = custom_layers(model)
    if mine:
        needs = {"litert": " and every op it uses has a LiteRT kernel",
                 "onnx": " and tf2onnx can convert every op it uses"}.get(fmt, "")
        hints.append(f"the model has custom layers: {', '.join(mine)}; a layer exports when "
                     "its call() is traceable TensorFlow (keras.ops; no NumPy, py_function or "
                     f"Python side effects){needs}")
    low = low_precision(model)
    if low:
        hints.append(f"the model computes in {', '.join(low)} (runtime.precision: mixed_*), "
                     f"which {fmt} runtimes mostly cannot run: train it with "
                     "runtime.precision: float32 to export it")
    return "".join(f"\n  hint: {h}" for h in hints)


def custom_layers(model: Any) -> list[str]:
    """``Class (module)`` of every layer in the model that is not a Keras built-in.

    Example:
        >>> custom_layers(model)
        ['MyDenseLayer (examples.plugins.models)']
    """
    found: dict[str, None] = {}

    def walk(layer: Any) -> None:
        module = type(layer).__module__
        if not module.startswith("keras"):
            found[f"{type(layer).__name__} ({module})"] = None
        for sub in getattr(layer, "layers", None) or []:  # a sub-model's own layers
            walk(sub)

    for layer in model.layers:
        walk(layer)
    return list(found)


def low_precision(model: Any) -> list[str]:
    """The float16/bfloat16 compute dtypes the model's layers use (mixed precision)."""
    dtypes = {str(getattr(getattr(layer, "dtype_policy", None), "compute_dtype", "float32"))
              for layer in model.layers}
    return sorted(d for d in dtypes if d in ("float16", "bfloat16"))


def python_ops(folder: Path) -> list[str]:
    """Op types in a SavedModel that call back into Python (:data:`PYTHON_OPS`).

    ``tf.saved_model.load`` in the exporting process runs them fine, so the runtime
    check alone would pass an artifact no server can run.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(folder) / "saved_model.pb").read_bytes())
    found = set()
    for graph in proto.meta_graphs:
        nodes = list(graph.graph_def.node)
        for function in graph.graph_def.library.function:
            nodes.extend(function.node_def)
        found.update(node.op for node in nodes if node.op in PYTHON_OPS)
    return sorted(found)
