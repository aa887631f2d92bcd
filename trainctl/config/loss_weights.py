"""``compile.loss_weights`` that change by epoch (S26): the forms, checked without TensorFlow.

A per-output loss weight is a number, or one of these schedules over epochs (0-based,
as history.csv's ``epoch`` column):

- ``{piecewise: {boundaries: [2, 4], values: [0.0, 0.5, 1.0]}}``: 0.0 before epoch 2,
  0.5 from epoch 2, 1.0 from epoch 4 (Keras's PiecewiseConstantDecay, by epoch);
- ``{ramp: {from: 0.0, to: 1.0, first_epoch: 0, last_epoch: 2}}``: ``from`` up to
  ``first_epoch``, linear in between, ``to`` from ``last_epoch`` on;
- ``{function: "module:function"}``: ``function(epoch) -> float``, from a module found
  like plug-ins (the config's folder, then the working directory).

Example:
    >>> value_at({"ramp": {"from": 0.0, "to": 1.0, "first_epoch": 0, "last_epoch": 2}}, 1)
    0.5
"""

from __future__ import annotations

from typing import Any, Callable

from trainctl.errors import ConfigError, Location

FORMS = {"piecewise": ("boundaries", "values"),
         "ramp": ("from", "to", "first_epoch", "last_epoch"),
         "function": ()}


def is_schedule(value: Any) -> bool:
    """Whether a loss weight is a schedule (a mapping), not a number."""
    return isinstance(value, dict)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _epoch(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check(value: Any, key: str, locate: Callable[[str], Location]) -> list[ConfigError]:
    """The errors in one output's loss weight (a number or a schedule).

    Example:
        >>> check({"ramp": {"from": 0, "to": 1}}, "compile.loss_weights.out", locate)
        [ConfigError('... missing first_epoch, last_epoch ...')]
    """
    def error(message: str, sub: str = "", hint: str | None = None) -> list[ConfigError]:
        where = f"{key}.{sub}" if sub else key
        return [ConfigError(message, key=where, where=locate(where), hint=hint)]

    if _number(value):
        return []
    forms = ", ".join(f"{{{name}: ...}}" for name in FORMS)
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in FORMS:
        got = f"keys {', '.join(map(str, value))}" if isinstance(value, dict) else repr(value)
        return error(f"expected a number or one schedule: {forms}; received {got}",
                     hint="e.g. {ramp: {from: 0.0, to: 1.0, first_epoch: 0, last_epoch: 2}}")
    form, args = next(iter(value.items()))
    if form == "function":
        if not isinstance(args, str) or args.count(":") != 1 or not all(args.split(":")):
            return error(f"expected 'module:function'; received {args!r}", form)
        return []
    if not isinstance(args, dict):
        return error(f"expected a mapping of {', '.join(FORMS[form])}; received {args!r}", form)
    missing = [k for k in FORMS[form] if k not in args]
    unknown = [k for k in args if k not in FORMS[form]]
    if missing or unknown:
        return error(f"expected {', '.join(FORMS[form])}; "
                     + "; ".join(part for part in (
                         f"missing {', '.join(missing)}" if missing else "",
                         f"unknown {', '.join(map(str, unknown))}" if unknown else "") if part),
                     form)
    return _check_piecewise(args, error) if form == "piecewise" else _check_ramp(args, error)


def _check_piecewise(args: dict, error: Callable) -> list[ConfigError]:
    bounds, values = args["boundaries"], args["values"]
    if not isinstance(bounds, list) or not all(_epoch(b) for b in bounds) \
            or bounds != sorted(set(bounds)):
        return error(f"expected increasing epoch numbers (0-based); received {bounds!r}",
                     "piecewise.boundaries")
    if not isinstance(values, list) or not all(_number(v) for v in values) \
            or len(values) != len(bounds) + 1:
        return error(f"expected {len(bounds) + 1} numbers (one more than boundaries); "
                     f"received {values!r}", "piecewise.values")
    return []


def _check_ramp(args: dict, error: Callable) -> list[ConfigError]:
    for name in ("from", "to"):
        if not _number(args[name]):
            return error(f"expected a number; received {args[name]!r}", f"ramp.{name}")
    for name in ("first_epoch", "last_epoch"):
        if not _epoch(args[name]):
            return error(f"expected an epoch number (0-based); received {args[name]!r}",
                         f"ramp.{name}")
    if args["last_epoch"] <= args["first_epoch"]:
        return error(f"last_epoch {args['last_epoch']} must come after first_epoch "
                     f"{args['first_epoch']}", "ramp.last_epoch")
    return []


def value_at(value: Any, epoch: int, function: Callable[[int], Any] | None = None) -> float:
    """The weight in force during ``epoch`` (0-based).

    Args:
        value: a number or a schedule (already checked).
        epoch: the epoch.
        function: the resolved ``module:function`` of a ``function`` schedule.
    """
    if _number(value):
        return float(value)
    form, args = next(iter(value.items()))
    if form == "piecewise":
        passed = sum(1 for bound in args["boundaries"] if epoch >= bound)
        return float(args["values"][passed])
    if form == "ramp":
        first, last = args["first_epoch"], args["last_epoch"]
        share = min(max((epoch - first) / (last - first), 0.0), 1.0)
        return float(args["from"] + (args["to"] - args["from"]) * share)
    return float(function(epoch))
