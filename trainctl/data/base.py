"""What a data source receives and returns, and the table of built-in sources.

A built-in source is a function ``source(ctx, **args) -> RawData`` marked with
:func:`source`; ``args`` are the keys of the ``data.source`` mapping besides
``type``. Plug-in functions (``module.path:function`` or ``@register("dataset")``)
follow the simpler keras.datasets protocol instead: see :mod:`trainctl.data.sources`.

Example:
    >>> @source("ones")
    ... def ones(ctx, *, samples: int = 8) -> RawData:
    ...     return RawData(train=Split(np.ones((samples, 3)), np.zeros(samples)))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from trainctl.data.types import Signature, Split
from trainctl.errors import DataError, Location, describe

Locate = Callable[[str], Location]


@dataclass(frozen=True)
class SourceContext:
    """Everything a source may need besides its own arguments.

    Args:
        name: the source's name as written in the config.
        key: the config key of the source (``data.source``), for messages.
        path: ``data.path`` made absolute (its existence already checked), or None.
        path_key: the config key of ``path`` (``data.path``).
        config_dir: the config file's folder.
        signature: the model's inputs and outputs.
        seed: the experiment's seed (None: unseeded).
        locate: ``key -> Location`` for messages.
    """

    name: str
    key: str
    path: Optional[Path]
    path_key: str
    config_dir: Path
    signature: Signature
    seed: Optional[int]
    locate: Locate

    def where(self, key: Optional[str] = None) -> str:
        """``"configs/x.yaml:4:9: data.path"``: the prefix of a message about ``key``."""
        key = key or self.key
        return f"{self.locate(key)}: {key}"


@dataclass
class RawData:
    """What a source returns, before transforms and the validation carve.

    Args:
        train: the training split.
        test: the test split, or None when the source has none.
        files: ``path -> sha256`` of every file read.
        shaped_like_model: True when the arrays already fit the model (synthetic
            data): the config's transforms are then not applied.
    """

    train: Split
    test: Optional[Split] = None
    files: dict[str, str] = field(default_factory=dict)
    shaped_like_model: bool = False


SourceFunc = Callable[..., RawData]

SOURCES: dict[str, SourceFunc] = {}
"""Built-in source name -> function ``(ctx, **args) -> RawData``."""


def source(name: str) -> Callable[[SourceFunc], SourceFunc]:
    """Decorator: add a built-in source to :data:`SOURCES` under ``name``."""
    def add(func: SourceFunc) -> SourceFunc:
        func.trainctl_source = True  # type: ignore[attr-defined]  # takes ctx first
        SOURCES[name] = func
        return func
    return add


def as_arrays(value: Any, what: str) -> Any:
    """An array, or a mapping of arrays, from what a source returned (lists stay lists)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): as_arrays(v, f"{what}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, np.ndarray) for v in value):
        return [as_arrays(v, what) for v in value]  # one array per input: named later
    try:
        array = np.asarray(value)  # no copy for an ndarray
    except (ValueError, TypeError) as exc:
        raise DataError(f"{what}: expected a numpy array; received {describe(value)} "
                        f"({exc})") from None
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what}: expected numbers; received an array of dtype {array.dtype}"
                        f" (from {describe(value)})")
    return array


def split_from_parts(parts: Any, what: str) -> Split:
    """A Split from ``(x, y)``, ``(x, y, sample_weight)`` or ``{"x":..., "y":...}``."""
    if isinstance(parts, dict):
        unknown = set(parts) - {"x", "y", "sample_weight"}
        if unknown or "x" not in parts:
            raise DataError(f"{what}: expected keys x, y, sample_weight; received "
                            f"{', '.join(map(str, parts))}")
        parts = (parts["x"], parts.get("y"), parts.get("sample_weight"))
    if not isinstance(parts, (tuple, list)) or not 1 <= len(parts) <= 3:
        raise DataError(f"{what}: expected (x, y) or (x, y, sample_weight); "
                        f"received {describe(parts)}")
    x, y, sw = (*parts, None, None)[:3]
    return Split(as_arrays(x, f"{what} x"), as_arrays(y, f"{what} y"),
                 as_arrays(sw, f"{what} sample_weight"))
