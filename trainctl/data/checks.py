"""Data against the model, before training: shapes, label ranges, NaN/inf, empty splits.

Every failure is a DataError (exit 2) saying what is wrong, what the model
expects, what the data has, and how to fix it.

Example:
    >>> check_against_model(splits, signature, locate=cfg.locate)
    DataError: configs/mnist.yaml:4:11: training data: label 10 (sample 7) does not fit
    output 'predictions', which has 10 classes: sparse labels must be integers in [0, 10) ...
"""

from __future__ import annotations

import sys
from typing import Callable, Optional

import numpy as np

from trainctl.data.types import OutputInfo, Signature, Split, Splits, named
from trainctl.errors import DataError, Location, did_you_mean

Locate = Callable[[str], Location]


def fits(actual: tuple, expected: tuple) -> bool:
    """Same rank and every dimension equal; ``None`` in ``expected`` matches any size."""
    return len(actual) == len(expected) and all(
        e is None or a == e for a, e in zip(actual, expected))


def fits_squeezed(actual: tuple, expected: tuple) -> bool:
    """Like :func:`fits`, also allowing one trailing 1 on either side, as Keras losses do."""
    return (fits(actual, expected) or fits(actual + (1,), expected)
            or fits(actual, expected + (1,)))


def _shape(shape: tuple) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def _first_bad(mask: np.ndarray) -> tuple[int, int]:
    """(count of True, sample index of the first True)."""
    return int(mask.sum()), int(np.argwhere(mask)[0][0])


_CHUNK = 1 << 22  # values per isfinite pass: bounded memory, and faster than one big pass


def first_nonfinite(a: np.ndarray) -> Optional[tuple[int, ...]]:
    """Index of the first NaN or infinite value of a float array, or None (also for ints).

    Scans the samples in chunks of about four million values: one cheap numpy
    pass over the data with a small temporary, stopping at the first bad chunk.

    Example:
        >>> first_nonfinite(np.array([[0.0, 1.0], [2.0, np.nan]]))
        (1, 1)
    """
    if a.dtype.kind not in "fc" or a.ndim == 0 or a.size == 0:
        return None  # a split's arrays have a sample axis (checked when they are loaded)
    if all_finite_by_sums(a):
        return None
    step = max(1, _CHUNK // (a.size // len(a)))  # samples per chunk
    for start in range(0, len(a), step):
        bad = ~np.isfinite(a[start:start + step])
        if bad.any():
            first = np.argwhere(bad)[0]
            return (start + int(first[0]), *map(int, first[1:]))
    return None


def all_finite_by_sums(a: np.ndarray) -> bool:
    """True when every value of ``a`` is certainly finite: its per-sample sums, one
    matrix-vector product (multi-threaded BLAS, about 2.5x faster than isfinite's
    pass), are. A NaN or inf makes its sample's sum NaN or inf; a sum can also
    overflow from large finite values, so False means only "scan to find out".
    Only float32/float64 arrays in C order (anything else would be copied first).
    """
    if a.dtype not in (np.float32, np.float64) or not a.flags.c_contiguous:
        return False
    rows = a.reshape(len(a), -1)
    with np.errstate(over="ignore", invalid="ignore"):  # both only mean "scan"
        sums = rows @ np.ones(rows.shape[1], a.dtype)
    return bool(np.isfinite(sums).all())


class _Checker:
    """Checks one split; ``fail`` formats the message with the config position."""

    def __init__(self, split: Split, sig: Signature, what: str, locate: Locate):
        self.split, self.sig, self.what = split, sig, what
        self.prefix = f"{locate('data.source')}: {what} data"

    def fail(self, message: str, hint: Optional[str] = None) -> None:
        text = f"{self.prefix}: {message}"
        raise DataError(text + (f"\n  hint: {hint}" if hint else ""))

    def by_name(self, arrays, names: list[str], role: str) -> dict[str, np.ndarray]:
        """Match arrays to the model's inputs/outputs by name."""
        if not isinstance(arrays, dict):
            if len(names) != 1:
                self.fail(f"the model has {len(names)} {role}s ({', '.join(names)}) but the "
                          f"data has a single array", f"give one array per {role}, by name")
            return {names[0]: arrays}
        missing = [n for n in names if n not in arrays]
        extra = [n for n in arrays if n not in names]
        if missing or extra:
            wrong, pool = (extra[0], names) if extra else (missing[0], list(arrays))
            self.fail(f"the data's {role} names ({', '.join(arrays)}) do not match the "
                      f"model's ({', '.join(names)}){did_you_mean(wrong, pool)}",
                      "name the arrays after model.inputs / the output layers")
        return dict(arrays)

    def finite(self, a: np.ndarray, label: str) -> None:
        at = first_nonfinite(a)
        if at is None:
            return
        count = int((~np.isfinite(a)).reshape(len(a), -1).any(axis=1).sum())
        position = ", ".join(map(str, at))
        self.fail(f"{label}: NaN or infinite values in {count} sample(s); the first is "
                  f"sample {at[0]} (index [{position}] is {a[at]})",
                  "clean the data (drop or fill those samples) before training")

    def features(self) -> None:
        arrays = self.by_name(self.split.x, list(self.sig.inputs), "input")
        for name, (shape, _dtype) in self.sig.inputs.items():
            a = arrays[name]
            if a.dtype.kind not in "biuf":
                self.fail(f"input {name!r} needs numbers; the data has dtype {a.dtype}")
            if not fits(a.shape[1:], tuple(shape)):
                self.fail(f"input {name!r} expects samples of shape {_shape(tuple(shape))} "
                          f"(batch axis excluded); the data has {_shape(a.shape[1:])} "
                          f"({len(a)} samples)", _reshape_hint(a.shape[1:], tuple(shape), name))
            self.finite(a, f"input {name!r}")

    def targets(self) -> None:
        if self.split.y is None or not self.sig.outputs:
            return  # a model trained without targets (custom train_step)
        arrays = self.by_name(self.split.y, list(self.sig.outputs), "output")
        for name, info in self.sig.outputs.items():
            self.target(name, info, arrays[name])

    def target(self, name: str, info: OutputInfo, y: np.ndarray) -> None:
        label = f"the targets of output {name!r}"
        if y.dtype.kind not in "biuf":
            self.fail(f"{label} need numbers; the data has dtype {y.dtype}")
        self.finite(y, label)
        if info.kind == "any":  # the user's own loss decides what its targets look like
            if self.what == "training" and not fits_squeezed(y.shape[1:], tuple(info.shape)):
                gives = _shape(tuple(info.shape))
                print(f"warning: {self.what} data: output {name!r} gives {gives} per sample "
                      f"and its targets are {_shape(y.shape[1:])}; its loss is your "
                      "own, so trainctl leaves them to it (a sparse loss takes class ids like "
                      "these; a regression loss would broadcast them)", file=sys.stderr,
                      flush=True)
            return
        if info.kind == "sparse":
            self.sparse(name, info, y)
        elif info.kind == "onehot":
            self.onehot(name, info, y)
        elif not fits_squeezed(y.shape[1:], tuple(info.shape)):
            self.fail(f"output {name!r} expects targets of shape {_shape(tuple(info.shape))}; "
                      f"the data has {_shape(y.shape[1:])}")
        elif info.kind == "binary" and y.size and (y.min() < 0 or y.max() > 1):
            count, index = _first_bad(((y < 0) | (y > 1)).reshape(len(y), -1).any(axis=1))
            self.fail(f"output {name!r} uses a binary loss, so targets must be in [0, 1]; "
                      f"{count} sample(s) are not, the first is sample {index}")

    def sparse(self, name: str, info: OutputInfo, y: np.ndarray) -> None:
        classes = info.classes
        if not fits_squeezed(y.shape[1:], tuple(info.shape)):
            onehot = classes is not None and fits(y.shape[1:], tuple(info.shape) + (classes,))
            self.fail(f"output {name!r} expects class ids of shape {_shape(tuple(info.shape))}; "
                      f"the data has {_shape(y.shape[1:])}",
                      "these look like one-hot labels: use categorical_crossentropy, or drop "
                      "one_hot from data.targets" if onehot else None)
        if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
            self.fail(f"output {name!r} uses a sparse loss, which needs integer class ids; "
                      "the data has fractional values",
                      "for one-hot or probability targets use categorical_crossentropy")
        if classes and y.size and (y.min() < 0 or y.max() >= classes):
            bad = ((y < 0) | (y >= classes)).reshape(len(y), -1)
            count, index = _first_bad(bad.any(axis=1))
            value = y.reshape(len(y), -1)[index][bad[index]][0]
            value = int(value) if float(value).is_integer() else float(value)
            self.fail(f"label {value} (sample {index}; {count} sample(s) in all) does not fit "
                      f"output {name!r}, which has {classes} classes (units): sparse labels "
                      f"must be integers in [0, {classes})",
                      f"give layer {name!r} more units, or fix the labels")

    def onehot(self, name: str, info: OutputInfo, y: np.ndarray) -> None:
        classes = info.classes or (info.shape[-1] if info.shape else None)
        if fits(y.shape[1:], tuple(info.shape)) and (classes is None or y.shape[-1] == classes):
            return
        ids = fits_squeezed(y.shape[1:], tuple(info.shape[:-1]))
        self.fail(f"output {name!r} expects one-hot targets of shape "
                  f"{_shape(tuple(info.shape))} ({classes} classes); the data has "
                  f"{_shape(y.shape[1:])}",
                  f"these look like class ids: add {{one_hot: {classes}}} to data.targets, or "
                  "use sparse_categorical_crossentropy" if ids else None)

    def weights(self) -> None:
        for name, w in named(self.split.sample_weight, "sample_weight").items():
            label = "sample_weight" if name == "sample_weight" else f"sample_weight[{name!r}]"
            self.finite(w, label)
            if w.size and w.min() < 0:
                self.fail(f"{label} has negative values; weights must be >= 0")
            self.weight_shape(name, w, label)

    def weight_shape(self, name: str, w: np.ndarray, label: str) -> None:
        """One weight per sample ((N,) or (N, 1)), or one per step of a sequence output's
        loss; anything else would fail inside Keras's compiled loss, blamed on compile."""
        outputs = (self.sig.outputs if name == "sample_weight"
                   else {name: self.sig.outputs.get(name)})
        for output, info in outputs.items():
            if info is None or info.kind == "any":
                continue  # a user's own loss: its weighting is its own business
            # the loss of one sample has the target's shape less its class/feature axis
            steps = tuple(info.shape) if info.kind == "sparse" else tuple(info.shape[:-1])
            if w.shape[1:] in ((), (1,)) or (steps and fits(w.shape[1:], steps)):
                continue
            per_step = ", ".join("None" if d is None else str(d) for d in steps)
            accepted = "(N,) or (N, 1)" + (f", or (N, {per_step}) for one weight per step"
                                           if steps else "")
            self.fail(f"{label} has shape {_shape(w.shape)}; output {output!r} takes "
                      f"{accepted}", "give one number per sample")


def _reshape_hint(actual: tuple, expected: tuple, name: str) -> str:
    if None not in expected and int(np.prod(actual)) == int(np.prod(expected)):
        dims = ", ".join(map(str, expected))
        return f"add {{reshape: [{dims}]}} to data.features"
    return (f"check data.features (reshape) and model.inputs.{name}.shape; "
            f"{int(np.prod(actual))} values per sample cannot become {_shape(expected)}")


def check_split(split: Split, signature: Signature, *, what: str, locate: Locate) -> None:
    """Check one split against the model (see :func:`check_against_model`)."""
    checker = _Checker(split, signature, what, locate)
    if len(split) == 0:
        checker.fail("the split is empty (0 samples)",
                     "fix the test arrays, or set data.test: false to train without a test "
                     "split" if what == "test" else
                     "check data.path and the validation settings (holdout/split)")
    checker.features()
    checker.targets()
    checker.weights()


def check_features(split: Split, signature: Signature, *, what: str, locate: Locate) -> None:
    """Check only a split's inputs (names, shapes, dtypes, NaN/inf): what ``predict`` needs."""
    checker = _Checker(split, signature, what, locate)
    if len(split) == 0:
        checker.fail("the split is empty (0 samples)")
    checker.features()


def check_against_model(splits: Splits, signature: Signature, *, locate: Locate) -> None:
    """Raise DataError unless every split fits the model's inputs and outputs.

    Checks: no split is empty; each input's per-sample shape matches (``None``
    matches anything); no NaN/inf in features, targets or weights; sparse labels
    are integers in ``[0, classes)``; one-hot targets have ``classes`` columns;
    binary targets lie in [0, 1]; other targets have the output's shape.

    Args:
        splits: from :func:`load_splits`.
        signature: the compiled model's inputs and outputs.
        locate: ``key -> Location``, to point at ``data:`` in the config.

    Example:
        >>> check_against_model(splits, sig, locate=cfg.locate)  # None, or DataError
    """
    for what, split in (("training", splits.train), ("validation", splits.validation),
                        ("test", splits.test)):
        if split is not None:
            check_split(split, signature, what=what, locate=locate)
