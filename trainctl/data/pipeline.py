"""``make_dataset``: a Split as a batched, shuffled, prefetched ``tf.data.Dataset``.

Shuffling permutes sample *indices*, batches them, and gathers each batch from
the arrays, as Keras's own array adapter does: a full reshuffle every epoch
costs one permutation of ``n`` integers instead of a shuffle buffer holding
``n`` images. The order is a function of the seed alone: the same seed gives
the same batches in every run, and each new pass (epoch) over the dataset
draws the next permutation of that seeded sequence.

Example:
    >>> ds = make_dataset(splits.train, batch_size=64, shuffle=True, seed=42)
    >>> x, y = next(iter(ds))
    >>> x.shape, y.shape
    (TensorShape([64, 784]), TensorShape([64]))
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from trainctl.data.types import Split


def _index_dataset(n: int, *, batch_size: int, shuffle: Union[bool, int],
                   seed: Optional[int], initial_epoch: int) -> Any:
    """Batches of sample indices, permuted per pass when ``shuffle`` asks for it."""
    import tensorflow as tf

    indices = tf.data.Dataset.range(n)
    if shuffle is not False:
        # True: a full shuffle (buffer = n); an int: a buffer of that many indices.
        buffer = n if shuffle is True else min(int(shuffle), n)
        indices = indices.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        # Each iterator draws the next permutation from the shuffle's seed generator;
        # opening (not reading) `initial_epoch` iterators starts at that epoch's order,
        # so a resumed run sees the data in the order of an uninterrupted one.
        for _ in range(initial_epoch):
            iter(indices)
    return indices.batch(batch_size)


def _structure(split: Split, outputs: Optional[list[str]] = None) -> tuple:
    """``(x, y)``, ``(x, y, sample_weight)`` or ``(x,)`` as Keras unpacks them.

    Per-output weights ``{name: array}`` become a tuple in output order: Keras 3
    looks them up by the output's position (a mapping fails with ``KeyError: 0``).
    """
    if split.y is None:
        if split.sample_weight is not None:
            raise ValueError("sample weights need targets (y)")
        return (split.x,)
    weights = split.sample_weight
    if weights is None:
        return (split.x, split.y)
    if isinstance(weights, dict):
        order = outputs or list(weights)
        ones = np.ones(len(split), dtype=np.float32)
        weights = tuple(weights.get(name, ones) for name in order)
    return (split.x, split.y, weights)


def make_dataset(split: Split, *, batch_size: int, shuffle: Union[bool, int] = False,
                 seed: Optional[int] = None, take_batches: Optional[int] = None,
                 initial_epoch: int = 0, outputs: Optional[list[str]] = None) -> Any:
    """A ``tf.data.Dataset`` of batches ``(x, y)`` or ``(x, y, sample_weight)`` (``(x,)`` if no y).

    Args:
        split: the arrays; ``x``/``y``/``sample_weight`` may be ``{name: array}``
            (multi-input/multi-output models), kept as dicts in each batch.
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: ``True`` a full reshuffle every epoch, an int a shuffle buffer of
            that size, ``False`` the stored order.
        seed: the shuffle seed; the same seed gives the same batches run to run.
        take_batches: at most this many batches per pass (smoke runs), or None.
        initial_epoch: start at this epoch's order (resuming a run).
        outputs: the model's output names in order, for per-output sample weights
            (default: the order of the weights mapping).

    Example:
        >>> ds = make_dataset(split, batch_size=64, shuffle=1024, seed=0, take_batches=100)
    """
    import tensorflow as tf

    n = len(split)
    batches = _index_dataset(n, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             initial_epoch=initial_epoch)
    data = tf.nest.map_structure(tf.convert_to_tensor, _structure(split, outputs))
    # The arrays enter the pipeline once, as a repeated single element, rather than
    # being captured as graph constants by the map function (which copies them per
    # trace and fails above 2 GB).
    arrays = tf.data.Dataset.from_tensors(data).repeat()

    def gather(index: Any, tensors: Any) -> Any:
        return tf.nest.map_structure(lambda t: tf.gather(t, index, axis=0), tensors)

    dataset = tf.data.Dataset.zip((batches, arrays)).map(
        gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if take_batches is not None:
        dataset = dataset.take(take_batches)
    return dataset.prefetch(tf.data.AUTOTUNE)
