"""Sample weights: ``data.sample_weight.by_class``, ``fit.class_weight``, weights in the data.

Keras 3 cannot combine ``class_weight`` with sample weights, rejects it for a
model with several outputs, and crashes on a partial dict with tf.data input
(KERAS3_NOTES). So trainctl turns class weights into sample weights itself, in
numpy, before the tf.data pipeline (exactly what Keras's own class-weight map
does: the weight of each sample's class), and multiplies every source of
weights together:

- weights in the data (npz ``sample_weight_train``, a source's third array):
  one array for every output, or ``{output: array}``;
- ``data.sample_weight: {by_class: {5: 2.0}, output: name}``: one weight per
  sample from the class labels of ``output`` (default: the first output with
  class labels), applied to every output, like ``fit(sample_weight=array)``;
- ``fit.class_weight: {5: 2.0}``: for each output with class labels, a weight
  per sample from *that output's* labels (per-output sample weights where the
  model has several outputs); other outputs keep weight 1.

Only the training split is weighted by class, as Keras's ``class_weight`` and
``sample_weight`` arguments weight only training; weights that came with the
data stay with every split.

Example:
    >>> splits = weigh_splits(splits, sig, sample_weight=exp.data.sample_weight,
    ...                       class_weight=exp.fit.class_weight, locate=cfg.locate)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from trainctl.data.types import OutputInfo, Signature, Split, Splits, named
from trainctl.errors import ConfigError, DataError, Location, did_you_mean

if TYPE_CHECKING:
    from trainctl.config.schema import SampleWeight

Locate = Callable[[str], Location]

CLASS_KINDS = ("sparse", "onehot", "binary")
"""Output kinds whose targets name a class (see :class:`OutputInfo`)."""


def class_outputs(sig: Signature) -> list[str]:
    """The outputs whose targets are class labels, in model order."""
    return [name for name, info in sig.outputs.items() if info.kind in CLASS_KINDS]


def class_ids(y: np.ndarray, info: OutputInfo) -> np.ndarray:
    """Integer class ids from targets, as Keras's class-weight map reads them.

    Sparse ids of shape ``(n, 1)`` are squeezed; one-hot rows give their argmax;
    binary targets are rounded.

    Example:
        >>> class_ids(np.eye(3)[[2, 0]], OutputInfo((3,), "onehot", 3))
        array([2, 0])
    """
    if info.kind == "onehot":
        return np.argmax(y, axis=-1)
    labels = y[..., 0] if y.ndim > 1 and y.shape[-1] == 1 else y
    return np.rint(labels).astype(np.intp)


def weights_for(labels: np.ndarray, table: dict[int, float]) -> np.ndarray:
    """float32 weight of each label: ``table[label]``, 1.0 for classes it does not name.

    Expanding the table to every class first is what keeps a partial dict such
    as ``{5: 2.0}`` from failing on labels above 5.

    Example:
        >>> weights_for(np.array([0, 5, 9]), {5: 2.0})
        array([1., 2., 1.], dtype=float32)
    """
    size = max(int(labels.max()) + 1 if labels.size else 0, max(table) + 1)
    lookup = np.ones(size, dtype=np.float32)
    for cls, weight in table.items():
        lookup[int(cls)] = weight
    return lookup[labels]


def _mul(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Product of two weight arrays (None is weight 1); ``(n,)`` broadcasts over ``(n, T)``."""
    if a is None or b is None:
        return b if a is None else a
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.ndim < b.ndim:
        a = a.reshape(a.shape + (1,) * (b.ndim - a.ndim))
    elif b.ndim < a.ndim:
        b = b.reshape(b.shape + (1,) * (a.ndim - b.ndim))
    return a * b


def _error(message: str, key: str, locate: Locate, hint: Optional[str] = None) -> ConfigError:
    return ConfigError(message, key=key, where=locate(key), hint=hint)


def check_classes(table: dict[int, float], output: str, info: OutputInfo, key: str,
                  locate: Locate) -> None:
    """Every class a weight table names is one of ``output``'s (0 to classes - 1): a
    negative one would weigh the last class (numpy's index -1), one past the end nothing.

    Raises:
        ConfigError: naming the class, the output and its classes.
    """
    classes = 2 if info.kind == "binary" else info.classes
    if classes is None:
        return
    wrong = sorted(c for c in table if not 0 <= int(c) < classes)
    if wrong:
        raise _error(f"class {wrong[0]} is not a class of output {output!r}: it has "
                     f"{classes} classes, 0 to {classes - 1}", key, locate,
                     hint="class weights are keyed by class id, as the labels number them")


def _need_class_output(sig: Signature, key: str, locate: Locate) -> list[str]:
    found = class_outputs(sig)
    if not found:
        raise _error("class weights need an output whose targets are class labels "
                     "(a sparse, categorical or binary cross-entropy loss); this model's "
                     f"outputs are: {', '.join(sig.outputs)}", key, locate)
    return found


def by_class_output(spec: SampleWeight, sig: Signature, locate: Locate) -> str:
    """The output whose labels decide ``data.sample_weight.by_class``."""
    found = _need_class_output(sig, "data.sample_weight.by_class", locate)
    if spec.output is None:
        return found[0]
    if spec.output not in sig.outputs:
        raise _error(f"unknown output {spec.output!r}{did_you_mean(spec.output, sig.outputs)}; "
                     f"the model's outputs are: {', '.join(sig.outputs)}",
                     "data.sample_weight.output", locate)
    if spec.output not in found:
        raise _error(f"output {spec.output!r} has no class labels (its loss is not a "
                     f"classification loss); outputs with class labels: {', '.join(found)}",
                     "data.sample_weight.output", locate)
    return spec.output


def training_weights(split: Split, sig: Signature, *, sample_weight: Optional[SampleWeight],
                     class_weight: Optional[dict[int, float]], locate: Locate) -> Split:
    """``split`` with its sample weights multiplied by the class-derived ones.

    Args:
        split: the training split (targets already transformed).
        sig: the model's signature (which outputs carry class labels).
        sample_weight: ``data.sample_weight`` or None.
        class_weight: ``fit.class_weight`` or None.
        locate: ``key -> Location`` for messages.

    Raises:
        ConfigError: class weights on a model with no class-labelled output, or
            ``data.sample_weight.output`` naming an unknown or non-class output.
    """
    by_class = sample_weight.by_class if sample_weight is not None else None
    if not by_class and not class_weight:
        return split
    if split.y is None:
        key = "fit.class_weight" if class_weight else "data.sample_weight"
        raise _error("class weights need targets, and the data has none", key, locate)
    outputs = list(sig.outputs)
    targets = named(split.y, outputs[0])
    common, per = split.sample_weight, {}
    if isinstance(common, dict):
        common, per = None, dict(common)
    if by_class:
        out = by_class_output(sample_weight, sig, locate)
        check_classes(by_class, out, sig.outputs[out], "data.sample_weight.by_class", locate)
        common = _mul(common, weights_for(class_ids(targets[out], sig.outputs[out]), by_class))
    if class_weight:
        for out in _need_class_output(sig, "fit.class_weight", locate):
            check_classes(class_weight, out, sig.outputs[out], "fit.class_weight", locate)
            ids = class_ids(targets[out], sig.outputs[out])
            per[out] = _mul(per.get(out), weights_for(ids, class_weight))
    if not per:
        weights: Any = common
    elif len(outputs) == 1:
        weights = _mul(common, per.get(outputs[0]))
    else:
        ones = np.ones(len(split), dtype=np.float32)  # an output nothing weighs
        weights = {}
        for out in outputs:
            product = _mul(common, per.get(out))
            weights[out] = ones if product is None else product
    return Split(split.x, split.y, weights)


def ordered_weights(split: Optional[Split], sig: Signature, what: str) -> Optional[Split]:
    """Per-output weights keyed by every output in model order (missing ones: 1.0).

    Keras 3 looks per-output sample weights up by the position of the output,
    so a ``{name: array}`` mapping must become a tuple in output order
    (:func:`make_dataset` does that from this order); a single-output model
    takes a plain array.
    """
    if split is None or not isinstance(split.sample_weight, dict):
        return split
    weights, outputs = split.sample_weight, list(sig.outputs)
    unknown = [k for k in weights if k not in sig.outputs]
    if unknown:
        raise DataError(f"{what} data: sample weights for unknown output {unknown[0]!r}"
                        f"{did_you_mean(unknown[0], outputs)}; the model's outputs are: "
                        f"{', '.join(outputs)}")
    if len(outputs) == 1:
        return Split(split.x, split.y, weights[outputs[0]])
    ones = np.ones(len(split), dtype=np.float32)
    return Split(split.x, split.y, {out: weights.get(out, ones) for out in outputs})


def weigh_splits(splits: Splits, sig: Signature, *, sample_weight: Optional[SampleWeight],
                 class_weight: Optional[dict[int, float]], locate: Locate) -> Splits:
    """Class-derived weights on the training split; every split's weights in output order.

    Example:
        >>> splits = weigh_splits(splits, sig, sample_weight=None, class_weight={5: 2.0},
        ...                       locate=cfg.locate)
        >>> splits.train.sample_weight[:3]          # labels 5, 0, 4
        array([2., 1., 1.], dtype=float32)
    """
    train = training_weights(splits.train, sig, sample_weight=sample_weight,
                             class_weight=class_weight, locate=locate)
    return Splits(train=ordered_weights(train, sig, "training"),
                  validation=ordered_weights(splits.validation, sig, "validation"),
                  test=ordered_weights(splits.test, sig, "test"), files=splits.files)
