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


def read_bytes(path: Path) -> bytes:
    """The file's bytes; an unreadable file is a DataError naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_npz(path: Path) -> tuple[dict[str, np.ndarray], str]:
    """Load every array of an ``.npz`` (no pickles) and the file's sha256.

    Raises:
        DataError: missing, truncated or corrupt file, or one holding pickled objects.

    Example:
        >>> arrays, sha = read_npz(Path("data/train.npz"))
    """
    data = read_bytes(path)
    try:
        # Arrays are decompressed here, inside the try, so a truncated member fails now.
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            arrays = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        reason = ("it holds pickled Python objects, which trainctl does not load"
                  if "allow_pickle" in str(exc) else f"{type(exc).__name__}: {exc}")
        raise DataError(f"{path}: not a readable .npz file ({reason}); "
                        "re-create it with numpy.savez or numpy.savez_compressed") from None
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
