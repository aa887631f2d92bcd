"""The data model: splits of numpy arrays and the model signature they must fit.

Features and targets are either one array or a mapping ``name -> array`` (one
entry per model input or output); the first axis is always the sample axis.

Example:
    >>> split = Split(x=np.zeros((4, 784), "float32"), y=np.arange(4))
    >>> len(split)
    4
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Union

import numpy as np

from trainctl.errors import DataError

Arrays = Union[np.ndarray, dict[str, np.ndarray]]
"""One array, or one array per named model input/output."""

Kind = Literal["sparse", "onehot", "binary", "regression", "any"]


@dataclass(frozen=True)
class OutputInfo:
    """What one model output's targets must look like.

    Args:
        shape: per-sample shape of the targets, batch axis excluded. For
            ``"sparse"`` outputs this is the output's shape without its class
            axis (a ``Dense(10)`` output has target shape ``()``); ``None``
            dimensions match any size.
        kind: ``"sparse"`` (integer class ids), ``"onehot"``, ``"binary"``
            (values in [0, 1]), ``"regression"`` (any finite number, shaped like the
            output) or ``"any"`` (a user's own loss: any finite numbers, one row a sample).
        classes: number of classes for ``"sparse"`` and ``"onehot"``, else None.

    Example:
        >>> OutputInfo(shape=(), kind="sparse", classes=10)
    """

    shape: tuple
    kind: Kind = "regression"
    classes: Optional[int] = None


@dataclass(frozen=True)
class Signature:
    """The model's inputs and outputs, as the data must match them.

    Args:
        inputs: ``name -> (shape without batch axis, dtype name)``, in model order.
        outputs: ``name -> OutputInfo``, in model order.

    Example:
        >>> Signature(inputs={"digits": ((784,), "float32")},
        ...           outputs={"predictions": OutputInfo((), "sparse", 10)})
    """

    inputs: dict[str, tuple[tuple, str]]
    outputs: dict[str, OutputInfo] = field(default_factory=dict)


def num_samples(arrays: Arrays | None) -> int:
    """Length of the sample axis (0 for ``None`` or an empty mapping)."""
    if arrays is None:
        return 0
    if isinstance(arrays, dict):
        return len(next(iter(arrays.values()))) if arrays else 0
    return len(arrays)


def map_arrays(func: Callable[[np.ndarray], Any], arrays: Arrays | None) -> Any:
    """Apply ``func`` to one array or to each array of a mapping (keeping names)."""
    if arrays is None:
        return None
    if isinstance(arrays, dict):
        return {name: func(a) for name, a in arrays.items()}
    return func(arrays)


def named(arrays: Arrays | None, default: str) -> dict[str, np.ndarray]:
    """A mapping view of ``arrays``: a lone array is called ``default``."""
    if arrays is None:
        return {}
    return dict(arrays) if isinstance(arrays, dict) else {default: arrays}


@dataclass
class Split:
    """One split of the data: features, targets and optional sample weights.

    Args:
        x: an array, or ``{input_name: array}``.
        y: an array, ``{output_name: array}``, or None (models that need no targets).
        sample_weight: per-sample weights (an array or ``{output_name: array}``), or None.

    Example:
        >>> Split(x={"image": imgs, "series": ts}, y={"score": s, "class": c})
    """

    x: Arrays
    y: Arrays | None = None
    sample_weight: Arrays | None = None

    def __len__(self) -> int:
        return num_samples(self.x)

    def take(self, index: slice) -> "Split":
        """The samples at ``index`` (a slice, so the arrays are views, not copies)."""
        def cut(a: np.ndarray) -> np.ndarray:
            return a[index]

        return Split(map_arrays(cut, self.x), map_arrays(cut, self.y),
                     map_arrays(cut, self.sample_weight))

    def check_lengths(self, what: str) -> None:
        """Raise DataError unless every array has the same number of samples."""
        sizes = {}
        for part in ("x", "y", "sample_weight"):
            for name, a in named(getattr(self, part), part).items():
                label = part if name == part else f"{part}[{name!r}]"
                sizes[label] = np.shape(a)[0] if np.ndim(a) else None
        if None in sizes.values() or len(set(sizes.values())) > 1:
            listing = ", ".join(f"{k}: {v if v is not None else 'a scalar'}"
                                for k, v in sizes.items())
            raise DataError(f"{what}: every array needs the same number of samples "
                            f"along its first axis; received {listing}")


@dataclass
class Splits:
    """Everything a run trains, validates and tests on.

    Args:
        train: the training split.
        validation: the validation split, or None.
        test: the test split, or None (``data.test: false`` or the source has none).
        files: ``path -> sha256`` of every data file read (recorded in run.json).
    """

    train: Split
    validation: Split | None = None
    test: Split | None = None
    files: dict[str, str] = field(default_factory=dict)
