"""Config to compiled Keras model: the layer graph, then ``compile``. No file I/O.

Every layer, loss, metric and optimizer comes from the registry, so its
arguments are checked against its signature before the call, and a layer that
cannot connect to its inputs is reported at its config key with the shapes
involved. Three kinds of model (SPEC §2):

- a functional graph (``model.layers``): ``keras.Model(inputs=..., outputs=...)``;
- the same graph made by a registered Model subclass (``model.type``, e.g. one
  overriding ``train_step``): ``type(inputs=..., outputs=..., **model.args)``;
- a subclassed model without ``layers``: ``type(**model.args)``, built by calling
  it on ``model.inputs``.

``model.submodels`` are graphs that a layer ``{type: <submodel name>}`` turns
into a new ``keras.Model`` (its own weights) each time it is used.

Example:
    >>> model = build_model(cfg.experiment, cfg.locate)
    >>> compile_model(model, cfg.experiment, cfg.locate)
"""

from __future__ import annotations

from typing import Any, Callable

from trainctl.config.schema import Experiment, LayerSpec
from trainctl.config.validate import graph_output_names, output_names, per_output
from trainctl.diagnose import CodeBug, exception_text, plugin_bug
from trainctl.errors import ConfigError, Location, did_you_mean
from trainctl.registry import get_registry

Locate = Callable[[str], Location]


def _first_lines(exc: BaseException, n: int = 3) -> str:
    """Keras errors can run to a page: keep the lines that say what went wrong."""
    return exception_text(exc, lines=n)


def _bug_error(obj: Any, bug: CodeBug, what: str, key: str,
               where: Location | None) -> ConfigError:
    """A plug-in ``what`` (layer, model) whose own Python code raised: say so and where,
    rather than blame the shapes it was given."""
    return ConfigError(
        f"{type(obj).__name__} failed in its own Python code, not on its input shapes: {bug}",
        key=key, where=where,
        hint=f"fix the {what}'s Python code at {bug.file}:{bug.line} (if the error comes "
             f"from an argument the config gives the {what}, check that argument too)")


def _shapes(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: tuple(t.shape) for k, t in value.items()}
    if isinstance(value, (list, tuple)):
        return [tuple(t.shape) for t in value]
    return tuple(value.shape)


def make_inputs(specs: dict, suffix: str = "", *, key: str = "model.inputs",
                locate: Locate | None = None) -> dict[str, Any]:
    """One ``keras.Input`` per entry of an ``inputs:`` mapping (at ``key``), named after its key."""
    import keras

    inputs = {}
    for name, spec in specs.items():
        try:
            inputs[name] = keras.Input(shape=tuple(spec.shape), dtype=spec.dtype,
                                       name=name + suffix)
        except (TypeError, ValueError) as exc:  # `validate` checks the dtype; Keras has the
            at = f"{key}.{name}"                # last word on a shape or a name
            raise ConfigError(f"keras.Input rejected shape {list(spec.shape)} and dtype "
                              f"{spec.dtype!r}: {type(exc).__name__}: {_first_lines(exc)}",
                              key=at, where=locate(at) if locate else None) from None
    return inputs


def build_layer(spec: LayerSpec, key: str, locate: Locate, *, float32: bool) -> Any:
    """Instantiate one layer; ``float32`` forces an output layer's dtype under mixed precision."""
    args = spec.args
    if float32 and "dtype" not in args:
        args["dtype"] = "float32"  # softmax/loss in float16 is numerically unsafe
    return get_registry("layer").build({"type": spec.type, **args}, key=key,
                                       where=locate(key), locate=locate)


def connect(layer: Any, inputs: Any, key: str, locate: Locate) -> Any:
    """Call ``layer`` on ``inputs``; a shape that does not fit is a ConfigError at ``key``."""
    try:
        return layer(inputs)
    except Exception as exc:  # Keras raises ValueError/TypeError with the shapes
        bug = plugin_bug(exc)
        if bug is not None:
            raise _bug_error(layer, bug, "layer", key, locate(key)) from None
        raised = plugin_bug(exc, any_error=True)  # the plug-in's own raise, of any kind
        raise ConfigError(
            f"{type(layer).__name__} cannot take input of shape {_shapes(inputs)}: "
            + (str(raised) if raised else _first_lines(exc)), key=key, where=locate(key),
            hint="check this layer's arguments and the shapes of the layers feeding it"
                 + (f", and its code at {raised.file}:{raised.line}" if raised else "")
        ) from None


def build_graph(exp: Experiment, layers: list[LayerSpec], inputs: dict[str, Any],
                outputs: list[str], prefix: str, locate: Locate, *,
                float32_outputs: bool) -> list[Any]:
    """Connect ``layers`` (``<prefix>.layers[i]``) from ``inputs``; return the output tensors.

    A layer whose ``type`` names a sub-model becomes a new instance of that sub-model.
    """
    tensors: dict[str, Any] = dict(inputs)
    wanted = set(outputs)
    previous = next(iter(inputs.values()))
    for i, spec in enumerate(layers):
        key = f"{prefix}.layers[{i}]"
        is_output = (spec.name or f"layers[{i}]") in wanted
        float32 = float32_outputs and is_output
        if spec.type in exp.model.submodels:
            layer = build_submodel(exp, spec, key, locate, float32=float32)
        else:
            layer = build_layer(spec, key, locate, float32=float32)
        if spec.inputs is None:
            feed = previous
        elif isinstance(spec.inputs, str):
            feed = tensors[spec.inputs]
        else:
            feed = [tensors[name] for name in spec.inputs]
        previous = connect(layer, feed, key, locate)
        tensors[spec.name or f"layers[{i}]"] = previous
    return [tensors[name] for name in outputs]


def build_submodel(exp: Experiment, use: LayerSpec, key: str, locate: Locate, *,
                   float32: bool) -> Any:
    """A new ``keras.Model`` from ``model.submodels[use.type]`` (fresh weights each use)."""
    import keras

    extra = sorted(use.model_extra or {})
    if extra:
        raise ConfigError(f"a sub-model takes only name and inputs; received "
                          f"{', '.join(extra)}", key=f"{key}.{extra[0]}",
                          where=locate(f"{key}.{extra[0]}"))
    sub = exp.model.submodels[use.type]
    # unique input names per instance: two instances may sit in one outer model
    suffix = f"_{use.name}" if use.name else ""
    inputs = make_inputs(sub.inputs, suffix, key=f"model.submodels.{use.type}.inputs",
                         locate=locate)
    outs = build_graph(exp, sub.layers, inputs, graph_output_names(sub.layers, sub.outputs),
                       f"model.submodels.{use.type}", locate, float32_outputs=float32)
    return keras.Model(inputs=_single(list(inputs.values()), inputs), outputs=_single(outs),
                       name=use.name or None)


def _single(items: list, mapping: dict | None = None) -> Any:
    """Keras takes one tensor for one input/output, a dict or list for several."""
    if len(items) == 1:
        return items[0]
    return mapping if mapping is not None else items


def build_model(exp: Experiment, locate: Locate) -> Any:
    """Build the model described by ``model:`` (uncompiled), with ``model.freeze`` applied."""
    import keras

    cls = resolve_model_class(exp, locate) if exp.model.type else None
    inputs = make_inputs(exp.model.inputs, locate=locate)
    names = output_names(exp)
    float32 = exp.runtime.precision != "float32"
    if cls is not None and not exp.model.layers:  # subclassed: type(**args), called once
        model = get_registry("model").build({"type": exp.model.type, **exp.model.args},
                                            key="model.args", where=locate("model.type"),
                                            locate=locate)
        attach_io(model, exp, locate, inputs)
    else:
        outs = build_graph(exp, list(exp.model.layers), inputs, names, "model", locate,
                           float32_outputs=float32)
        kwargs = {"inputs": _single(list(inputs.values()), inputs), "outputs": _single(outs),
                  "name": exp.name or "model"}
        try:
            model = (cls or keras.Model)(**kwargs, **exp.model.args)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{(cls or keras.Model).__name__} rejected the graph: "
                              f"{type(exc).__name__}: {_first_lines(exc)}",
                              key="model.type", where=locate("model.type")) from None
    freeze(model, exp.model.freeze, locate)
    return model


def resolve_model_class(exp: Experiment, locate: Locate) -> Any:
    """The class named by ``model.type`` (registered ``model`` or ``module:Class``), checked.

    Needs no TensorFlow beyond what the plug-in module imports (``validate`` uses it).

    Raises:
        ConfigError: unknown name, not a ``keras.Model`` subclass, or a Keras 2
            ``train_step`` (see :func:`check_train_step`).
    """
    import inspect
    import sys

    where = locate("model.type")
    cls = get_registry("model").get(exp.model.type, key="model.type", where=where)
    keras = sys.modules.get("keras")  # a Model subclass's module has imported Keras
    if not (inspect.isclass(cls) and keras is not None and issubclass(cls, keras.Model)):
        raise ConfigError(f"{exp.model.type!r} is not a keras.Model subclass "
                          f"({type(cls).__name__})", key="model.type", where=where)
    check_train_step(cls, key="model.type", where=where)
    return cls


# tf.keras 2 attributes whose use in a train_step runs under Keras 3 but logs wrong values.
_KERAS2_STEP_ATTRS = ("compiled_loss", "compiled_metrics")
KERAS3_TRAIN_STEP = (
    "loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, "
    "training=True); self.optimizer.apply(grads, self.trainable_variables); then update "
    "self.metrics (the 'loss' tracker with the loss, the others with y, y_pred) and return "
    "self.get_metrics_result()")


def check_train_step(cls: type, *, key: str, where: Location | None) -> None:
    """Refuse a ``train_step``/``test_step`` that uses ``self.compiled_loss``/``compiled_metrics``.

    Keras 3 runs such code with deprecation warnings only, but logs a wrong loss
    (KERAS3_NOTES). The source is tokenised: comments and strings do not count.

    Example:
        >>> check_train_step(CustomModel, key="model.type", where=None)  # Keras 3 style: ok
    """
    import inspect
    import io
    import tokenize

    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in ("keras", "tensorflow", "tf_keras", "builtins"):
            continue
        for method in ("train_step", "test_step"):
            func = klass.__dict__.get(method)
            try:
                lines, start = inspect.getsourcelines(func)
            except (TypeError, OSError):
                continue  # not defined here, or no source (compiled, interactive)
            tokens = list(tokenize.generate_tokens(io.StringIO("".join(lines)).readline))
            for prev, tok in zip(tokens, tokens[1:]):
                if tok.string in _KERAS2_STEP_ATTRS and prev.string == ".":
                    file = inspect.getsourcefile(func)
                    raise ConfigError(
                        f"{klass.__name__}.{method} uses self.{tok.string} "
                        f"({file}:{start + tok.start[0] - 1}): that is tf.keras 2 code; "
                        "Keras 3 runs it but logs a wrong loss and metrics",
                        key=key, where=where, hint=f"write it the Keras 3 way: "
                                                   f"{KERAS3_TRAIN_STEP}")


def attach_io(model: Any, exp: Experiment, locate: Locate,
              inputs: dict[str, Any] | None = None) -> Any:
    """Give a subclassed model symbolic ``inputs``/``outputs``, as a functional model has.

    A subclassed model has neither; trainctl reads them (data signature, checks,
    predict), so the model is called once on ``model.inputs`` and the tensors are
    kept. Call it on a subclassed model loaded from ``model.keras`` too. A model
    that has them already is returned unchanged.

    Example:
        >>> model = attach_io(keras.saving.load_model(path), cfg.experiment, cfg.locate)
    """
    if getattr(model, "outputs", None) is not None and hasattr(model, "inputs"):
        return model
    inputs = inputs if inputs is not None else make_inputs(exp.model.inputs, locate=locate)
    feed = _single(list(inputs.values()), inputs)
    try:
        out = model(feed)
    except Exception as exc:  # the user's call(): say which inputs it was given
        bug = plugin_bug(exc)
        if bug is not None:
            raise _bug_error(model, bug, "model", "model.type", locate("model.type")) from None
        raised = plugin_bug(exc, any_error=True)  # the model's own raise, of any kind
        raise ConfigError(f"{type(model).__name__} cannot be called on model.inputs "
                          f"{_shapes(feed)}: " + (str(raised) if raised else
                                                  f"{type(exc).__name__}: {_first_lines(exc)}"),
                          key="model.type", where=locate("model.type")) from None
    import keras

    outs = keras.tree.flatten(out)
    names = output_names(exp)
    if len(outs) != len(names):
        raise ConfigError(f"{type(model).__name__} returns {len(outs)} output(s) but "
                          f"model.outputs names {len(names)}: {', '.join(names)}",
                          key="model.outputs", where=locate("model"))
    # object.__setattr__: plain attributes, not tracked as layer state (nor saved)
    object.__setattr__(model, "inputs", list(inputs.values()))
    object.__setattr__(model, "outputs", outs)
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
    if isinstance(value, dict) and "type" not in value:
        return dict(zip(value.keys(), built))
    if isinstance(value, list) and len(outputs) > 1:
        return built
    return built[0]


def compile_model(model: Any, exp: Experiment, locate: Locate) -> None:
    """``model.compile`` with the optimizer, losses and metrics of ``compile:``; a model
    class with its own ``compile`` gets that method's arguments (trainctl.model_compile)."""
    from trainctl.model_compile import compile_own, has_own_compile
    from trainctl.run.loss_weights import attach, compile_loss_weights

    if has_own_compile(type(model)):
        return compile_own(model, exp, locate)

    c = exp.compile
    optimizer = get_registry("optimizer").build(c.optimizer, key="compile.optimizer",
                                                where=locate("compile.optimizer"),
                                                locate=locate)
    loss = _per_output("loss", c.loss, exp, "compile.loss", locate)
    metrics = _per_output("metric", c.metrics, exp, "compile.metrics", locate, metrics=True) \
        if c.metrics else None
    weighted = _per_output("metric", c.weighted_metrics, exp, "compile.weighted_metrics",
                           locate, metrics=True) if c.weighted_metrics else None
    # schedules become variables set by epoch (S26): created here, under the strategy
    loss_weights, scheduled = compile_loss_weights(c.loss_weights, output_names(exp), locate)
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                      weighted_metrics=weighted, loss_weights=loss_weights,
                      # "auto" is resolved once the data is known (run.execution)
                      steps_per_execution=1 if c.steps_per_execution == "auto"
                      else c.steps_per_execution, jit_compile=c.jit_compile)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model.compile rejected the settings: {_first_lines(exc)}",
                          key="compile", where=locate("compile")) from None
    attach(model, scheduled)
