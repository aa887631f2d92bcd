"""A Model subclass with its own ``compile`` (S27): ``compile:`` holds that method's arguments.

A registered ``keras.Model`` subclass (``model.type``) whose class defines
``compile`` (a GAN's ``compile(d_optimizer, g_optimizer, loss_fn)``) is compiled
by calling that method with the keys of ``compile:``. The rule, by parameter name:

- a name containing ``optimizer`` is an optimizer component (a name or
  ``{type: Adam, learning_rate: 0.001 | a schedule component}``), built by the registry;
- a name containing ``loss`` (but not ``loss_weights``) is a loss component, built
  into a callable (a built-in named by a string too, so the model can call it);
- any other parameter takes the YAML value as it is.

``steps_per_execution`` and ``jit_compile`` stay trainctl's keys: they are passed
on when the method takes them (by name or ``**kwargs``). Every other key must be
one of the method's parameters (did-you-mean on a typo) and every parameter
without a default must be given. For any other model ``compile:`` keeps Keras's
keys and an unknown one is an error, as the schema reports it.

Nothing here imports TensorFlow unless the caller has (validate imports only the plug-in).

Example:
    >>> errors = check_compile(exp, locate)      # trainctl validate
    >>> compile_own(model, exp, locate)          # trainctl.build.compile_model
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from trainctl.errors import ConfigError, Location, did_you_mean

Locate = Callable[[str], Location]
# compile: keys that are trainctl's settings for any model, not a compile argument
TRAINCTL_KEYS = ("steps_per_execution", "jit_compile")
_FRAMEWORKS = ("keras", "tensorflow", "tf_keras", "builtins")


def has_own_compile(cls: Any) -> bool:
    """Whether a class of the user's (not Keras's) in ``cls``'s MRO defines ``compile``.

    Example:
        >>> has_own_compile(GAN), has_own_compile(keras.Model)
        (True, False)
    """
    return inspect.isclass(cls) and any(
        "compile" in klass.__dict__ for klass in cls.__mro__
        if klass.__module__.split(".")[0] not in _FRAMEWORKS)


def parameters(cls: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    """``cls.compile``'s named parameters (no ``self``) and whether it takes ``**kwargs``."""
    params = list(inspect.signature(cls.compile).parameters.values())[1:]
    named = {p.name: p for p in params
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return named, any(p.kind is p.VAR_KEYWORD for p in params)


def argument_kind(name: str) -> str | None:
    """``"optimizer"``, ``"loss"`` or None (a plain value), from the parameter's name."""
    if "optimizer" in name:
        return "optimizer"
    if "loss" in name and "weight" not in name:
        return "loss"
    return None


def written_keys(compile_cfg: Any) -> list[str]:
    """The keys the config gives under ``compile:`` (defaults left out), extras included."""
    # model_fields_set holds the extra keys too (pydantic); sorted: a stable order
    keys = set(compile_cfg.model_fields_set) | set(compile_cfg.model_extra or {})
    return sorted(k for k in keys if k not in TRAINCTL_KEYS)


def value_of(compile_cfg: Any, name: str) -> Any:
    """The value of ``compile.<name>``, a declared field or an extra key."""
    extra = compile_cfg.model_extra or {}
    return extra[name] if name in extra else getattr(compile_cfg, name)


def unknown_key_errors(exp: Any, locate: Locate) -> list[ConfigError]:
    """For a model with Keras's compile: extra keys under ``compile:`` are errors, worded
    as the schema words any unknown key."""
    names = sorted(type(exp.compile).model_fields)
    return [ConfigError(f"unknown key {k!r}{did_you_mean(str(k), names)}; valid keys: "
                        f"{', '.join(names)}", key=f"compile.{k}", where=locate(f"compile.{k}"))
            for k in (exp.compile.model_extra or {})]


def check_compile(exp: Any, locate: Locate, cls: Any) -> list[ConfigError]:
    """The keys of ``compile:`` against ``cls.compile``'s signature, components checked.

    Args:
        exp: the Experiment.
        locate: ``key -> Location``.
        cls: the model class (``model.type`` resolved), or None for a layer graph.
    """
    from trainctl.registry.catalog import check_component

    if not has_own_compile(cls):
        return unknown_key_errors(exp, locate)
    named, _ = parameters(cls)
    errors, written = [], written_keys(exp.compile)
    for key in written:
        at = f"compile.{key}"
        if key not in named:
            errors.append(ConfigError(
                f"unknown key {key!r}{did_you_mean(key, list(named))}; {cls.__name__}.compile "
                f"takes: {', '.join(named) or 'no arguments'}", key=at, where=locate(at)))
            continue
        kind, value = argument_kind(key), value_of(exp.compile, key)
        if kind is not None and value is not None:
            errors += check_component(kind, value, key=at, locate=locate)
    missing = [n for n, p in named.items() if p.default is p.empty and n not in written
               and n not in TRAINCTL_KEYS]
    if missing:
        errors.append(ConfigError(
            f"missing argument(s) of {cls.__name__}.compile: {', '.join(missing)}",
            key="compile", where=locate("compile"),
            hint=f"add them under compile:, e.g. '{missing[0]}: ...'"))
    return errors


def compile_own(model: Any, exp: Any, locate: Locate) -> None:
    """Call ``model.compile`` with the components and values of ``compile:`` built.

    Raises:
        ConfigError: the model's compile rejected them (TypeError/ValueError).
    """
    from trainctl.registry import get_registry

    named, takes_kwargs = parameters(type(model))
    kwargs = {}
    for key in written_keys(exp.compile):
        value, kind, at = value_of(exp.compile, key), argument_kind(key), f"compile.{key}"
        kwargs[key] = value if kind is None or value is None else \
            get_registry(kind).build(value, key=at, where=locate(at), locate=locate)
    c = exp.compile
    settings = {"steps_per_execution": 1 if c.steps_per_execution == "auto"
                else c.steps_per_execution,  # "auto" is resolved later (run.execution)
                "jit_compile": c.jit_compile}
    kwargs.update({k: v for k, v in settings.items() if takes_kwargs or k in named})
    try:
        model.compile(**kwargs)
    except (TypeError, ValueError) as exc:
        from trainctl.diagnose import exception_text

        text = exception_text(exc, lines=3)
        raise ConfigError(f"{type(model).__name__}.compile rejected the settings: "
                          f"{type(exc).__name__}: {text}", key="compile",
                          where=locate("compile")) from None
