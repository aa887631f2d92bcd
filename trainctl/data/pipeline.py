"""``make_dataset``: a Split as a batched, shuffled, prefetched ``tf.data.Dataset``.

Shuffling permutes sample *indices*, batches them, and gathers each batch from
the arrays, as Keras's own array adapter does: a full reshuffle every epoch
costs one permutation of ``n`` integers instead of a shuffle buffer holding
``n`` images. The order is a function of the seed alone: the same seed gives
the same batches in every run, and each new pass (epoch) over the dataset
draws the next permutation of that seeded sequence.

Training reads :func:`make_stream` instead: one endless stream whose pass ``p``
is ordered by ``(seed, p)`` alone, so a resumed run can start at any epoch and
see the data an uninterrupted run would have seen.

Example:
    >>> ds = make_dataset(splits.train, batch_size=64, shuffle=True, seed=42)
    >>> x, y = next(iter(ds))
    >>> x.shape, y.shape
    (TensorShape([64, 784]), TensorShape([64]))
"""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from trainctl.data.memory import as_tensor
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


def pass_order(n: int, *, shuffle: Union[bool, int], seed: int, pass_index: Any) -> Any:
    """The sample indices of pass ``pass_index`` over ``n`` samples: a function of
    ``(seed, pass_index)`` alone, so any pass can be recomputed (resuming a run)."""
    import tensorflow as tf

    if shuffle is False:
        return tf.data.Dataset.range(n)
    pass_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(pass_index, tf.int64)])
    if shuffle is True or int(shuffle) >= n:
        return tf.data.Dataset.from_tensor_slices(
            tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=pass_seed))
    # a shuffle buffer, as the seed's shuffle(1024): seeded per pass, never reshuffled
    op_seed = (pass_seed[0] * 1_000_003 + pass_seed[1]) % (2**31 - 1)
    return tf.data.Dataset.range(n).shuffle(int(shuffle), seed=op_seed,
                                            reshuffle_each_iteration=False)


def _gather_batches(split: Split, batches: Any, outputs: Optional[list[str]]) -> Any:
    """Batches of indices -> batches of the split's arrays."""
    import tensorflow as tf

    # as_tensor: a large aligned array is shared, not copied (trainctl.data.memory)
    data = tf.nest.map_structure(as_tensor, _structure(split, outputs))
    # The arrays enter the pipeline once, as a repeated single element, rather than
    # being captured as graph constants by the map function (which copies them per
    # trace and fails above 2 GB).
    arrays = tf.data.Dataset.from_tensors(data).repeat()

    def gather(index: Any, tensors: Any) -> Any:
        return tf.nest.map_structure(lambda t: tf.gather(t, index, axis=0), tensors)

    return tf.data.Dataset.zip((batches, arrays)).map(
        gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def make_stream(split: Split, *, batch_size: int, shuffle: Union[bool, int], seed: int,
                take_batches: Optional[int] = None, skip_batches: int = 0,
                outputs: Optional[list[str]] = None, prefetch: Union[int, str] = "auto") -> Any:
    """Training batches as one endless stream of passes over ``split``.

    Pass ``p`` is ordered by :func:`pass_order` ``(seed, p)`` and cut to
    ``take_batches`` batches (smoke runs). Training reads it with a fixed
    ``steps_per_epoch`` from one iterator (as Keras's EpochIterator does when
    ``steps_per_epoch`` is given), so epoch ``e`` starts at batch ``e *
    steps_per_epoch`` whatever process runs it: a resumed run skips that many
    batches (indices only, nothing is gathered) and sees exactly the data an
    uninterrupted run would have seen.

    Args:
        split: the arrays, as for :func:`make_dataset`.
        batch_size: samples per batch (each pass's last batch may be smaller).
        shuffle: ``True`` a new full permutation per pass, an int a seeded shuffle
            buffer per pass, ``False`` the stored order.
        seed: the data-order seed (the run's seed).
        take_batches: at most this many batches per pass, or None.
        skip_batches: batches to skip from the start (``initial_epoch * steps_per_epoch``).
        outputs: the model's output names, for per-output sample weights.
        prefetch: batches prepared ahead (``runtime.prefetch``): ``"auto"`` lets
            tf.data tune it, 0 prepares none.

    Example:
        >>> ds = make_stream(split, batch_size=64, shuffle=True, seed=42, skip_batches=938)
    """
    import tensorflow as tf

    n = len(split)

    def one_pass(pass_index: Any) -> Any:
        batches = pass_order(n, shuffle=shuffle, seed=seed, pass_index=pass_index)
        batches = batches.batch(batch_size)
        return batches.take(take_batches) if take_batches is not None else batches

    indices = tf.data.Dataset.range(2**62).flat_map(one_pass)
    if skip_batches:
        indices = indices.skip(skip_batches)
    return _prefetched(_gather_batches(split, indices, outputs), prefetch)


def _prefetched(dataset: Any, prefetch: Union[int, str]) -> Any:
    """``dataset.prefetch``: ``"auto"`` is tf.data's AUTOTUNE, 0 none."""
    import tensorflow as tf

    if prefetch == 0:
        return dataset
    return dataset.prefetch(tf.data.AUTOTUNE if prefetch == "auto" else int(prefetch))


def batches_per_pass(n: int, batch_size: int, take_batches: Optional[int] = None) -> int:
    """Batches in one pass over ``n`` samples (capped at ``take_batches``)."""
    count = -(-n // batch_size)
    return min(count, take_batches) if take_batches is not None else count


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
                 initial_epoch: int = 0, outputs: Optional[list[str]] = None,
                 prefetch: Union[int, str] = "auto", cache: bool = False) -> Any:
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
        prefetch: as :func:`make_stream`.
        cache: keep the batches in memory after the first pass (``runtime.cache``);
            only for unshuffled data (validation, test), whose batches never change.

    Example:
        >>> ds = make_dataset(split, batch_size=64, shuffle=1024, seed=0, take_batches=100)
    """
    n = len(split)
    batches = _index_dataset(n, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             initial_epoch=initial_epoch)
    dataset = _gather_batches(split, batches, outputs)
    if take_batches is not None:
        dataset = dataset.take(take_batches)
    if cache and shuffle is False:
        dataset = dataset.cache()
    return _prefetched(dataset, prefetch)
