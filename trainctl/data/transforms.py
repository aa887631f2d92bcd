"""``data.features`` / ``data.targets`` transforms, applied once to whole numpy arrays.

Numpy only (``trainctl validate`` checks transforms without TensorFlow). Each
item of the list is a one-key mapping ``{name: argument}`` and applies, in
order, to every feature (or target) array. To aim at some inputs only, wrap
the transforms in ``only``: ``{only: {image: [{rescale: 0.0039}]}}``.

==========  ====================================  ==========================================
name        argument                              effect (per array, batch axis kept)
==========  ====================================  ==========================================
reshape     per-sample shape, e.g. ``[784]``      ``a.reshape(n, *shape)`` (a view; one -1 ok)
rescale     ``s`` or ``{scale: s, offset: o}``    ``a * s + o`` as float32, in one pass
cast        dtype name, e.g. ``float32``          ``a.astype(dtype)`` (no copy if already so)
one_hot     number of classes, e.g. ``10``        integer labels -> float32 one-hot rows
normalize   ``{mean: m, std: s}`` (numbers or     ``(a - m) / s`` as float32; lists broadcast
            lists over the last axis)             over the last axis
only        ``{name: [transforms...]}``           the nested transforms, on the named arrays
==========  ====================================  ==========================================

Example:
    >>> x = apply_transforms(np.zeros((2, 28, 28), "uint8"),
    ...                      [{"reshape": [784]}, {"rescale": 1 / 255}], key="data.features")
    >>> x.shape, x.dtype
    ((2, 784), dtype('float32'))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from trainctl.data.memory import aligned_empty
from trainctl.errors import ConfigError, DataError, Location, describe, did_you_mean

Locate = Optional[Callable[[str], Location]]

_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
           "uint8", "uint16", "uint32", "uint64", "bool")


@dataclass(frozen=True)
class Transform:
    """One named transform: an argument check (no numpy work) and the array function."""

    name: str
    check: Callable[[Any], Optional[str]]  # None when the argument is fine, else why not
    apply: Callable[[np.ndarray, Any], np.ndarray]
    example: str


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value: Any) -> bool:
    return _is_number(value) or (isinstance(value, list) and bool(value)
                                 and all(_is_number(v) for v in value))


# -- argument checks ---------------------------------------------------------------
def _check_reshape(arg: Any) -> Optional[str]:
    if not (isinstance(arg, list) and all(isinstance(d, int) and not isinstance(d, bool)
                                          for d in arg)):
        return "expected the per-sample shape as a list of integers, e.g. [784]"
    if any(d == 0 or d < -1 for d in arg) or arg.count(-1) > 1:
        return "expected positive sizes and at most one -1"
    return None


def _check_rescale(arg: Any) -> Optional[str]:
    if _is_number(arg):
        return None
    if isinstance(arg, dict) and "scale" in arg and set(arg) <= {"scale", "offset"} \
            and all(_is_number(v) for v in arg.values()):
        return None
    return "expected a number (the factor) or {scale: number, offset: number}"


def _check_cast(arg: Any) -> Optional[str]:
    if arg in _DTYPES:
        return None
    hint = did_you_mean(arg, _DTYPES) if isinstance(arg, str) else ""
    return f"expected a dtype name, one of {', '.join(_DTYPES)}{hint}"


def _check_one_hot(arg: Any) -> Optional[str]:
    if isinstance(arg, int) and not isinstance(arg, bool) and arg >= 2:
        return None
    return "expected the number of classes, an integer >= 2"


def _check_normalize(arg: Any) -> Optional[str]:
    if not (isinstance(arg, dict) and set(arg) == {"mean", "std"}):
        return "expected {mean: number or list, std: number or list}"
    if not (_numbers(arg["mean"]) and _numbers(arg["std"])):
        return "mean and std must be numbers or non-empty lists of numbers"
    stds = arg["std"] if isinstance(arg["std"], list) else [arg["std"]]
    if any(s <= 0 for s in stds):
        return "std must be > 0"
    return None


def _check_only(arg: Any) -> Optional[str]:
    if isinstance(arg, dict) and arg and all(isinstance(k, str) and isinstance(v, list)
                                             for k, v in arg.items()):
        return None
    return "expected {input_or_output_name: [transforms...]}"


# -- array functions ---------------------------------------------------------------
def _reshape(a: np.ndarray, shape: list) -> np.ndarray:
    try:
        return a.reshape((a.shape[0], *shape))  # a view when the memory allows it
    except ValueError:
        raise ValueError(f"cannot reshape samples of shape {a.shape[1:]} "
                         f"({int(np.prod(a.shape[1:]))} values) to {tuple(shape)}") from None


def _rescale(a: np.ndarray, arg: Any) -> np.ndarray:
    scale, offset = (arg, 0) if _is_number(arg) else (arg["scale"], arg.get("offset", 0))
    # One pass straight to float32: no float64 temporary the size of the data set.
    out = np.multiply(a, np.float32(scale), out=aligned_empty(a.shape, np.float32),
                      dtype=np.float32)
    if offset:
        out += np.float32(offset)  # in place on the new array
    return out


def _cast(a: np.ndarray, dtype: str) -> np.ndarray:
    if a.dtype == np.dtype(dtype):
        return a  # no copy if already so
    out = aligned_empty(a.shape, dtype)
    np.copyto(out, a, casting="unsafe")  # as astype: e.g. float to int truncates
    return out


def _one_hot(a: np.ndarray, classes: int) -> np.ndarray:
    labels = a[..., 0] if a.ndim > 1 and a.shape[-1] == 1 else a  # (n, 1) -> (n,), as Keras
    if labels.dtype.kind == "f" and not np.all(np.mod(labels, 1) == 0):
        raise ValueError("one_hot needs integer class ids; received non-integer values")
    if labels.dtype.kind not in "biuf":
        raise ValueError(f"one_hot needs integer class ids; received dtype {labels.dtype}")
    bad = (labels < 0) | (labels >= classes)
    if np.any(bad):
        first = np.argwhere(bad)[0]
        value = labels[tuple(first)].item()  # a Python number: prints as 7, not np.int64(7)
        raise ValueError(f"label {value} (sample {first[0]}) is outside "
                         f"[0, {classes}); one_hot: {classes} needs every label in that range")
    out = aligned_empty((*labels.shape, classes), np.float32)
    np.take(np.eye(classes, dtype=np.float32), labels.astype(np.intp, copy=False), axis=0,
            out=out)
    return out


def _normalize(a: np.ndarray, arg: dict) -> np.ndarray:
    mean = np.asarray(arg["mean"], dtype=np.float32)
    std = np.asarray(arg["std"], dtype=np.float32)
    for name, v in (("mean", mean), ("std", std)):
        if v.ndim and v.shape[0] not in (1, a.shape[-1]):
            raise ValueError(f"normalize: {name} has {v.shape[0]} values but the last "
                             f"axis has {a.shape[-1]}")
    out = np.subtract(a, mean, out=aligned_empty(np.broadcast_shapes(a.shape, mean.shape),
                                                 np.float32), dtype=np.float32)
    out /= std  # in place: one new array in all
    return out


def _only(a: np.ndarray, arg: Any) -> np.ndarray:  # dispatched by apply_transforms
    raise AssertionError("'only' is applied by apply_transforms")


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("reshape", _check_reshape, _reshape, "{reshape: [784]}"),
    Transform("rescale", _check_rescale, _rescale, "{rescale: 0.00392156862745098}"),
    Transform("cast", _check_cast, _cast, "{cast: float32}"),
    Transform("one_hot", _check_one_hot, _one_hot, "{one_hot: 10}"),
    Transform("normalize", _check_normalize, _normalize, "{normalize: {mean: 0.13, std: 0.31}}"),
    Transform("only", _check_only, _only, "{only: {image: [{rescale: 0.0039}]}}"),
)}
"""Transform name -> :class:`Transform`."""


def check_transform(spec: Any, *, key: str, locate: Locate = None) -> list[ConfigError]:
    """Check one transform item (name and argument) without touching any data.

    Args:
        spec: the config value, e.g. ``{"rescale": 0.0039}``.
        key: its key path, e.g. ``"data.features[1]"``.
        locate: ``key -> Location`` for the error positions (optional).

    Returns:
        The problems found, as ConfigErrors (empty when the item is fine).

    Example:
        >>> str(check_transform({"rescal": 0.1}, key="data.features[0]")[0])
        "data.features[0]: unknown transform 'rescal' (did you mean 'rescale'?); ..."
    """
    def error(message: str, at: str, hint: Optional[str] = None) -> ConfigError:
        return ConfigError(message, key=at, where=locate(at) if locate else None, hint=hint)

    if not (isinstance(spec, dict) and len(spec) == 1):
        return [error("expected a one-key mapping such as {rescale: 0.0039}; "
                      f"received {describe(spec)}", key)]
    (name, arg), = spec.items()
    transform = TRANSFORMS.get(name)
    if transform is None:
        return [error(f"unknown transform {name!r}{did_you_mean(str(name), TRANSFORMS)}; "
                      f"transforms: {', '.join(TRANSFORMS)}", key)]
    at = f"{key}.{name}"
    problem = transform.check(arg)
    if problem:
        return [error(f"{problem}; received {describe(arg)}", at, f"e.g. {transform.example}")]
    if name != "only":
        return []
    return [err for target, items in arg.items() for i, item in enumerate(items)
            for err in check_transform(item, key=f"{at}.{target}[{i}]", locate=locate)]


def check_transforms(specs: list, *, key: str, locate: Locate = None) -> list[ConfigError]:
    """Check a whole ``features``/``targets`` list; ``key`` is e.g. ``"data.features"``."""
    return [err for i, spec in enumerate(specs)
            for err in check_transform(spec, key=f"{key}[{i}]", locate=locate)]


def apply_transforms(arrays: Any, specs: list, *, key: str, locate: Locate = None,
                     default_name: Optional[str] = None) -> Any:
    """Apply ``specs`` in order to one array or to every array of a mapping.

    Args:
        arrays: an array or ``{name: array}`` (None passes through).
        specs: checked transform items (see :func:`check_transforms`).
        key: the list's key path (``"data.features"``), for messages.
        locate: ``key -> Location`` for messages.
        default_name: the name ``only`` may use for a lone array (the model's single input).

    Raises:
        ConfigError: a malformed item, or ``only`` naming an unknown array.
        DataError: the data cannot take the transform (bad shape, labels out of range).

    Example:
        >>> apply_transforms(np.array([1, 0]), [{"one_hot": 2}], key="data.targets")
        array([[0., 1.], [1., 0.]], dtype=float32)
    """
    errors = check_transforms(specs, key=key, locate=locate)
    if errors:
        raise errors[0]
    for i, spec in enumerate(specs):
        arrays = _apply_one(arrays, spec, key=f"{key}[{i}]", locate=locate,
                            default_name=default_name)
    return arrays


def _apply_one(arrays: Any, spec: dict, *, key: str, locate: Locate,
               default_name: Optional[str]) -> Any:
    (name, arg), = spec.items()
    if arrays is None:
        return None
    if name == "only":
        return _apply_only(arrays, arg, key=f"{key}.only", locate=locate,
                           default_name=default_name)
    func = TRANSFORMS[name].apply
    try:
        if isinstance(arrays, dict):
            return {k: func(a, arg) for k, a in arrays.items()}
        return func(arrays, arg)
    except (ValueError, TypeError) as exc:
        where = f"{locate(key)}: " if locate else ""
        raise DataError(f"{where}{key}: {name} failed: {exc}") from None


def _apply_only(arrays: Any, arg: dict, *, key: str, locate: Locate,
                default_name: Optional[str]) -> Any:
    lone = not isinstance(arrays, dict)
    table = {default_name or "": arrays} if lone else dict(arrays)
    for target, items in arg.items():
        if target not in table:
            at = f"{key}.{target}"
            raise ConfigError(f"no array named {target!r}{did_you_mean(target, table)}; "
                              f"the data has: {', '.join(map(repr, table))}",
                              key=at, where=locate(at) if locate else None)
        table[target] = apply_transforms(table[target], items, key=f"{key}.{target}",
                                         locate=locate, default_name=target)
    return next(iter(table.values())) if lone else table
