"""Arrays that enter TensorFlow without a copy: 64-byte aligned, shared through DLPack.

A data set is held once in memory, not twice. ``tf.convert_to_tensor`` copies a
NumPy array into a buffer of TensorFlow's own (measured: MNIST's float32 training,
validation and test arrays are 219 MB, copied again when the datasets are made,
which put trainctl's peak memory ~150 MB above the plain Keras script's). Through
DLPack a tensor uses the array's memory instead, but TensorFlow's kernels assume
64-byte aligned buffers and abort the process on one that is not (``Check failed:
IsAligned()``), while NumPy aligns large arrays to 16 bytes only. So the transforms
that make new arrays (rescale, normalize, cast, one_hot) allocate them aligned
(:func:`aligned_empty`), and :func:`as_tensor` shares an array only when it is
aligned, C-contiguous, large and of a plain numeric type; anything else is copied
as before.

Example:
    >>> x = aligned_empty((60000, 784), np.float32)      # numpy side (no TensorFlow)
    >>> t = as_tensor(x)                                   # the same memory, as a tf.Tensor
"""

from __future__ import annotations

from typing import Any

import numpy as np

# TensorFlow's largest alignment (EIGEN_MAX_ALIGN_BYTES with AVX-512).
ALIGN = 64
# Below this an array is copied: the copy costs nothing worth a shared buffer.
SHARE_BYTES = 1 << 20


def aligned_empty(shape: tuple, dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a 64-byte boundary.

    Args:
        shape: the array's shape.
        dtype: its NumPy dtype.

    Example:
        >>> aligned_empty((2, 3), np.float32).ctypes.data % 64
        0
    """
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(size + ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + size].view(dtype).reshape(shape)


def shareable(array: Any) -> bool:
    """Whether :func:`as_tensor` can hand ``array``'s memory to TensorFlow as it is."""
    return (isinstance(array, np.ndarray) and array.nbytes >= SHARE_BYTES
            and array.dtype.kind in "biuf" and array.dtype.isnative
            and array.flags.c_contiguous and array.ctypes.data % ALIGN == 0)


def as_tensor(value: Any) -> Any:
    """``value`` as a ``tf.Tensor``: sharing a large aligned array's memory, else a copy.

    The tensor keeps the array alive; the array must not be changed afterwards
    (the datasets read it for the whole run).

    Example:
        >>> t = as_tensor(aligned_empty((1024, 1024), np.float32))   # no copy
    """
    import tensorflow as tf

    if shareable(value):
        try:
            return tf.experimental.dlpack.from_dlpack(value.__dlpack__())
        except (BufferError, TypeError, ValueError, tf.errors.OpError):
            pass  # a dtype or layout DLPack does not take: copy it
    return tf.convert_to_tensor(value)
