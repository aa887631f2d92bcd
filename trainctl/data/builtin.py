"""The Keras data sets (mnist, fashion_mnist, cifar10): found locally, validated, loaded once.

Where each is looked for, first match wins (SPEC §5):

1. ``data.path`` (relative to the config file): an ``.npz`` in Keras's layout,
   or a folder in the layout below. Missing -> DataError naming it, no fallback.
2. ``$TRAINCTL_DATA_DIR``:

   =============  ===================  ==========================================
   source         npz file             or a folder / files
   =============  ===================  ==========================================
   mnist          ``mnist.npz``        the four IDX files (``train-images-idx3-ubyte``,
                                       ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
                                       ``t10k-labels-idx1-ubyte``, each optionally ``.gz``)
                                       directly in the folder, or in ``mnist/``
   fashion_mnist  ``fashion_mnist.npz``  the same four IDX files in ``fashion-mnist/``
   cifar10        ``cifar10.npz``      ``cifar-10-batches-py/`` (the python batches)
   =============  ===================  ==========================================

3. Keras's cache, ``$KERAS_HOME`` or ``~/.keras`` (and ``/tmp/.keras``), under
   ``datasets/``: ``mnist.npz``, ``fashion-mnist/``, ``cifar-10-batches-py-target/
   cifar-10-batches-py/``.
4. ``keras.datasets.<name>.load_data()``, which downloads on a machine with internet.
5. Otherwise a DataError saying how to provide the files.

npz files hold ``x_train``, ``y_train``, ``x_test``, ``y_test``; images must be
uint8 of the data set's shape and labels integers 0-9 (shape ``(n,)`` or ``(n, 1)``).
Files are not hash-checked against Keras's downloads (local copies differ byte-wise).

Example:
    >>> raw = SOURCES["mnist"](ctx)
    >>> raw.train.x.shape, raw.test.x.shape
    ((60000, 28, 28), (10000, 28, 28))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from trainctl.data.base import RawData, SourceContext, source
from trainctl.data.files import find_idx, read_cifar_batch, read_idx, read_npz
from trainctl.data.types import Signature, Split
from trainctl.errors import DataError, Location

_IDX = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class KerasDataset:
    """Where one Keras data set may live and what its arrays look like."""

    name: str
    npz: str  # file name in $TRAINCTL_DATA_DIR
    folders: tuple[str, ...]  # folders (relative to $TRAINCTL_DATA_DIR) in the raw layout
    cache: tuple[str, ...]  # paths under <keras home>/datasets
    image_shape: tuple[int, ...]
    classes: int = 10


DATASETS = {d.name: d for d in (
    KerasDataset("mnist", "mnist.npz", (".", "mnist"), ("mnist.npz",), (28, 28)),
    KerasDataset("fashion_mnist", "fashion_mnist.npz", ("fashion-mnist",),
                 ("fashion-mnist",), (28, 28)),
    KerasDataset("cifar10", "cifar10.npz", ("cifar-10-batches-py",),
                 ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
                 (32, 32, 3)),
)}


def keras_homes() -> list[Path]:
    """Keras's cache roots, as ``keras.config.keras_home()`` would choose them."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return [Path(home), Path("/tmp/.keras")]


def _usable(path: Path) -> bool:
    """A file, or a folder holding the raw layout (IDX files or CIFAR batches)."""
    if path.is_file():
        return True
    return path.is_dir() and (find_idx(path, _IDX["x_train"]) is not None
                              or (path / "data_batch_1").is_file())


def candidates(ds: KerasDataset) -> list[Path]:
    """Every place ``ds`` is looked for without ``data.path``, in order."""
    out = []
    data_dir = os.environ.get("TRAINCTL_DATA_DIR")
    if data_dir:
        root = Path(data_dir).expanduser()
        out += [root / ds.npz] + [root / f for f in ds.folders]
    for home in keras_homes():
        out += [home / "datasets" / c for c in ds.cache]
    return out


def load_dataset(ds: KerasDataset, path: Path, where: str = "") -> RawData:
    """Read ``ds`` from an npz file or a raw-layout folder and validate it.

    ``where`` (``"x.yaml:5:9: data.path"``) prefixes messages when a config key named ``path``.
    """
    path = path.resolve()  # run.json records absolute paths
    if path.is_dir():
        arrays, files = _read_folder(ds, path)
    else:
        arrays, sha = read_npz(path, where)
        files = {str(path): sha}
    _validate(ds, arrays, f"{where}: {path}" if where else path)
    return RawData(train=Split(arrays["x_train"], arrays["y_train"]),
                   test=Split(arrays["x_test"], arrays["y_test"]), files=files)


def _read_folder(ds: KerasDataset, folder: Path) -> tuple[dict, dict]:
    if (folder / "data_batch_1").is_file():
        return _read_cifar(folder)
    arrays, files = {}, {}
    for key, stem in _IDX.items():
        path = find_idx(folder, stem)
        if path is None:
            raise DataError(f"{folder}: {ds.name}: missing {stem} (or {stem}.gz); "
                            f"expected the four IDX files {', '.join(_IDX.values())}")
        arrays[key], files[str(path)] = read_idx(path)
    return arrays, files


def _read_cifar(folder: Path) -> tuple[dict, dict]:
    files, xs, ys = {}, [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{folder}: missing {name}; expected data_batch_1..5 and "
                            "test_batch (the python version of CIFAR-10)")
        x, y, files[str(path)] = read_cifar_batch(path)
        xs.append(x)
        ys.append(y)
    arrays = {"x_train": np.concatenate(xs[:5]), "y_train": np.concatenate(ys[:5])[:, None],
              "x_test": np.ascontiguousarray(xs[5]), "y_test": ys[5][:, None]}
    return arrays, files


def _validate(ds: KerasDataset, arrays: dict, path: Path | str) -> None:
    """Keys, shapes, dtypes and label range; DataError naming the file otherwise."""
    missing = [k for k in _KEYS if k not in arrays]
    if missing:
        raise DataError(f"{path}: not a {ds.name} file: missing {', '.join(missing)}; "
                        f"found keys: {', '.join(arrays) or 'none'} "
                        f"(expected {', '.join(_KEYS)}, as keras.datasets.{ds.name} has)")
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.dtype != np.uint8 or x.shape[1:] != ds.image_shape:
            raise DataError(f"{path}: x_{part}: expected uint8 images of shape "
                            f"(n, {', '.join(map(str, ds.image_shape))}); "
                            f"received {x.dtype} {x.shape}")
        if y.dtype.kind not in "iu" or y.shape not in ((len(x),), (len(x), 1)):
            raise DataError(f"{path}: y_{part}: expected {len(x)} integer labels, shape "
                            f"({len(x)},) or ({len(x)}, 1); received {y.dtype} {y.shape}")
        if y.size and (y.min() < 0 or y.max() >= ds.classes):
            raise DataError(f"{path}: y_{part}: labels must be 0..{ds.classes - 1}; "
                            f"found {y.min()}..{y.max()}")


def _download(ds: KerasDataset) -> Optional[RawData]:
    """``keras.datasets.<name>.load_data()``; None when it fails (no internet)."""
    try:
        import keras  # only here: the download path needs TensorFlow

        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, ds.name).load_data()
    except Exception:  # noqa: BLE001 - any failure means "not available here"
        return None
    found = next((p for p in candidates(ds) if _usable(p)), None)
    if found is not None:  # read back the cached copy, so run.json gets its hash
        return load_dataset(ds, found)
    return RawData(train=Split(x_train, y_train), test=Split(x_test, y_test))


def _not_found(ds: KerasDataset, ctx: SourceContext) -> DataError:
    tried = "\n".join(f"    {p}" for p in candidates(ds))
    return DataError(
        f"{ctx.where()}: cannot find the {ds.name} data set, and downloading it failed "
        f"(no internet?). Looked in:\n{tried or '    (nowhere: TRAINCTL_DATA_DIR is unset)'}\n"
        f"  hint: set TRAINCTL_DATA_DIR to a folder holding {ds.npz} (Keras's npz layout), "
        f"or give its path as data.path (relative to the config file)")


def load_keras_dataset(ds: KerasDataset, ctx: SourceContext) -> RawData:
    """Resolve and load ``ds`` in the order described in the module docstring."""
    if ctx.path is not None:
        if not _usable(ctx.path):
            raise DataError(f"{ctx.where(ctx.path_key)}: {ctx.path} holds no {ds.name} data "
                            f"(expected {ds.npz} in Keras's npz layout or the raw files)")
        return load_dataset(ds, ctx.path, ctx.where(ctx.path_key))
    found = next((p for p in candidates(ds) if _usable(p)), None)
    if found is not None:
        return load_dataset(ds, found)
    raw = _download(ds)
    if raw is None:
        raise _not_found(ds, ctx)
    return raw


@source("mnist")
def mnist(ctx: SourceContext) -> RawData:
    """MNIST digits: 60,000 + 10,000 uint8 images of 28x28, labels 0-9."""
    return load_keras_dataset(DATASETS["mnist"], ctx)


@source("fashion_mnist")
def fashion_mnist(ctx: SourceContext) -> RawData:
    """Fashion-MNIST: 60,000 + 10,000 uint8 images of 28x28, labels 0-9."""
    return load_keras_dataset(DATASETS["fashion_mnist"], ctx)


@source("cifar10")
def cifar10(ctx: SourceContext) -> RawData:
    """CIFAR-10: 50,000 + 10,000 uint8 images of 32x32x3, labels 0-9 of shape (n, 1)."""
    return load_keras_dataset(DATASETS["cifar10"], ctx)


def load_arrays(name: str, path: Optional[str] = None) -> tuple:
    """A Keras data set as ``keras.datasets.<name>.load_data()`` returns it, found locally.

    For plug-in sources that start from a Keras data set (adding sample weights,
    say): the same lookup as ``data.source: <name>`` (``path``, then
    ``$TRAINCTL_DATA_DIR``, Keras's cache, a download).

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_arrays("mnist")
    """
    if name not in DATASETS:
        raise DataError(f"unknown Keras data set {name!r}; known: {', '.join(DATASETS)}")
    ctx = SourceContext(name=name, key="data.source", path=Path(path) if path else None,
                        path_key="data.path", config_dir=Path.cwd(),
                        signature=Signature(inputs={}), seed=None,
                        locate=lambda key: Location("<plug-in>", 0, 0))
    raw = load_keras_dataset(DATASETS[name], ctx)
    return (raw.train.x, raw.train.y), (raw.test.x, raw.test.y)
