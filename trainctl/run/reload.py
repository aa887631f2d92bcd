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

``model.keras`` loads in Keras's safe mode (``safe_mode=True``, the default): a
file holding Python bytecode (a ``Lambda`` layer's function) is refused with a
message saying how to allow it; ``reopen(..., unsafe=True)`` (the CLI's
``--unsafe``) loads it anyway, for files the user trusts. A truncated or corrupt
file is an error naming it, not a traceback.

Example:
    >>> run, cfg, model = reopen(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator

from trainctl.artifacts import RunDir
from trainctl.config import LoadedConfig, load_config
from trainctl.errors import UsageError
from trainctl.transfer.source import CHECKPOINTS  # --checkpoint: the names weights_from uses

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
    from trainctl.keras2_plugins import adapt_keras3

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


def config_base(run: RunDir, info: dict) -> Path:
    """The folder a run's relative paths start from: its original config's (run.json)."""
    return Path(info["config_path"]).parent if info.get("config_path") else run.path


def run_config(run: RunDir, info: dict) -> LoadedConfig:
    """A run's own config.yaml, paths resolving as when it was trained."""
    return load_run_config(run.file("config.yaml"), base_dir=config_base(run, info))


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


UNSAFE_HINT = "pass --unsafe to evaluate/predict if you trust this file"
_REDO = ("the run's model cannot be read from this file: run 'trainctl fit' again "
         "(the run's checkpoints/ may hold an intact copy)")


def _missing(path: Path, status: Any) -> str:
    """Why a run has no ``path`` and what to use instead."""
    final = path.name == "model.keras"
    run = path.parent if final else path.parent.parent
    others = [name for name in ("best", "last") if (run / CHECKPOINTS[name]).is_file()]
    instead = (f"--checkpoint {' or '.join(others)} uses checkpoints/" if others else "")
    if final and status in ("running", "interrupted", "failed"):
        hints = [f"`trainctl resume {run}` continues it to the end", instead]
        why = f"the run did not complete (status {status!r})"
    elif final:
        hints, why = [instead], f"the run's status is {status!r}: was the file deleted?"
    else:
        hints = [instead, "the final model: leave out --checkpoint" if
                 (run / "model.keras").is_file() else ""]
        why = ("best.keras is written when the monitored value improves, last.keras after "
               "each epoch" if path.parent.name == "checkpoints" else "")
    hint = "; ".join(h for h in hints if h)
    return (f"{path}: not found ({why})" + (f"\n  hint: {hint}" if hint else ""))


def check_model_file(path: Path, status: Any) -> None:
    """Fail early, naming ``path``, when model.keras is missing, a folder, unreadable,
    or not a ``.keras`` zip archive (truncated, corrupt, something else).

    Reading the zip's directory is cheap; damaged contents (a bad CRC) are found
    by the load itself and reported by :func:`load_failed`.
    """
    if not path.exists():
        raise UsageError(_missing(path, status))
    if not path.is_file():
        raise UsageError(f"{path}: is a folder; expected the model file that 'trainctl fit' "
                         "wrote")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the model file: {exc.strerror or exc}\n"
                         "  hint: check the file's permissions") from None
    problem, names = None, set()
    if size == 0:
        problem = "an empty file (0 bytes)"
    elif not head.startswith(b"PK"):
        problem = f"not a zip archive ({size} bytes, starting with {head!r})"
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            problem = (f"a zip archive cut short or damaged ({size} bytes; "
                       f"{type(exc).__name__}: {exc})")
    if problem:
        raise UsageError(f"{path}: cannot load the model: the file is truncated or corrupt: "
                         f"{problem}, not a .keras model\n  hint: {_REDO}")
    if "config.json" not in names:
        raise UsageError(f"{path}: cannot load the model: a zip archive, but not a .keras "
                         f"model (no config.json in it; it holds "
                         f"{', '.join(sorted(names)[:5]) or 'nothing'})\n  hint: {_REDO}")


def _refused_by_safe_mode(exc: BaseException) -> bool:
    text = str(exc)
    return "safe_mode" in text or "enable_unsafe_deserialization" in text


def load_failed(path: Path, exc: BaseException) -> UsageError:
    """The UsageError for a model.keras that Keras could not load, by cause.

    Safe mode refusing Python code in the file (a Lambda layer) says how to allow
    it; damaged contents say the file is corrupt; anything else (most often a
    plug-in class that cannot be found) names the class problem Keras reported.
    """
    if _refused_by_safe_mode(exc):
        first = str(exc).strip().split(". ")[0].rstrip(".")
        return UsageError(f"{path}: Keras's safe mode refused to load this model: {first}. "
                          "Loading it would run Python code stored in the file\n"
                          f"  hint: {UNSAFE_HINT}")
    damaged = isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError)) or any(
        word in str(exc) for word in ("CRC", "truncated", "Unable to synchronously open",
                                      "not a zip file", "Bad magic number"))
    if damaged:
        return UsageError(f"{path}: cannot load the model: the file is corrupt "
                          f"({type(exc).__name__}: {_last_line(exc)})\n  hint: {_REDO}")
    return UsageError(f"{path}: cannot load the model: {_last_line(exc)}\n"
                      "  hint: a plug-in class must be importable as when the run was trained: "
                      "check the run's imports: and module:Class names")


def reopen(path: Path, *, verbose: bool = False, unsafe: bool = False,
           checkpoint: str = "final") -> tuple[RunDir, LoadedConfig, Any]:
    """Load a run's config.yaml and model.keras (compiled from the config); paths resolve
    as when it was trained.

    Args:
        path: the run folder.
        checkpoint: ``final`` (model.keras, a completed run's), or ``best`` / ``last``
            (``checkpoints/``: any run that finished an epoch has them).
        verbose: show TensorFlow's start-up messages.
        unsafe: load with ``safe_mode=False``: allows Python code stored in the file
            (a ``Lambda`` layer's function), which runs when it loads. Only for files
            the user trusts (the CLI's ``--unsafe``).

    Raises:
        UsageError: no model.keras (the run did not complete), a truncated or corrupt
            one, one that safe mode refuses (the message says how to allow it), or
            one whose classes cannot be found.
        ConfigError: a plug-in module the run used cannot be imported any more.
    """
    from trainctl.build import attach_io, compile_model
    from trainctl.plugins import import_plugins, module_hashes
    from trainctl.run.runtime import import_tensorflow

    run = RunDir.open(path)
    info = run.read_json("run.json")
    if not isinstance(info, dict):
        raise UsageError(f"{run.file('run.json')}: expected a JSON object (as 'trainctl fit' "
                         f"writes it); received a {type(info).__name__}")
    model_path = run.file(CHECKPOINTS[checkpoint])
    check_model_file(model_path, info.get("status"))  # before TensorFlow: fail fast
    cfg = run_config(run, info)
    import_tensorflow(verbose)
    import keras

    modules = import_plugins(list(cfg.experiment.imports), config_dir=cfg.config_dir,
                             locate=cfg.locate)
    warn_changed(info, plugins=module_hashes(modules))
    objects = custom_objects(cfg)
    try:
        model = keras.saving.load_model(model_path, custom_objects=objects, compile=False,
                                        safe_mode=not unsafe)
    except Exception as exc:  # noqa: BLE001 - Keras raises many kinds; sorted by load_failed
        raise load_failed(model_path, exc) from None
    model = attach_io(model, cfg.experiment, cfg.locate)  # a subclassed model has no outputs
    compile_model(model, cfg.experiment, cfg.locate)
    return run, cfg, model


def changed_inputs(info: dict, *, plugins: dict[str, str] | None = None,
                   data_files: dict[str, str] | None = None) -> list[str]:
    """What differs from the plug-in modules and data files the run was trained with
    (run.json's sha256 of each), one line each; only the kinds given are compared.

    Example:
        >>> changed_inputs({"plugins": {"my_layers": "ab12..."}}, plugins={"my_layers": "cd34..."})
        ['plug-in module my_layers changed since the run was trained']
    """
    lines = []
    for kind, now, recorded in (("plug-in module", plugins, info.get("plugins")),
                                ("data file", data_files, info.get("data_files"))):
        if now is None or not isinstance(recorded, dict):
            continue
        if kind == "data file" and sorted(recorded.values()) == sorted(now.values()):
            continue  # the same bytes, read from another path (another TRAINCTL_DATA_DIR)
        for name in sorted(recorded.keys() | now.keys()):
            if recorded.get(name) != now.get(name):
                how = ("is new" if name not in recorded else "is not used any more"
                       if name not in now else "changed")
                lines.append(f"{kind} {name} {how} since the run was trained")
    return lines


def warn_changed(info: dict, **current: dict[str, str]) -> None:
    """Print a warning for each of :func:`changed_inputs`' lines (to stderr)."""
    import sys

    for line in changed_inputs(info, **current):
        print(f"warning: {line}: results may differ from the run's", file=sys.stderr,
              flush=True)
