"""An output's loss and its metrics must want the same targets: class ids or one-hot rows.

``loss: categorical_crossentropy`` with ``metrics: [sparse_categorical_accuracy]`` can
never run: the loss wants one-hot targets, the metric integer class ids. Keras finds
out at the first step, with a message about tensor dimensions; this says which two
entries disagree, from the config alone (``trainctl validate``, no TensorFlow).

Example:
    >>> [str(e) for e in kind_errors(exp, ["predictions"], locate)]
    ["exp.yaml:19:13: compile.metrics[0]: sparse_categorical_accuracy wants integer ..."]
"""

from __future__ import annotations

from typing import Any, Callable

from trainctl.errors import ConfigError, Location

WANTS = {"sparse": "integer class ids", "onehot": "one-hot targets"}
# Keras's own losses and metrics of each kind, spelt as in snake_case or CamelCase
# (compared without case and underscores): a plug-in's name says nothing certain
# (a CategoricalTruePositives metric may well take class ids).
_ONEHOT = ("categorical_crossentropy", "categorical_focal_crossentropy",
           "categorical_accuracy", "top_k_categorical_accuracy")
_SPARSE = ("sparse_categorical_crossentropy", "sparse_categorical_accuracy",
           "sparse_top_k_categorical_accuracy")
KINDS = {**{n.replace("_", ""): "onehot" for n in _ONEHOT},
         **{n.replace("_", ""): "sparse" for n in _SPARSE}}


def kind_of(spec: Any) -> str | None:
    """``sparse`` or ``onehot`` for Keras's own class losses and metrics, else None.

    Example:
        >>> kind_of("sparse_categorical_accuracy"), kind_of({"type": "CategoricalAccuracy"})
        ('sparse', 'onehot')
    """
    return KINDS.get(_name(spec).lower().replace("_", ""))


def counterpart(spec: Any) -> str:
    """The same metric for the other kind of targets, spelt the way ``spec`` is.

    Example:
        >>> counterpart("categorical_accuracy"), counterpart("SparseCategoricalAccuracy")
        ('sparse_categorical_accuracy', 'CategoricalAccuracy')
    """
    name = _name(spec)
    if name.lower().startswith("sparse"):
        return name[len("sparse_"):] if name.startswith("sparse_") else name[len("Sparse"):]
    return f"Sparse{name}" if name[:1].isupper() else f"sparse_{name}"


def kind_errors(exp: Any, outputs: list[str],
                locate: Callable[[str], Location]) -> list[ConfigError]:
    """A ConfigError for each metric whose target kind differs from its output's loss's.

    Args:
        exp: the Experiment (compile.loss and compile.metrics already well formed).
        outputs: the model's output names, in order.
        locate: the config's locate.
    """
    from trainctl.config.validate import _items, per_output

    losses = _by_output(per_output(exp.compile.loss, outputs, "compile.loss", locate,
                                   every=True)[0], "compile.loss", outputs)
    metrics = _by_output(per_output(exp.compile.metrics, outputs, "compile.metrics", locate,
                                    every=False)[0], "compile.metrics", outputs)
    errors = []
    for output, (loss_key, loss) in losses.items():
        want = kind_of(loss)
        if want is None or output not in metrics:
            continue
        metrics_key, items = metrics[output]
        for key, metric in _items(items, metrics_key):
            got = kind_of(metric)
            if got is not None and got != want:
                errors.append(ConfigError(
                    f"{_name(metric)} wants {WANTS[got]}, but the loss of output "
                    f"{output!r} ({loss_key}: {_name(loss)}) wants {WANTS[want]}",
                    key=key, where=locate(key),
                    hint=f"use {counterpart(metric)}, or change the loss to the one that "
                         f"fits your targets"))
    return errors


def _by_output(pairs: list[tuple[str, Any]], base: str,
               outputs: list[str]) -> dict[str, tuple[str, Any]]:
    """``per_output``'s ``(key, item)`` pairs by output name (one for all: every output)."""
    found = {}
    for key, item in pairs:
        if key == base:
            found.update({name: (key, item) for name in outputs})
        elif key.startswith(f"{base}["):
            found[outputs[int(key[len(base) + 1:-1])]] = (key, item)
        else:
            found[key[len(base) + 1:]] = (key, item)
    return found


def _name(spec: Any) -> str:
    """A component's name as the config gives it."""
    return str(spec.get("type")) if isinstance(spec, dict) else str(spec)
