"""What a run will do, worked out before it starts: sizes, steps and the data signature.

``--smoke`` is applied here, not to the config, so ``config.yaml`` keeps the
resolved config and run.json says ``smoke: true``.

Example:
    >>> plan = make_plan(cfg, smoke=True)
    >>> (plan.epochs, plan.steps_per_epoch, plan.validation_steps, plan.test_steps)
    (1, 2, 2, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainctl.config import LoadedConfig
from trainctl.config.validate import output_names

SMOKE_STEPS = 2


@dataclass(frozen=True)
class Plan:
    """Epochs, batch sizes and step caps for one fit."""

    epochs: int
    batch_size: int
    steps_per_epoch: int | None
    validation_steps: int | None
    test_batch_size: int
    test_steps: int | None
    smoke: bool


def _overridden(cfg: LoadedConfig, key: str) -> bool:
    """True when ``--set`` gave ``key`` (an explicit value always wins over smoke)."""
    return any(o.split("=", 1)[0].strip() == key for o in cfg.overrides)


def make_plan(cfg: LoadedConfig, *, smoke: bool = False) -> Plan:
    """Sizes for this run; with ``smoke``: 1 epoch of 2 steps, 2 validation and test steps."""
    fit, ev = cfg.experiment.fit, cfg.experiment.evaluate
    epochs = fit.epochs
    steps, val_steps, test_steps = fit.steps_per_epoch, fit.validation_steps, ev.steps
    if smoke:
        if not _overridden(cfg, "fit.epochs"):
            epochs = min(epochs, 1)
        steps = min(steps or SMOKE_STEPS, SMOKE_STEPS)
        val_steps = min(val_steps or SMOKE_STEPS, SMOKE_STEPS)
        test_steps = min(test_steps or SMOKE_STEPS, SMOKE_STEPS)
    return Plan(epochs=epochs, batch_size=fit.batch_size, steps_per_epoch=steps,
                validation_steps=val_steps,
                test_batch_size=ev.batch_size or fit.batch_size, test_steps=test_steps,
                smoke=smoke)


def _loss_name(spec: Any) -> str:
    if isinstance(spec, dict):
        spec = spec.get("type", "")
    return str(spec or "").lower().replace("_", "")


def _user_loss(spec: Any) -> bool:
    """A loss of the user's own (``module:function`` or a registered plug-in): what
    targets it takes cannot be told from its name, so the data checks trust them."""
    name = spec.get("type") if isinstance(spec, dict) else spec
    if not isinstance(name, str):
        return False
    if ":" in name:
        return not name.startswith(("keras", "tensorflow"))
    from trainctl.registry import get_registry

    return get_registry("loss").module_of(name).partition(".")[0] not in ("", "keras",
                                                                        "trainctl")


def output_kind(loss: Any, metrics: Any = None) -> str:
    """What targets an output wants — ``sparse``, ``onehot``, ``binary``, ``regression``
    or ``any`` (a user's own loss) — from its loss, or from its metrics when it has no
    loss."""
    if (loss is None or _user_loss(loss)) and metrics:
        # the metrics' kind, when they agree on one (sparse_categorical_accuracy: class ids)
        kinds = {output_kind(m) for m in (metrics if isinstance(metrics, list) else [metrics])}
        kinds -= {"regression", "any"}
        if len(kinds) == 1:
            return kinds.pop()
    if _user_loss(loss):
        return "any"
    if loss is None:
        return "regression"
    name = _loss_name(loss)
    if "sparsecategorical" in name:
        return "sparse"
    if "categorical" in name:
        return "onehot"
    if "binary" in name or name in {"hinge", "squaredhinge"}:
        return "binary"
    return "regression"


def _per_output_metrics(metrics: Any, names: list[str]) -> dict[str, Any]:
    if isinstance(metrics, dict):
        return metrics
    if isinstance(metrics, list) and len(names) > 1 and len(metrics) == len(names):
        return dict(zip(names, metrics))
    return {names[0]: metrics} if len(names) == 1 else {}


def signature(model: Any, cfg: LoadedConfig) -> Any:
    """The data signature of a built model: input shapes and what each output's targets are."""
    from trainctl.data import OutputInfo, Signature

    exp = cfg.experiment
    names = output_names(exp)
    loss = exp.compile.loss
    if isinstance(loss, dict) and "type" not in loss:  # per output, not one component
        losses = [loss.get(n) for n in names]
    elif isinstance(loss, list) and len(names) > 1:
        losses = loss
    else:
        losses = [loss] * len(names)
    metrics = _per_output_metrics(exp.compile.metrics, names)
    outputs = {}
    for name, tensor, loss_spec in zip(names, model.outputs, losses):
        shape = tuple(tensor.shape[1:])
        kind = output_kind(loss_spec, metrics.get(name))
        classes = shape[-1] if shape and kind in ("sparse", "onehot") else None
        if kind == "sparse":
            shape = shape[:-1]
        outputs[name] = OutputInfo(shape=shape, kind=kind, classes=classes)
    inputs = {name: (tuple(spec.shape), spec.dtype) for name, spec in exp.model.inputs.items()}
    return Signature(inputs=inputs, outputs=outputs)
