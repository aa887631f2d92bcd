"""A data source whose samples carry their own weights (seed S9, "sample weights inside
the dataset"): the keras.datasets protocol with a third array in the training pair.

    data:
      source: {type: "examples.plugins.weighted_data:mnist_weighted", weights: {5: 2.0}}
"""

from __future__ import annotations

import numpy as np

from trainctl.data.builtin import load_arrays


def mnist_weighted(weights: dict | None = None, path: str | None = None) -> tuple:
    """MNIST as ``((x_train, y_train, sample_weight), (x_test, y_test))``.

    Args:
        weights: class id -> weight of that class's training samples (others 1.0).
        path: an mnist.npz (``data.path``); default: trainctl's usual lookup
            (``$TRAINCTL_DATA_DIR``, Keras's cache).

    Example:
        >>> (x, y, w), _ = mnist_weighted({5: 2.0})
        >>> float(w[y == 5].min()), float(w[y != 5].max())
        (2.0, 1.0)
    """
    (x_train, y_train), test = load_arrays("mnist", path)
    sample_weight = np.ones(len(y_train), dtype=np.float32)
    for cls, weight in (weights or {}).items():
        sample_weight[y_train == int(cls)] = weight  # as the seed: sw[y_train == 5] = 2.0
    return (x_train, y_train, sample_weight), test
