"""The ``npz`` source: any ``.npz`` file named by ``data.path``.

Default keys are Keras's: ``x_train``, ``y_train``, ``x_test``, ``y_test``, plus
optional ``sample_weight_train`` / ``sample_weight_test``. Each can be renamed
in the source mapping, and ``null`` switches a key off::

    data:
      source: {type: npz, x_train: images, y_train: labels, x_test: null}
      path: data/train.npz

Several inputs or outputs: store one array per name under ``<key>/<name>``,
e.g. ``np.savez(f, **{"x_train/image": a, "x_train/series": b, "y_train/score": s})``;
``x_train`` then becomes ``{"image": a, "series": b}``. A key may name another
one's array (an autoencoder: ``y_train: x_train``). Without the test keys the
source has no test split.

Example:
    >>> np.savez("data.npz", x_train=x, y_train=y)
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from trainctl.data.base import RawData, SourceContext, source
from trainctl.data.files import read_npz
from trainctl.data.types import Split
from trainctl.errors import ConfigError, DataError


def lookup(arrays: dict[str, np.ndarray], key: Optional[str]) -> Any:
    """``arrays[key]``, or ``{name: arrays["key/name"]}``, or None when neither exists."""
    if key is None:
        return None
    if key in arrays:
        return arrays[key]
    prefix = f"{key}/"
    group = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
    return group or None


def _require(value: Any, key: str, role: str, ctx: SourceContext, arrays: dict) -> Any:
    if value is None:
        # a key the config renamed is blamed where it is written; Keras's default, the file
        at = ctx.where(f"{ctx.key}.{role}") if key != role else ctx.where(ctx.path_key)
        raise DataError(f"{at}: {ctx.path}: no array {key!r} (or "
                        f"'{key}/<name>' arrays) for {role}; the file has: "
                        f"{', '.join(arrays) or 'nothing'}\n  hint: name the right key in "
                        f"the source mapping, e.g. {{type: npz, {role}: <key>}}")
    return value


@source("npz")
def npz(ctx: SourceContext, *, x_train: str = "x_train", y_train: Optional[str] = "y_train",
        x_test: Optional[str] = "x_test", y_test: Optional[str] = "y_test",
        sample_weight_train: Optional[str] = "sample_weight_train",
        sample_weight_test: Optional[str] = "sample_weight_test") -> RawData:
    """Load a split per key group from ``data.path`` (see the module docstring)."""
    if ctx.path is None:
        raise ConfigError("the npz source needs data.path (the .npz file, relative to the "
                          "config file)", key=ctx.key, where=ctx.locate(ctx.key))
    arrays, sha = read_npz(ctx.path, where=ctx.where(ctx.path_key))
    train = Split(_require(lookup(arrays, x_train), x_train, "x_train", ctx, arrays),
                  lookup(arrays, y_train), lookup(arrays, sample_weight_train))
    if y_train is not None:
        _require(train.y, y_train, "y_train", ctx, arrays)
    test = None
    x = lookup(arrays, x_test)
    if x is not None:
        y = lookup(arrays, y_test)
        if y_test is not None and y_train is not None:  # targets in train: in test too
            _require(y, y_test, "y_test", ctx, arrays)
        test = Split(x, y, lookup(arrays, sample_weight_test))
    return RawData(train=train, test=test, files={str(ctx.path): sha})
