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

from trainctl.config.loss_weights import check as check_loss_weight
from trainctl.config.schema import Experiment
from trainctl.config.validate_fit import check_fit
from trainctl.sweep.space import check_sweep
from trainctl.errors import ConfigError, Location, TrainctlError, did_you_mean


def check_semantics(loaded) -> list[ConfigError]:
    """All semantic errors of a schema-valid config, in file order."""
    exp: Experiment = loaded.experiment
    locate = loaded.locate
    errors: list[ConfigError] = []
    from trainctl.plugins import add_search_path, import_plugins

    add_search_path(loaded.config_dir)  # `module:Name` components import from here too
    if exp.imports:
        import_plugins(list(exp.imports), config_dir=loaded.config_dir, locate=locate)
    errors += check_inputs(exp, locate)
    errors += check_graph(exp, locate)
    errors += check_components(exp, locate, loaded.config_dir)
    errors += check_data(exp, locate)
    errors += check_runtime(exp, locate)
    errors += check_fit(exp, locate)
    sweep_errors = check_sweep(loaded)
    errors += sweep_errors
    if not sweep_errors and exp.sweep is not None:  # each value is checked on a sound section
        from trainctl.sweep.values import check_sweep_values

        errors += check_sweep_values(loaded)
    errors.sort(key=lambda e: (e.where.file, e.where.line, e.where.col) if e.where else ("", 0, 0))
    return errors


def output_names(exp: Experiment) -> list[str]:
    """Names of the model's outputs, in order (the last layer when not given).

    A subclassed model (``model.type`` without layers) has one output, ``output``,
    unless ``model.outputs`` names them.
    """
    if exp.model.outputs is None and not exp.model.layers:
        return ["output"]
    return graph_output_names(exp.model.layers, exp.model.outputs)


def graph_output_names(layers: list, outputs: Any) -> list[str]:
    """Output names of a layer graph: ``outputs`` as a list, else its last layer's name."""
    if outputs is None:
        last = layers[-1]
        return [last.name or f"layers[{len(layers) - 1}]"]
    return [outputs] if isinstance(outputs, str) else list(outputs)


def check_inputs(exp: Experiment, locate: Callable[[str], Location]) -> list[ConfigError]:
    """Every ``dtype`` of ``model.inputs`` (and of each sub-model's) is one Keras knows;
    ``keras.Input`` would otherwise fail with a bare ValueError under ``--build`` or ``fit``."""
    from trainctl.registry.catalog import dtypes

    known = dtypes()
    if not known:  # a catalog from before dtypes were recorded: nothing to check against
        return []
    groups = [("model.inputs", exp.model.inputs)] + [
        (f"model.submodels.{name}.inputs", sub.inputs)
        for name, sub in exp.model.submodels.items()]
    errors = []
    for prefix, inputs in groups:
        for name, spec in inputs.items():
            if spec.dtype not in known:
                key = f"{prefix}.{name}.dtype"
                errors.append(ConfigError(
                    f"unknown dtype {spec.dtype!r}{did_you_mean(spec.dtype, known)}; "
                    f"expected one of: {', '.join(known)}", key=key, where=locate(key)))
    return errors


def check_graph(exp: Experiment, locate: Callable[[str], Location]) -> list[ConfigError]:
    """Layer names are unique, every ``inputs`` names an input or an earlier layer, outputs
    name layers; the same for each of ``model.submodels``, which main-graph layers may use
    as their ``type`` (sub-models themselves may not nest)."""
    if not exp.model.layers and exp.model.type is None:
        return [ConfigError("expected at least one layer (or model.type naming a "
                            "keras.Model subclass); received none", key="model.layers",
                            where=locate("model"))]
    errors = _submodel_name_errors(exp, locate)
    for name, sub in exp.model.submodels.items():
        prefix = f"model.submodels.{name}"
        errors += _graph_errors(sub.inputs, sub.layers, sub.outputs, prefix, locate)
        for i, layer in enumerate(sub.layers):
            if layer.type in exp.model.submodels:
                key = f"{prefix}.layers[{i}].type"
                errors.append(ConfigError(
                    f"sub-model {layer.type!r} used inside sub-model {name!r}: sub-models "
                    "do not nest", key=key, where=locate(key),
                    hint="use the sub-models one after another in model.layers"))
    if exp.model.layers:
        errors += _graph_errors(exp.model.inputs, exp.model.layers, exp.model.outputs,
                                "model", locate)
    return errors


def _submodel_name_errors(exp: Experiment, locate) -> list[ConfigError]:
    """A sub-model may not take a layer's name: ``{type: Dense}`` would be ambiguous."""
    from trainctl.registry.catalog import names

    layer_names = set(names("layer"))
    return [ConfigError(f"sub-model name {name!r} is also a layer name; rename the sub-model",
                        key=f"model.submodels.{name}", where=locate(f"model.submodels.{name}"))
            for name in exp.model.submodels if name in layer_names]


def _graph_errors(inputs: dict, layers: list, outputs: Any, prefix: str,
                  locate: Callable[[str], Location]) -> list[ConfigError]:
    """The checks of :func:`check_graph` for one graph whose keys start with ``prefix``."""
    errors = []
    known = list(inputs)
    for i, layer in enumerate(layers):
        key = f"{prefix}.layers[{i}]"
        refs = [layer.inputs] if isinstance(layer.inputs, str) else list(layer.inputs or [])
        if not refs and i == 0 and len(inputs) > 1:
            errors.append(ConfigError(
                f"the first layer needs 'inputs:' because the model has several inputs "
                f"({', '.join(inputs)})", key=f"{key}.inputs", where=locate(key)))
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
    if outputs is not None:
        names = [outputs] if isinstance(outputs, str) else outputs
        layer_names = [layer.name for layer in layers if layer.name]
        for j, name in enumerate(names):
            if name not in layer_names:
                sub = f"{prefix}.outputs" + (f"[{j}]" if isinstance(outputs, list) else "")
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
    if isinstance(value, dict) and "type" not in value:  # {type: ...} is one component
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

    errors: list[ConfigError] = _model_type_errors(exp, locate)
    graphs = [("model", exp.model.layers)] + [
        (f"model.submodels.{name}", sub.layers) for name, sub in exp.model.submodels.items()]
    for prefix, layers in graphs:
        for i, layer in enumerate(layers):
            key = f"{prefix}.layers[{i}]"
            if layer.type in exp.model.submodels:
                extra = sorted(layer.model_extra or {})
                errors += [ConfigError(f"a sub-model takes only name and inputs; received "
                                       f"{arg!r}", key=f"{key}.{arg}",
                                       where=locate(f"{key}.{arg}")) for arg in extra]
                continue
            spec = {"type": layer.type, **layer.args}
            errors += check_component("layer", spec, key=key, locate=locate)
    errors += compile_errors(exp, locate)
    for i, cb in enumerate(exp.fit.callbacks):
        errors += check_component("callback", cb, key=f"fit.callbacks[{i}]", locate=locate)
    tensorboard = exp.runtime.tensorboard
    if isinstance(tensorboard, dict):  # the TensorBoard callback's arguments, checked as above
        errors += check_component("callback", {**tensorboard, "type": "TensorBoard"},
                                  key="runtime.tensorboard", locate=locate)
        if "type" in tensorboard:
            errors.append(ConfigError(
                "runtime.tensorboard takes the TensorBoard callback's arguments; 'type' is "
                "not one of them", key="runtime.tensorboard.type",
                where=locate("runtime.tensorboard.type"),
                hint="remove it (another callback goes in fit.callbacks)"))
    return errors


def compile_errors(exp: Experiment, locate) -> list[ConfigError]:
    """``compile:``: Keras's keys (optimizer, per-output losses and metrics, loss weights),
    or, for a model class with its own ``compile``, that method's arguments (S27)."""
    from trainctl.model_compile import check_compile, has_own_compile
    from trainctl.registry.catalog import check_component

    cls = None
    if exp.model.type is not None:
        from trainctl.build import resolve_model_class

        try:
            cls = resolve_model_class(exp, locate)
        except ConfigError:
            return []  # reported at model.type already; its compile cannot be judged
    errors = check_compile(exp, locate, cls)  # its own compile's arguments, or unknown keys
    if has_own_compile(cls):
        return errors
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
            errors += check_loss_weight(item, key, locate)  # a number or a schedule (S26)
    if not errors and exp.compile.loss is not None:  # well formed: do they agree?
        from trainctl.config.target_kinds import kind_errors

        errors += kind_errors(exp, outputs, locate)
    return errors


def _model_type_errors(exp: Experiment, locate) -> list[ConfigError]:
    """``model.type`` names a keras.Model subclass with a Keras 3 train_step; ``model.args``
    fit its constructor (checked here only for a subclassed model: with ``layers`` the
    constructor also takes the graph)."""
    if exp.model.type is None:
        if exp.model.args:
            return [ConfigError("model.args needs model.type naming the model class",
                                key="model.args", where=locate("model.args"))]
        return []
    # imported only for a subclassed model: a plain layer graph needs no trainctl.build
    from trainctl.build import resolve_model_class
    from trainctl.registry.catalog import check_component

    try:
        resolve_model_class(exp, locate)
    except ConfigError as exc:
        return [exc]
    if exp.model.layers:
        return []
    return check_component("model", {"type": exp.model.type, **exp.model.args},
                           key="model.args", locate=locate)


def check_data(exp: Experiment, locate) -> list[ConfigError]:
    """The data source is known and every transform is well formed."""
    from trainctl.data.transforms import check_transform
    from trainctl.data.sources import check_source

    errors: list[ConfigError] = []
    errors += _collect(lambda: check_source(exp.data.source, key="data.source", locate=locate))
    if exp.data.validation is not None:  # one kind at a time (holdout, split, source, ...)
        from trainctl.data.load import validation_kind

        errors += _collect(lambda: validation_kind(exp.data.validation, locate) and [])
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
    if exp.runtime.tracking.mlflow is not None and importlib.util.find_spec("mlflow") is None:
        errors.append(ConfigError(
            "MLflow tracking needs the 'mlflow-skinny' package (with SQLAlchemy and alembic "
            "for its SQLite store), which is not installed", key="runtime.tracking.mlflow",
            where=locate("runtime.tracking.mlflow"),
            hint="pip install 'trainctl[mlflow]'"))
    if exp.runtime.tracking.mlflow is not None and exp.runtime.tracking.mlflow.uri:
        from trainctl.config.tracking_uri import mlflow_uri_problem

        problem = mlflow_uri_problem(exp.runtime.tracking.mlflow.uri)
        if problem:
            errors.append(ConfigError(
                f"{problem}; received {exp.runtime.tracking.mlflow.uri!r}",
                key="runtime.tracking.mlflow.uri", where=locate("runtime.tracking.mlflow.uri"),
                hint="accepted: a folder path or file:///path, sqlite:///path/mlflow.db, "
                     "http(s)://host[:port], databricks[://profile], databricks-uc, uc, "
                     "postgresql|mysql|mssql[+driver]://..., or a plug-in's scheme"))
    dist = exp.runtime.distribution
    for field in ("device", "logical_cpus"):
        if getattr(dist, field) is not None and dist.strategy == "multi_worker":
            key = f"runtime.distribution.{field}"
            errors.append(ConfigError(
                f"{field} is not used by strategy 'multi_worker'; received "
                f"{getattr(dist, field)!r}", key=key, where=locate(key),
                hint="device goes with one_device, logical_cpus with mirrored; a "
                     "multi_worker run uses each worker's own device"))
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
