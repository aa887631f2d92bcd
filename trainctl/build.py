"""Config to compiled Keras model: the layer graph, then ``compile``. No file I/O.

Every layer, loss, metric and optimizer comes from the registry, so its
arguments are checked against its signature before the call, and a layer that
cannot connect to its inputs is reported at its config key with the shapes
involved.

Example:
    >>> model = build_model(cfg.experiment, cfg.locate)
    >>> compile_model(model, cfg.experiment, cfg.locate)
"""

from __future__ import annotations

from typing import Any, Callable

from trainctl.config.schema import Experiment
from trainctl.config.validate import output_names, per_output
from trainctl.errors import ConfigError, Location, did_you_mean
from trainctl.registry import get_registry

Locate = Callable[[str], Location]


def _first_lines(text: str, n: int = 3) -> str:
    """Keras errors can run to a page: keep the lines that say what went wrong."""
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return " ".join(lines[:n])


def make_inputs(exp: Experiment) -> dict[str, Any]:
    """One ``keras.Input`` per entry of ``model.inputs``, named after its key."""
    import keras

    return {name: keras.Input(shape=tuple(spec.shape), dtype=spec.dtype, name=name)
            for name, spec in exp.model.inputs.items()}


def build_layer(exp: Experiment, index: int, locate: Locate, *, output: bool) -> Any:
    """Instantiate ``model.layers[index]``; output layers stay float32 under mixed precision."""
    spec = exp.model.layers[index]
    args = spec.args
    if output and exp.runtime.precision != "float32" and "dtype" not in args:
        args["dtype"] = "float32"  # softmax/loss in float16 is numerically unsafe
    key = f"model.layers[{index}]"
    return get_registry("layer").build({"type": spec.type, **args}, key=key,
                                       where=locate(key), locate=locate)


def connect(layer: Any, inputs: Any, key: str, locate: Locate) -> Any:
    """Call ``layer`` on ``inputs``; a shape that does not fit is a ConfigError at ``key``."""
    try:
        return layer(inputs)
    except Exception as exc:  # Keras raises ValueError/TypeError with the shapes
        shapes = [tuple(t.shape) for t in inputs] if isinstance(inputs, list) \
            else tuple(inputs.shape)
        raise ConfigError(
            f"{type(layer).__name__} cannot take input of shape {shapes}: "
            f"{_first_lines(exc)}", key=key, where=locate(key),
            hint="check this layer's arguments and the shapes of the layers feeding it") from None


def build_model(exp: Experiment, locate: Locate) -> Any:
    """Build the functional model described by ``model:`` (uncompiled)."""
    import keras

    inputs = make_inputs(exp)
    tensors: dict[str, Any] = dict(inputs)
    outputs = set(output_names(exp))
    last_index = len(exp.model.layers) - 1
    previous = next(iter(inputs.values()))
    for i, spec in enumerate(exp.model.layers):
        is_output = (spec.name in outputs) if exp.model.outputs else i == last_index
        layer = build_layer(exp, i, locate, output=is_output)
        if spec.inputs is None:
            feed = previous
        elif isinstance(spec.inputs, str):
            feed = tensors[spec.inputs]
        else:
            feed = [tensors[name] for name in spec.inputs]
        previous = connect(layer, feed, f"model.layers[{i}]", locate)
        tensors[spec.name or f"layers[{i}]"] = previous
    outs = [tensors[name] for name in output_names(exp)]
    model_inputs = inputs[next(iter(inputs))] if len(inputs) == 1 else inputs
    model = keras.Model(inputs=model_inputs, outputs=outs[0] if len(outs) == 1 else outs,
                        name=exp.name or "model")
    freeze(model, exp.model.freeze, locate)
    return model


def freeze(model: Any, patterns: list[str], locate: Locate) -> None:
    """Mark the layers matching ``model.freeze`` (names or globs) not trainable.

    A pattern that matches no layer is an error: a typo would otherwise train
    everything silently.
    """
    import fnmatch

    names = [layer.name for layer in model.layers]
    for i, pattern in enumerate(patterns):
        matched = [layer for layer in model.layers if fnmatch.fnmatchcase(layer.name, pattern)]
        if not matched:
            key = f"model.freeze[{i}]"
            raise ConfigError(f"{pattern!r} matches no layer{did_you_mean(pattern, names)}; "
                              f"layers: {', '.join(names)}", key=key, where=locate(key))
        for layer in matched:
            layer.trainable = False


def _component(kind: str, spec: Any, key: str, locate: Locate) -> Any:
    """A Keras built-in given by name goes to compile as the string (Keras names it
    in history exactly as the plain script would); anything else is built."""
    if spec is None:
        return None
    registry = get_registry(kind)
    if isinstance(spec, str) and registry.is_builtin(spec):
        return spec
    return registry.build(spec, key=key, where=locate(key), locate=locate)


def _per_output(kind: str, value: Any, exp: Experiment, key: str, locate: Locate,
                *, metrics: bool = False) -> Any:
    outputs = output_names(exp)
    pairs, _ = per_output(value, outputs, key, locate, every=False)
    built = []
    for sub, item in pairs:
        if metrics:
            items = item if isinstance(item, list) else [item]
            built.append([_component(kind, m, f"{sub}[{j}]" if isinstance(item, list) else sub,
                                     locate) for j, m in enumerate(items)])
        else:
            built.append(_component(kind, item, sub, locate))
    if isinstance(value, dict):
        return dict(zip(value.keys(), built))
    if isinstance(value, list) and len(outputs) > 1:
        return built
    return built[0]


def compile_model(model: Any, exp: Experiment, locate: Locate) -> None:
    """``model.compile`` with the optimizer, losses and metrics of ``compile:``."""
    c = exp.compile
    optimizer = get_registry("optimizer").build(c.optimizer, key="compile.optimizer",
                                                where=locate("compile.optimizer"),
                                                locate=locate)
    loss = _per_output("loss", c.loss, exp, "compile.loss", locate)
    metrics = _per_output("metric", c.metrics, exp, "compile.metrics", locate, metrics=True) \
        if c.metrics else None
    weighted = _per_output("metric", c.weighted_metrics, exp, "compile.weighted_metrics",
                           locate, metrics=True) if c.weighted_metrics else None
    loss_weights = c.loss_weights
    if isinstance(loss_weights, (int, float)) and not isinstance(loss_weights, bool):
        loss_weights = [float(loss_weights)]
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                      weighted_metrics=weighted, loss_weights=loss_weights,
                      steps_per_execution=c.steps_per_execution, jit_compile=c.jit_compile)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model.compile rejected the settings: {_first_lines(exc)}",
                          key="compile", where=locate("compile")) from None
