"""The range of the training inputs: recorded by ``fit``, checked by ``predict --input``.

The saved model takes the data after the config's transforms (SPEC §5): a file of
raw pixels (0-255) given to a model trained on [0, 1] gets confident, wrong
predictions and no error at all. run.json's ``input_ranges`` holds each input's
smallest and largest value over the first training samples; ``predict --input``
warns when a file's values fall far outside them.

Example:
    >>> ranges = input_ranges(splits.train, ["digits"])    # {"digits": [0.0, 1.0]}
    >>> out_of_range(ranges, {"digits": raw_pixels})
    ["input 'digits' holds values in [0, 255]; ..."]
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLE = 1024  # the first training samples are enough to know the scale


def input_ranges(split: Any, names: list[str]) -> dict[str, list[float]]:
    """``{input name: [min, max]}`` of each numeric input over the first samples.

    Args:
        split: the training split (its ``x``: an array, or arrays by input name).
        names: the model's input names (an array ``x`` is the first input's).
    """
    x = getattr(split, "x", None)
    arrays = x if isinstance(x, dict) else {names[0]: x} if names and x is not None else {}
    out = {}
    for name, array in arrays.items():
        head = np.asarray(array[:SAMPLE]) if np.ndim(array) else np.asarray(array)
        if head.size and head.dtype.kind in "biuf":
            out[name] = [float(head.min()), float(head.max())]
    return out


def out_of_range(ranges: dict[str, list[float]], arrays: dict[str, Any]) -> list[str]:
    """A line for each input whose values reach beyond the training range by more than
    the range's own width (so a brighter image or a slightly longer tail passes).

    Args:
        ranges: run.json's ``input_ranges``.
        arrays: the input arrays by name.
    """
    lines = []
    for name, (low, high) in ranges.items():
        array = np.asarray(arrays.get(name, ()))
        if not array.size or array.dtype.kind not in "biuf":
            continue
        width = max(high - low, 1e-12)
        got_low, got_high = float(array.min()), float(array.max())
        if got_low < low - width or got_high > high + width:
            lines.append(f"input {name!r} holds values in [{got_low:.4g}, {got_high:.4g}]; the "
                         f"model was trained on [{low:.4g}, {high:.4g}] (after the config's "
                         "transforms, which predict --input does not apply)")
    return lines
