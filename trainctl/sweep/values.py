"""Each value a sweep will try fits the config: ``choice`` and ``grid`` values, checked up front.

A trial applies its values as ``--set KEY=VALUE`` would; a value the config cannot
take (``units: {grid: [32, "wide"]}``) would otherwise be found by that trial only,
after the sweep started. So ``trainctl validate`` (and ``sweep``, which validates its
config first) applies every listed value to the config and validates the result,
reporting a refused value at its place in ``sweep.params``. Ranges (uniform,
loguniform, int) draw numbers of the right kind and are not expanded.

Example:
    >>> [str(e) for e in check_sweep_values(loaded)]
    ["exp.yaml:30:44: sweep.params.model.layers[0].units: grid value 'wide' does not fit ..."]
"""

from __future__ import annotations

import copy
from typing import Any

from trainctl.errors import ConfigError


def check_sweep_values(loaded: Any) -> list[ConfigError]:
    """A ConfigError for each ``choice``/``grid`` value the config refuses.

    Args:
        loaded: a :class:`trainctl.config.LoadedConfig` whose sweep section passed
            :func:`trainctl.sweep.space.check_sweep`.
    """
    sweep = loaded.experiment.sweep
    if sweep is None:
        return []
    errors = []
    for name, spec in sweep.params.items():
        kind, values = next(iter(spec.items()))
        if kind not in ("choice", "grid"):
            continue
        for i, value in enumerate(values):
            problem = refusal(loaded, name, value)
            if problem is not None:
                errors.append(ConfigError(
                    f"{kind} value {value!r} does not fit the config: {problem}",
                    key=f"sweep.params.{name}",
                    where=loaded.source.locate(("sweep", "params", name, kind, i)),
                    hint="a trial applies its values as --set KEY=VALUE would: "
                         "fix or remove the value"))
    return errors


def refusal(loaded: Any, name: str, value: Any) -> str | None:
    """Why the config with ``name`` set to ``value`` is invalid, or None when it is valid."""
    from trainctl.config import parse_key, validate_data
    from trainctl.config.overrides import set_in
    from trainctl.errors import ConfigErrors

    data = copy.deepcopy(loaded.raw)
    data.pop("sweep")  # checked once, by the caller: not again for every value
    where = loaded.locate(f"sweep.params.{name}")
    try:
        set_in(data, parse_key(name), value, where)  # as the trial's --set will
        validate_data(data, loaded.path, loaded.source, overrides=loaded.overrides,
                      base_dir=loaded.base_dir)
    except (ConfigError, ConfigErrors) as exc:
        first = exc.errors[0] if isinstance(exc, ConfigErrors) else exc
        return f"{first.key}: {first.message}" if first.key else first.message
    return None
