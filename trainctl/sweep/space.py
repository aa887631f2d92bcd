"""The ``sweep:`` section: its schema and the checks ``validate`` runs (no Optuna import).

Every parameter is a dotted config key, as ``--set`` takes it, mapped to one
distribution: ``{choice: [...]}``, ``{grid: [...]}``, ``{uniform: [lo, hi]}``,
``{loguniform: [lo, hi]}`` or ``{int: [lo, hi]}``. The key must exist in the
resolved config (its value there is what a plain ``fit`` uses).

Example:
    >>> errors = check_sweep(loaded)          # [] when the section is sound
    >>> objective(loaded.experiment)
    ('val_loss', 'minimize')
"""


from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from trainctl.errors import ConfigError, describe, did_you_mean

KINDS = ("choice", "grid", "uniform", "loguniform", "int")
PRUNERS = ("median", "hyperband")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Objective(_Strict):
    """``sweep.objective``: the history key to optimise (its best epoch) and which way."""

    metric: Optional[Annotated[str, Field(min_length=1)]] = None
    direction: Optional[Literal["minimize", "maximize"]] = None


class PrunerSpec(_Strict):
    """``sweep.pruner`` as a mapping: ``type`` and the Optuna pruner's arguments."""

    type: Literal["median", "hyperband"]
    n_startup_trials: Optional[Annotated[int, Field(ge=0)]] = None  # median
    n_warmup_steps: Optional[Annotated[int, Field(ge=0)]] = None  # median
    interval_steps: Optional[Annotated[int, Field(ge=1)]] = None  # median
    min_resource: Optional[Annotated[int, Field(ge=1)]] = None  # hyperband
    reduction_factor: Optional[Annotated[int, Field(ge=2)]] = None  # hyperband


class SweepConfig(_Strict):
    """``sweep:``: sampler, trial count, objective, pruner and the parameters."""

    sampler: Literal["grid", "random", "tpe"] = "tpe"
    trials: Optional[Annotated[int, Field(ge=1)]] = None
    objective: Objective = Objective()
    pruner: Optional[Union[Literal["median", "hyperband"], PrunerSpec]] = None
    params: Annotated[dict[str, Any], Field(min_length=1)]


def pruner_args(spec: Any) -> dict[str, Any]:
    """The pruner as plain data ``{"type": ..., **args}`` (None: no pruning).

    Example:
        >>> pruner_args("median")
        {'type': 'median'}
    """
    if spec is None:
        return {}
    if isinstance(spec, str):
        return {"type": spec}
    return {k: v for k, v in spec.model_dump().items() if v is not None}


def objective(exp: Any) -> tuple[str, str]:
    """``(metric, direction)``: ``sweep.objective``, else the run's monitored metric
    (``fit.monitor``, ``val_loss`` with validation data, ``loss``) and its natural way.

    Example:
        >>> objective(exp)   # a config with validation data and no sweep.objective
        ('val_loss', 'minimize')
    """
    from trainctl.run.monitor import default_monitor, monitor_mode

    obj = exp.sweep.objective if exp.sweep is not None else Objective()
    metric = obj.metric or default_monitor(exp.fit.monitor,
                                           has_validation=exp.data.validation is not None)
    direction = obj.direction or ("maximize" if monitor_mode(metric) == "max" else "minimize")
    return metric, direction


def check_sweep(loaded: Any) -> list[ConfigError]:
    """Every ``sweep.params`` key exists in the config and has one sound distribution;
    the pruner's arguments fit its type.

    Args:
        loaded: a :class:`trainctl.config.LoadedConfig` (schema-valid).

    Example:
        >>> [str(e) for e in check_sweep(loaded)]
        ['exp.yaml:31:5: sweep.params.fit.epoch: the config has no key fit.epoch ...']
    """
    sweep = loaded.experiment.sweep
    if sweep is None:
        return []
    errors = []
    for name, spec in sweep.params.items():
        path = ("sweep", "params", name)
        where = loaded.source.locate(path, key_position=True)
        key = f"sweep.params.{name}"
        problem = _missing_key(loaded.raw, name) or _spec_problem(spec, sweep.sampler)
        if problem:
            message, hint = problem
            errors.append(ConfigError(message, key=key, where=where, hint=hint))
    errors += _pruner_errors(loaded)
    return errors


def _missing_key(raw: dict, name: str) -> tuple[str, str | None] | None:
    """Why ``name`` is not a key of the resolved config, or None when it is."""
    from trainctl.config.source import format_key, parse_key

    try:
        path = parse_key(name)
    except ValueError as exc:
        return f"{exc}; expected a dotted key such as model.layers[0].units", None
    node: Any = raw
    for i, part in enumerate(path):
        if isinstance(part, int):
            ok = isinstance(node, list) and -len(node) <= part < len(node)
        else:
            ok = isinstance(node, dict) and part in node
        if not ok:
            known = list(node) if isinstance(node, dict) else []
            return (f"the config has no key {format_key(path[:i + 1])}"
                    f"{did_you_mean(str(part), known)}",
                    "a sweep parameter overrides a key the config sets (as --set would): "
                    "write the key in the config first, its value is what a plain fit uses")
        node = node[part]
    return None


def _spec_problem(spec: Any, sampler: str) -> tuple[str, str | None] | None:
    """What is wrong with one parameter's distribution, or None."""
    if not (isinstance(spec, dict) and len(spec) == 1 and next(iter(spec)) in KINDS):
        return (f"expected a one-key mapping {{{' | '.join(KINDS)}: ...}}; "
                f"received {describe(spec)}",
                "e.g. {loguniform: [1.0e-4, 1.0e-2]}, {int: [32, 128]}, {choice: [1, 2]}")
    kind, values = next(iter(spec.items()))
    if (kind == "grid") != (sampler == "grid"):
        return ((f"sampler {sampler} takes no {kind} parameter" if kind == "grid" else
                 f"sampler grid takes only {{grid: [...]}} parameters; received {kind}"),
                "with sampler: grid every parameter is {grid: [v1, v2, ...]}; other samplers "
                "take choice, uniform, loguniform or int")
    if kind in ("choice", "grid"):
        return _list_problem(values)
    return _range_problem(kind, values)


def _list_problem(values: Any) -> tuple[str, str | None] | None:
    if not isinstance(values, list) or not values:
        return f"expected a non-empty list of values; received {describe(values)}", None
    odd = [v for v in values if not isinstance(v, (str, int, float, bool, type(None)))]
    if odd:
        return (f"values must be numbers, strings, booleans or null; received {describe(odd[0])}",
                "to choose between mappings, sweep their keys one by one")
    if len(set(map(repr, values))) != len(values):
        return f"the values repeat: {values!r}", "list each value once"
    return None


def _range_problem(kind: str, values: Any) -> tuple[str, str | None] | None:
    number = int if kind == "int" else (int, float)
    if not (isinstance(values, list) and len(values) == 2 and
            all(isinstance(v, number) and not isinstance(v, bool) for v in values)):
        what = "integers" if kind == "int" else "numbers"
        return f"expected [low, high], two {what}; received {describe(values)}", None
    low, high = values
    if low >= high:
        return (f"the range [{low}, {high}] is {'empty' if low == high else 'reversed'}: "
                "low must be below high", f"e.g. {{{kind}: [{min(values)}, "
                f"{max(values) if low != high else 'a larger value'}]}}")
    if kind == "loguniform" and low <= 0:
        return f"a loguniform range needs low > 0; received {low}", "e.g. [1.0e-4, 1.0e-2]"
    return None


def _pruner_errors(loaded: Any) -> list[ConfigError]:
    spec = loaded.experiment.sweep.pruner
    if not isinstance(spec, PrunerSpec):
        return []
    own = {"median": ("n_startup_trials", "n_warmup_steps", "interval_steps"),
           "hyperband": ("min_resource", "reduction_factor")}[spec.type]
    return [ConfigError(f"pruner {spec.type} takes no {field!r}; it takes {', '.join(own)}",
                        key=f"sweep.pruner.{field}",
                        where=loaded.locate(f"sweep.pruner.{field}"))
            for field, value in spec.model_dump().items()
            if value is not None and field != "type" and field not in own]
