"""The ``synthetic`` source: seeded random data shaped like the model, for smoke runs.

Features are uniform in [0, 1) (float inputs) or integers in ``[0, int_high)``
(integer inputs, e.g. token ids); ``None`` dimensions get ``length``. Targets
are valid for each output's kind: class ids below ``classes`` (sparse), one-hot
rows (onehot), 0/1 (binary), standard normal (regression). The arrays already
fit the model, so the config's ``features``/``targets`` transforms are skipped.
A single input (output) is a plain array, several are ``{name: array}``.

Example (YAML)::

    data: {source: {type: synthetic, samples: 256, test_samples: 64}}
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from trainctl.data.base import RawData, SourceContext, source
from trainctl.data.types import OutputInfo, Signature, Split
from trainctl.errors import ConfigError


def _shape(shape: tuple, n: int, length: int) -> tuple:
    return (n, *[length if d is None else d for d in shape])


def make_features(sig: Signature, n: int, rng: np.random.Generator, *,
                  length: int, int_high: int) -> dict[str, np.ndarray]:
    """One random array per model input."""
    out = {}
    for name, (shape, dtype) in sig.inputs.items():
        size = _shape(shape, n, length)
        kind = np.dtype(dtype).kind if dtype != "bfloat16" else "f"
        if kind == "f":
            out[name] = rng.random(size, dtype=np.float32).astype(
                "float32" if dtype == "bfloat16" else dtype, copy=False)
        elif kind == "b":
            out[name] = rng.random(size) < 0.5
        else:
            out[name] = rng.integers(0, int_high, size).astype(dtype)
    return out


def make_target(info: OutputInfo, n: int, rng: np.random.Generator, *,
                length: int) -> np.ndarray:
    """Random targets that are valid for ``info``'s kind."""
    size = _shape(info.shape, n, length)
    if info.kind == "sparse":
        return rng.integers(0, info.classes or 2, size)
    if info.kind == "onehot":
        classes = info.classes or size[-1]
        return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, size[:-1])]
    if info.kind == "binary":
        return rng.integers(0, 2, size).astype(np.float32)
    return rng.standard_normal(size, dtype=np.float32)


def _lone(arrays: dict) -> object:
    """A single-input (single-output) model gets a plain array, as Keras expects."""
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    return arrays or None


def make_split(sig: Signature, n: int, rng: np.random.Generator, *, length: int,
               int_high: int) -> Split:
    """A Split of ``n`` random samples fitting ``sig``."""
    x = make_features(sig, n, rng, length=length, int_high=int_high)
    y = {name: make_target(info, n, rng, length=length) for name, info in sig.outputs.items()}
    return Split(_lone(x), _lone(y))


@source("synthetic")
def synthetic(ctx: SourceContext, *, samples: int = 256, test_samples: int = 64,
              length: int = 16, int_high: int = 10, seed: Optional[int] = None) -> RawData:
    """Random data shaped like ``ctx.signature``.

    Args:
        samples: training samples (the validation carve comes out of these).
        test_samples: test samples (0: no test split).
        length: size given to ``None`` dimensions (sequence length).
        int_high: integer inputs are drawn from ``[0, int_high)``.
        seed: the generator's seed; default: the experiment's seed, else 0.
    """
    for arg, value, low in (("samples", samples, 1), ("test_samples", test_samples, 0),
                            ("length", length, 1), ("int_high", int_high, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            key = f"{ctx.key}.{arg}"
            raise ConfigError(f"expected an integer >= {low}; received {value!r}",
                              key=key, where=ctx.locate(key))
    rng = np.random.default_rng(seed if seed is not None else (ctx.seed or 0))
    train = make_split(ctx.signature, samples, rng, length=length, int_high=int_high)
    test = (make_split(ctx.signature, test_samples, rng, length=length, int_high=int_high)
            if test_samples else None)
    return RawData(train=train, test=test, shaped_like_model=True)
