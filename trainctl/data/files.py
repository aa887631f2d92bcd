"""Reading data files safely: npz, IDX (MNIST's original format) and CIFAR's pickled batches.

Every reader reads a file's bytes once, hashes them for run.json and parses
the same buffer, and turns any parse failure into a DataError naming the file.
Nothing here unpickles arbitrary objects.

Example:
    >>> arrays, sha = read_npz(Path("mnist.npz"))
    >>> arrays["x_train"].shape
    (60000, 28, 28)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import zipfile
import zlib
from pathlib import Path

import numpy as np

from trainctl.errors import DataError


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _at(path: Path, where: str) -> str:
    """``"configs/x.yaml:5:9: data.path: /abs/d.npz"``, or just the path without ``where``."""
    return f"{where}: {path}" if where else str(path)


def read_bytes(path: Path, where: str = "") -> bytes:
    """The file's bytes; a missing, unreadable file or a folder is a DataError naming it.

    Args:
        path: the file.
        where: the config position and key that named it (``"x.yaml:5:9: data.path"``),
            put before the path in messages; empty when no config key names the file.
    """
    at = _at(path, where)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{at}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{at}: is a folder; expected a file\n"
                        "  hint: name the data file itself, not the folder that holds it"
                        ) from None
    except PermissionError as exc:
        raise DataError(f"{at}: cannot read the file: {exc.strerror or exc}\n"
                        "  hint: check the file's permissions (and its folders') for the user "
                        "running trainctl") from None
    except OSError as exc:
        raise DataError(f"{at}: cannot read the file: {exc.strerror or exc}") from None


_NPZ_FIX = "re-create it with numpy.savez or numpy.savez_compressed (or copy it again)"


def read_npz(path: Path, where: str = "") -> tuple[dict[str, np.ndarray], str]:
    """Load every array of an ``.npz`` (no pickles) and the file's sha256.

    Args:
        path: the file.
        where: the config position and key that named it, for messages (see :func:`read_bytes`).

    Raises:
        DataError: missing, empty, truncated or corrupt file, a single ``.npy`` array,
            a file that is no zip archive at all, or one holding pickled objects.

    Example:
        >>> arrays, sha = read_npz(Path("data/train.npz"))
    """
    data = read_bytes(path, where)
    at = _at(path, where)

    def bad(reason: str, hint: str = _NPZ_FIX) -> DataError:
        return DataError(f"{at}: not a readable .npz file: {reason}\n  hint: {hint}")

    if not data:
        raise bad("the file is empty (0 bytes)")
    if data.startswith(b"\x93NUMPY"):
        raise bad("it is a single .npy array, not an archive of named arrays",
                  "save the arrays by name: numpy.savez(path, x_train=..., y_train=..., "
                  "x_test=..., y_test=...)")
    if not data.startswith(b"PK"):
        raise bad(f"an .npz is a zip archive, and this file starts with "
                  f"{data[:8]!r} ({len(data)} bytes)")
    try:
        # Arrays are decompressed here, inside the try, so a truncated member fails now.
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise bad("it holds pickled Python objects (object arrays), which trainctl does "
                      "not load", "store numeric arrays only (no dtype=object)") from None
        raise bad(f"it is truncated or corrupt ({len(data)} bytes; {exc})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
        raise bad(f"it is truncated or corrupt ({len(data)} bytes; "
                  f"{type(exc).__name__}: {exc})") from None
    other = [name for name, value in arrays.items() if not isinstance(value, np.ndarray)]
    if other:  # np.load returns a member that is not .npy as its raw bytes
        raise bad(f"it is a zip archive, but {', '.join(map(repr, other[:5]))}"
                  f"{' ...' if len(other) > 5 else ''} in it are not numpy arrays "
                  "(is it some other kind of zip file?)")
    return arrays, sha256_bytes(data)


def _idx_candidates(folder: Path, stem: str) -> list[Path]:
    return [folder / stem, folder / f"{stem}.gz"]


def find_idx(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` or ``folder/stem.gz``, whichever exists."""
    return next((p for p in _idx_candidates(folder, stem) if p.is_file()), None)


def read_idx(path: Path) -> tuple[np.ndarray, str]:
    """Parse an IDX file (optionally gzipped) as MNIST distributes it.

    The header is two zero bytes, a type code (0x08 = uint8), the number of
    dimensions, then one big-endian int32 per dimension.

    Raises:
        DataError: a malformed or truncated file.
    """
    raw = read_bytes(path)
    try:
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
            raise ValueError("bad header: expected an IDX file of unsigned bytes (type 0x08)")
        ndim = data[3]
        dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
        offset = 4 + 4 * ndim
        expected = int(np.prod(dims))
        if len(data) - offset != expected:
            raise ValueError(f"header says {dims} = {expected} bytes of data; "
                             f"found {len(data) - offset}")
        array = np.frombuffer(data, np.uint8, offset=offset).reshape(dims)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise DataError(f"{path}: not a readable IDX file ({exc})") from None
    return array, sha256_bytes(raw)


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers, nothing else."""

    # The same globals keras.datasets allows: exactly what rebuilding an ndarray needs.
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str):  # noqa: D102
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """One CIFAR-10 python batch: images (n, 32, 32, 3) uint8, labels (n,) uint8, sha256.

    Raises:
        DataError: unreadable file or unexpected content.
    """
    raw = read_bytes(path)
    try:
        batch = _ArraysOnly(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.uint8)
        # Stored channels-first, row per image; Keras returns channels-last.
        images = data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError,
            AttributeError, IndexError) as exc:
        raise DataError(f"{path}: not a readable CIFAR-10 batch ({type(exc).__name__}: "
                        f"{exc})") from None
    return images, labels, sha256_bytes(raw)
