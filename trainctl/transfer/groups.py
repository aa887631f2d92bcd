"""The layers stored in a Keras 3 weights file, found by their names.

Keras 3 stores a layer's variables under a path made from its class and its
position (``layers/dense_1/vars/0``), which is why ``load_weights`` matches by
position (KERAS3_NOTES, "Loading weights"). Each layer's ``vars`` group also
carries the layer's own name as an attribute: that is what lets trainctl match
layers by name in a ``.weights.h5`` file, or in the ``model.weights.h5`` inside
a ``.keras`` archive, without rebuilding the source model (no plug-in classes,
no safe-mode questions, no second graph in memory).

A *layer group* is a group whose ``vars`` child names a layer; only the
outermost ones count (a sub-model's inner layers travel with it). The
optimizer's state is not a layer and is left out.

Example:
    >>> with open_weights(Path("runs/x/model.keras"), "keras") as h5:
    ...     layers = read_layers(h5)
    >>> sorted(layers["dense_1"])
    ['vars/0', 'vars/1']
"""

from __future__ import annotations

import io
import re
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

WEIGHTS_IN_ARCHIVE = "model.weights.h5"


@contextmanager
def open_weights(path: Path, kind: str, mode: str = "r") -> Iterator[Any]:
    """An open ``h5py.File`` of a ``.weights.h5`` file, or of the weights inside a ``.keras``.

    Args:
        path: the file.
        kind: ``weights`` or ``keras``.
        mode: h5py's mode (``r``, or ``r+`` for a ``.weights.h5`` to change in place).

    Raises:
        ValueError: a ``.keras`` archive without ``model.weights.h5``.
    """
    import h5py

    if kind == "keras":
        with zipfile.ZipFile(path) as archive:
            if WEIGHTS_IN_ARCHIVE not in archive.namelist():
                raise ValueError(f"no {WEIGHTS_IN_ARCHIVE} inside the archive (it holds "
                                 f"{', '.join(sorted(archive.namelist())[:5]) or 'nothing'})")
            data = archive.read(WEIGHTS_IN_ARCHIVE)
        with h5py.File(io.BytesIO(data), "r") as h5:
            yield h5
    else:
        with h5py.File(path, mode) as h5:
            yield h5


def layer_paths(h5: Any) -> dict[str, str]:
    """``{layer name: group path}`` of the outermost layer groups (optimizers left out).

    Example:
        >>> layer_paths(h5)
        {'dense_1': 'layers/dense', 'dense_2': 'layers/dense_1', ...}
    """
    found: dict[str, str] = {}

    def visit(group: Any, path: str) -> None:
        for child in sorted(group, key=natural):
            node = group[child]
            if not hasattr(node, "keys"):  # a dataset
                continue
            sub = f"{path}/{child}" if path else child
            if not path and (child == "optimizer" or child.endswith("_optimizer")):
                continue  # the model's optimizer(s): state, not a layer
            name = _layer_name(node)
            if name is not None:
                found.setdefault(name, sub)  # outermost: its inner layers are not visited
            else:
                visit(node, sub)

    visit(h5, "")
    return found


def _layer_name(group: Any) -> str | None:
    """The layer name a group's ``vars`` child carries, or None when it is not a layer."""
    vars_group = group.get("vars")
    if vars_group is None or not hasattr(vars_group, "attrs"):
        return None
    name = vars_group.attrs.get("name")
    if isinstance(name, bytes):
        name = name.decode()
    return name if isinstance(name, str) and name else None


def read_layers(h5: Any, *, arrays: bool = True) -> dict[str, dict[str, Any]]:
    """``{layer name: {path in its group: array}}`` for each layer holding variables.

    Args:
        h5: an open weights file (:func:`open_weights`).
        arrays: read the arrays; False gives their shapes only.

    Example:
        >>> read_layers(h5, arrays=False)["predictions"]
        {'vars/0': (64, 10), 'vars/1': (10,)}
    """
    out: dict[str, dict[str, Any]] = {}
    for name, path in layer_paths(h5).items():
        tensors: dict[str, Any] = {}

        def keep(sub: str, node: Any) -> None:
            if not hasattr(node, "keys"):
                tensors[sub] = np.array(node[()]) if arrays else tuple(node.shape)

        h5[path].visititems(keep)
        if tensors:
            out[name] = dict(sorted(tensors.items(), key=lambda kv: natural(kv[0])))
    return out


def natural(path: str) -> list:
    """Sort key putting ``vars/2`` before ``vars/10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path)]
