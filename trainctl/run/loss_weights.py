"""Loss weights that change by epoch (S26): a variable per scheduled output, set each epoch.

``compile`` gets a ``keras.Variable`` for every output whose weight is a schedule
(trainctl.config.loss_weights); :class:`LossWeightScheduler` assigns it when an epoch
begins. The compiled train step reads the variable, so neither loop recompiles
(KERAS3_NOTES), and the value follows from the epoch number alone: a resumed run
gets its epoch's weight with no state to restore. The weight in force is logged as
``loss_weight/<output>`` in history.

Example:
    >>> weights, scheduled = compile_loss_weights(exp, outputs, locate)  # trainctl.build
    >>> model.compile(..., loss_weights=weights)
    >>> attach(model, scheduled); callbacks.append(LossWeightScheduler())
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import keras

from trainctl.config.loss_weights import is_schedule, value_at
from trainctl.config.validate import per_output
from trainctl.errors import ConfigError

_ATTRIBUTE = "_trainctl_loss_weights"


@dataclass
class Scheduled:
    """One output's scheduled weight: its schedule and the variable compile reads."""

    output: str
    spec: Any
    variable: Any
    function: Callable[[int], Any] | None = None

    def at(self, epoch: int) -> float:
        """The weight during ``epoch`` (0-based)."""
        return value_at(self.spec, epoch, self.function)


class Schedules:
    """The scheduled weights of a model (a plain holder: Keras does not track it)."""

    def __init__(self, items: list[Scheduled]):
        self.items = items


def compile_loss_weights(value: Any, outputs: list[str], locate: Callable) -> tuple[Any, list]:
    """``loss_weights`` for ``model.compile`` (schedules as variables), and the schedules.

    Call under the model's strategy scope (the variables are created here).

    Args:
        value: ``compile.loss_weights`` (checked by validate).
        outputs: the model's output names, in order.
        locate: the config's locator, for errors.
    """
    if value is None:
        return None, []
    if isinstance(value, list) and len(outputs) == 1 and len(value) == 1:
        value = value[0]  # [w] on a one-output model: that output's weight
    pairs, _ = per_output(value, outputs, "compile.loss_weights", locate, every=False)
    names = list(value) if isinstance(value, dict) else outputs
    built, scheduled = [], []
    for (key, item), output in zip(pairs, names):
        if not is_schedule(item):
            built.append(float(item))
            continue
        function = _function(item, key, locate) if "function" in item else None
        variable = keras.Variable(value_at(item, 0, function), trainable=False,
                                  dtype="float32", name=f"loss_weight_{output}")
        scheduled.append(Scheduled(output, item, variable, function))
        built.append(variable)
    if isinstance(value, dict):
        return dict(zip(names, built)), scheduled
    return built, scheduled  # a list, or one value for a single output (as a list)


def _function(spec: dict, key: str, locate: Callable) -> Callable[[int], Any]:
    """The ``module:function`` of a function schedule, checked on epoch 0."""
    from trainctl.plugins import import_module

    where = locate(f"{key}.function")
    module_name, name = spec["function"].split(":")
    module = import_module(module_name, key=f"{key}.function", where=where)
    function = getattr(module, name, None)
    if not callable(function):
        raise ConfigError(f"module {module_name!r} has no function {name!r}",
                          key=f"{key}.function", where=where)
    try:
        float(function(0))
    except Exception as exc:  # noqa: BLE001 - the user's function
        raise ConfigError(f"{spec['function']}(0) must return a number; it raised or returned "
                          f"something else: {type(exc).__name__}: {exc}",
                          key=f"{key}.function", where=where) from None
    return function


def attach(model: Any, scheduled: list[Scheduled]) -> None:
    """Keep the schedules with the model, for :class:`LossWeightScheduler`."""
    setattr(model, _ATTRIBUTE, Schedules(scheduled))


def scheduled_of(model: Any) -> list[Scheduled]:
    """The model's scheduled loss weights (none for a model compiled without them)."""
    holder = getattr(model, _ATTRIBUTE, None)
    return holder.items if holder is not None else []


class LossWeightScheduler(keras.callbacks.Callback):
    """Sets each scheduled loss weight when an epoch begins; logs it when the epoch ends
    (``loss_weight/<output>``: before the history files write the epoch's row)."""

    def __init__(self):
        super().__init__()
        self.current: dict[str, float] = {}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        for item in scheduled_of(self.model):
            value = item.at(epoch)
            item.variable.assign(value)
            self.current[item.output] = value

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs.update({f"loss_weight/{k}": v for k, v in self.current.items()})
