"""Reopen a finished run: its config (as resolved when it ran), plug-ins and model.

A run that used plug-ins loads back in ``evaluate`` and ``predict``: the run's
``imports:`` and every ``module:Class`` name in its model, compile and fit
sections are imported, and every user-registered object plus trainctl's own
layers go to ``keras.saving.load_model`` as ``custom_objects`` (KERAS3_NOTES:
custom objects must be known to load). The model is loaded uncompiled and
compiled again from the run's config, through the same registry as ``fit``:
Keras's own restore of the compile settings calls each custom loss or metric
with its ``get_config()``, which a seed-style plug-in (``CustomMSE(regularization_factor,
name)``, no ``get_config``) does not survive, and the config says exactly what
the run was compiled with.

Example:
    >>> run, cfg, model = reopen(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

from trainctl.artifacts import RunDir
from trainctl.config import LoadedConfig, load_config
from trainctl.errors import UsageError

# `module.path:Attr` as a component name (not a path, not a URL).
_MODULE_ATTR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
# Config sections whose component names can end up inside model.keras.
_MODEL_SECTIONS = ("model", "compile", "fit")


def component_names(raw: dict) -> Iterator[tuple[str, str]]:
    """``(dotted key, "module:Attr")`` for every module-qualified component name.

    A name counts when it is a mapping's ``type`` or a bare string outside a
    component's arguments (``compile.loss: my_losses:custom_mse``).

    Example:
        >>> list(component_names({"model": {"layers": [{"type": "m:L", "units": 3}]}}))
        [('model.layers[0].type', 'm:L')]
    """
    def walk(value: Any, key: str, in_args: bool) -> Iterator[tuple[str, str]]:
        if isinstance(value, dict):
            is_component = "type" in value
            for k, v in value.items():
                sub = f"{key}.{k}"
                if k == "type" and isinstance(v, str) and _MODULE_ATTR.match(v):
                    yield sub, v
                else:
                    yield from walk(v, sub, in_args or is_component)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from walk(item, f"{key}[{i}]", in_args)
        elif isinstance(value, str) and not in_args and _MODULE_ATTR.match(value):
            yield key, value

    for section in _MODEL_SECTIONS:
        if section in raw:
            yield from walk(raw[section], section, False)


def custom_objects(cfg: LoadedConfig) -> dict[str, Any]:
    """Everything a run's ``model.keras`` may name that Keras does not know by itself.

    trainctl's layers, every plug-in registered in :data:`trainctl.registry.REGISTRIES`
    (under its registered name and its ``__name__``), and each ``module:Attr``
    the config names (imported here). Call after the run's ``imports:`` are imported.
    """
    from trainctl.layers import LAYERS
    from trainctl.registry import REGISTRIES, import_attr
    from trainctl.plugins import adapt_keras3

    objects: dict[str, Any] = dict(LAYERS)
    for kind, registry in REGISTRIES.items():
        for name in registry.names(builtins=False):
            obj = registry.get(name)
            if isinstance(obj, str):
                continue
            objects.setdefault(name, obj)
            objects.setdefault(getattr(obj, "__name__", name), obj)
    for key, name in component_names(cfg.raw):
        obj = import_attr(name, key=key, where=cfg.locate(key))
        adapt_keras3("metric", obj)  # a no-op for anything but a Metric subclass
        objects.setdefault(getattr(obj, "__name__", name.rpartition(":")[2]), obj)
    return objects


def load_run_config(path: Path, *, base_dir: Path) -> LoadedConfig:
    """A run's ``config.yaml``: already resolved, so its ``extends:`` is not followed again.

    The stored config keeps ``extends:`` as a record, but its relative paths
    point from the original config's folder, not the run folder, and the bases'
    values are merged in already.

    Raises:
        ConfigError / ConfigErrors: the stored config no longer fits the schema.
    """
    from pydantic import ValidationError

    from trainctl.config.errors_map import translate
    from trainctl.config.load import read_yaml
    from trainctl.config.schema import Experiment
    from trainctl.errors import ConfigErrors

    data, where = read_yaml(path)
    if not (isinstance(data, dict) and "extends" in data):
        return load_config(path, base_dir=base_dir)
    data = {k: v for k, v in data.items() if k != "extends"}
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        errors = translate(exc, data, where, Experiment)
        raise (errors[0] if len(errors) == 1 else ConfigErrors(errors)) from None
    return LoadedConfig(experiment, data, path, (), where, base_dir)


def _last_line(exc: BaseException) -> str:
    # the real cause is at the end of Keras's message (KERAS3_NOTES)
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def reopen(path: Path, *, verbose: bool = False) -> tuple[RunDir, LoadedConfig, Any]:
    """Load a run's config.yaml and model.keras (compiled from the config); paths resolve
    as when it was trained.

    Raises:
        UsageError: no model.keras (the run did not complete) or it cannot be loaded.
        ConfigError: a plug-in module the run used cannot be imported any more.
    """
    from trainctl.build import attach_io, compile_model
    from trainctl.plugins import import_plugins
    from trainctl.run.runtime import import_tensorflow

    run = RunDir.open(path)
    info = run.read_json("run.json")
    base_dir = Path(info["config_path"]).parent if info.get("config_path") else run.path
    cfg = load_run_config(run.file("config.yaml"), base_dir=base_dir)
    import_tensorflow(verbose)
    import keras

    import_plugins(list(cfg.experiment.imports), config_dir=cfg.config_dir, locate=cfg.locate)
    model_path = run.file("model.keras")
    if not model_path.is_file():
        raise UsageError(f"{run.path}: no model.keras (the run's status is "
                         f"{info.get('status')!r}); only a completed run can be reused")
    objects = custom_objects(cfg)
    try:
        model = keras.saving.load_model(model_path, custom_objects=objects, compile=False)
    except Exception as exc:
        raise UsageError(f"{model_path}: cannot load the model: {_last_line(exc)} (a "
                         "plug-in class must be importable as when the run was trained: "
                         "check the run's imports: and module:Class names)") from None
    model = attach_io(model, cfg.experiment, cfg.locate)  # a subclassed model has no outputs
    compile_model(model, cfg.experiment, cfg.locate)
    return run, cfg, model
