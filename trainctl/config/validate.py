"""Semantic checks after the schema: names, arguments, the layer graph, per-output keys.

Nothing here imports TensorFlow: Keras built-ins are checked against the
registry's catalog. Plug-in modules named by ``imports:`` are imported (they
usually import Keras themselves), so their names and signatures are checked
too. What needs a built model (shapes that connect, a loss that fits the
outputs) is checked later, by ``validate --build`` and before training.

Example:
    errors = check_semantics(loaded)   # [] when the config is sound
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from trainctl.config.schema import Experiment
from trainctl.errors import ConfigError, Location, TrainctlError, describe, did_you_mean


def check_semantics(loaded) -> list[ConfigError]:
    """All semantic errors of a schema-valid config, in file order."""
    exp: Experiment = loaded.experiment
    locate = loaded.locate
    errors: list[ConfigError] = []
    if exp.imports:
        from trainctl.plugins import import_plugins

        import_plugins(list(exp.imports), config_dir=loaded.config_dir, locate=locate)
    errors += check_graph(exp, locate)
    errors += check_components(exp, locate, loaded.config_dir)
    errors += check_data(exp, locate)
    errors += check_runtime(exp, locate)
    errors.sort(key=lambda e: (e.where.file, e.where.line, e.where.col) if e.where else ("", 0, 0))
    return errors


def output_names(exp: Experiment) -> list[str]:
    """Names of the model's outputs, in order (the last layer when not given)."""
    outs = exp.model.outputs
    if outs is None:
        if not exp.model.layers:  # a subclassed model: one output unless model.outputs says
            return ["output"]
        last = exp.model.layers[-1]
        return [last.name or f"layers[{len(exp.model.layers) - 1}]"]
    return [outs] if isinstance(outs, str) else list(outs)


def check_graph(exp: Experiment, locate: Callable[[str], Location]) -> list[ConfigError]:
    """Layer names are unique, every ``inputs`` names an input or an earlier layer."""
    errors = []
    if not exp.model.layers and exp.model.type is None:
        return [ConfigError("expected at least one layer (or model.type naming a "
                            "keras.Model subclass); received none", key="model.layers",
                            where=locate("model"))]
    known = list(exp.model.inputs)
    for i, layer in enumerate(exp.model.layers):
        key = f"model.layers[{i}]"
        refs = [layer.inputs] if isinstance(layer.inputs, str) else list(layer.inputs or [])
        if not refs and i == 0 and len(exp.model.inputs) > 1:
            errors.append(ConfigError(
                f"the first layer needs 'inputs:' because the model has several inputs "
                f"({', '.join(exp.model.inputs)})", key=f"{key}.inputs", where=locate(key)))
        for j, ref in enumerate(refs):
            if ref not in known:
                sub = f"{key}.inputs" + (f"[{j}]" if isinstance(layer.inputs, list) else "")
                errors.append(ConfigError(
                    f"unknown input {ref!r}{did_you_mean(ref, known)}; a layer can take a "
                    f"model input or an earlier layer: {', '.join(known)}",
                    key=sub, where=locate(sub)))
        if layer.name is not None:
            if layer.name in known:
                errors.append(ConfigError(
                    f"name {layer.name!r} is already used by an input or an earlier layer",
                    key=f"{key}.name", where=locate(f"{key}.name"),
                    hint="give every layer a unique name"))
            known.append(layer.name)
    outs = exp.model.outputs
    if outs is not None:
        names = [outs] if isinstance(outs, str) else outs
        layer_names = [layer.name for layer in exp.model.layers if layer.name]
        for j, name in enumerate(names):
            if name not in layer_names:
                sub = "model.outputs" + (f"[{j}]" if isinstance(outs, list) else "")
                errors.append(ConfigError(
                    f"unknown output layer {name!r}{did_you_mean(name, layer_names)}; "
                    f"outputs name layers: {', '.join(layer_names) or '(no named layers)'}",
                    key=sub, where=locate(sub)))
    return errors


def per_output(value: Any, outputs: list[str], key: str,
               locate: Callable[[str], Location], *, every: bool) -> tuple[list, list[ConfigError]]:
    """Split a one-for-all / list / mapping value into ``[(key, item), ...]``.

    Args:
        every: a mapping must name every output (Keras 3 requires it for losses).
    """
    if isinstance(value, dict):
        errors = []
        for name in value:
            if name not in outputs:
                errors.append(ConfigError(
                    f"unknown output {name!r}{did_you_mean(str(name), outputs)}; "
                    f"the model's outputs are: {', '.join(outputs)}",
                    key=f"{key}.{name}", where=locate(f"{key}.{name}")))
        missing = [o for o in outputs if o not in value]
        if every and missing:
            errors.append(ConfigError(
                f"missing output(s) {', '.join(missing)}: a mapping must name every output",
                key=key, where=locate(key),
                hint="use null for an output that has no loss (it still needs a target)"))
        return [(f"{key}.{k}", v) for k, v in value.items()], errors
    if isinstance(value, list) and not value:
        return [], []
    if isinstance(value, list) and len(outputs) > 1:
        # Keras 3 reads a list on a multi-output model as one entry per output
        if len(value) != len(outputs):
            return [], [ConfigError(
                f"expected {len(outputs)} items, one per output ({', '.join(outputs)}); "
                f"received {len(value)}", key=key, where=locate(key))]
        return [(f"{key}[{i}]", v) for i, v in enumerate(value)], []
    return [(key, value)], []


def _items(value: Any, key: str) -> Iterable[tuple[str, Any]]:
    """Metrics for one output: a single component or a list of them."""
    if isinstance(value, list):
        return [(f"{key}[{i}]", v) for i, v in enumerate(value)]
    return [(key, value)]


def check_components(exp: Experiment, locate, config_dir) -> list[ConfigError]:
    """Every layer, loss, metric, optimizer and callback names something real."""
    from trainctl.registry.catalog import check_component

    errors: list[ConfigError] = []
    for i, layer in enumerate(exp.model.layers):
        spec = {"type": layer.type, **layer.args}
        errors += check_component("layer", spec, key=f"model.layers[{i}]", locate=locate)
    errors += check_component("optimizer", exp.compile.optimizer, key="compile.optimizer",
                              locate=locate)
    outputs = output_names(exp)
    if exp.compile.loss is None:
        errors.append(ConfigError("required key is missing", key="compile.loss",
                                  where=locate("compile"),
                                  hint="add e.g. 'loss: sparse_categorical_crossentropy'"))
    else:
        pairs, errs = per_output(exp.compile.loss, outputs, "compile.loss", locate, every=True)
        errors += errs
        for key, item in pairs:
            if item is not None:
                errors += check_component("loss", item, key=key, locate=locate)
    for section in ("metrics", "weighted_metrics"):
        value = getattr(exp.compile, section)
        pairs, errs = per_output(value, outputs, f"compile.{section}", locate, every=False)
        errors += errs
        for key, item in pairs:
            for sub, metric in _items(item, key):
                if metric is not None:
                    errors += check_component("metric", metric, key=sub, locate=locate)
    if exp.compile.loss_weights is not None:
        pairs, errs = per_output(exp.compile.loss_weights, outputs, "compile.loss_weights",
                                 locate, every=False)
        errors += errs
        for key, item in pairs:
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                errors.append(ConfigError(f"expected a number; received {describe(item)}",
                                          key=key, where=locate(key)))
    if exp.fit.class_weight and len(outputs) > 1:
        errors.append(ConfigError(
            "class_weight works only for a model with one output (Keras 3); this model has "
            f"{len(outputs)}: {', '.join(outputs)}", key="fit.class_weight",
            where=locate("fit.class_weight"),
            hint="weight samples per output with sample weights in the data instead"))
    for i, cb in enumerate(exp.fit.callbacks):
        errors += check_component("callback", cb, key=f"fit.callbacks[{i}]", locate=locate)
    return errors


def check_data(exp: Experiment, locate) -> list[ConfigError]:
    """The data source is known and every transform is well formed."""
    from trainctl.data.transforms import check_transform
    from trainctl.data.sources import check_source

    errors: list[ConfigError] = []
    errors += _collect(lambda: check_source(exp.data.source, key="data.source", locate=locate))
    for section in ("features", "targets"):
        for i, spec in enumerate(getattr(exp.data, section)):
            key = f"data.{section}[{i}]"
            errors += _collect(lambda: check_transform(spec, key=key, locate=locate))
    return errors


def check_runtime(exp: Experiment, locate) -> list[ConfigError]:
    """Runtime options whose dependencies can be checked without TensorFlow."""
    import importlib.util

    errors = []
    if exp.runtime.tensorboard and importlib.util.find_spec("tensorboard") is None:
        errors.append(ConfigError(
            "TensorBoard logging needs the 'tensorboard' package, which is not installed",
            key="runtime.tensorboard", where=locate("runtime.tensorboard"),
            hint="pip install tensorboard"))
    return errors


def _collect(check: Callable[[], Any]) -> list[ConfigError]:
    """Run a check that returns a list of errors or raises one."""
    try:
        result = check()
    except ConfigError as exc:
        return [exc]
    except TrainctlError as exc:
        return [ConfigError(str(exc))]
    return list(result or [])
