"""``fit.loop: custom``: trainctl's own GradientTape training loop (seed 001 §7, S16–S18).

It trains the model trainctl built and compiled with the compiled pieces used
the Keras 3 way (KERAS3_NOTES): ``model.compute_loss`` (compiled losses with
their ``loss_weights`` plus ``model.losses``, the losses layers add),
``optimizer.apply`` and ``model.compute_metrics``. It mirrors ``model.fit`` of
Keras 3.15's TensorFlow trainer: the same callback hooks through a
``keras.callbacks.CallbackList``, the same logs keys, metrics reset every epoch,
``model.stop_training`` honoured, validation every ``validation_freq`` epochs,
and the same iterators opened (so a reshuffling dataset gives the same order).
A run thus writes the artifacts of ``fit.loop: keras`` and, from the same
weights and data, the same losses. Each call of the ``tf.function`` runs up to
``model.steps_per_execution`` steps (exactly ``steps_per_epoch`` an epoch,
where Keras rounds up to a whole group) under the model's ``tf.distribute``
strategy (a no-op for the default one).

Example:
    >>> history = CustomLoop(model, log_every=200).fit(train_ds, epochs=2,
    ...                                                validation_data=val_ds)
    >>> history.history["val_loss"]
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Optional, TextIO

import keras
import tensorflow as tf

from trainctl.run.progress import CLEAR_LINE, is_terminal


class CustomLoop:
    """A GradientTape loop taking ``model.fit``'s arguments and returning its History.

    Args:
        model: a built and compiled Keras model.
        log_every: print ``step N: loss 0.1234`` (the batch's loss, as the seed's
            loop prints it) every N optimizer steps; None prints nothing.
        stream: where those lines go (stdout).

    Example:
        >>> CustomLoop(model, log_every=200).fit(ds, epochs=2, callbacks=[...])
    """

    def __init__(self, model: Any, log_every: Optional[int] = None,
                 stream: Optional[TextIO] = None):
        self.model = model
        self.log_every = log_every
        self.stream = stream
        # The strategy the model was built under (fit is called outside its scope).
        self.strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
        self.per_call = int(getattr(model, "steps_per_execution", 1) or 1)
        self.step = 0  # optimizer steps taken, for the log lines
        self._train_fn = self._test_fn = None
        if type(model).train_step is not keras.Model.train_step:
            warnings.warn(f"{type(model).__name__} overrides train_step, which fit.loop: custom "
                          "does not call (model.fit does: use fit.loop: keras)", stacklevel=2)

    def fit(self, x: Any, *, epochs: int = 1, steps_per_epoch: Optional[int] = None,
            validation_data: Any = None, validation_steps: Optional[int] = None,
            validation_freq: int = 1, class_weight: Optional[dict] = None,
            callbacks: Optional[list] = None, initial_epoch: int = 0,
            shuffle: bool = False, verbose: int = 0) -> keras.callbacks.History:
        """Train on the ``tf.data.Dataset`` ``x`` as ``model.fit`` would; return the History.

        ``shuffle`` is accepted for ``model.fit``'s signature: a dataset shuffles itself.
        """
        del shuffle
        if not isinstance(x, tf.data.Dataset):
            raise TypeError(f"the custom loop trains on a tf.data.Dataset, got {type(x).__name__}")
        model = self.model
        if class_weight:
            x = x.map(class_weight_map_fn(class_weight))
        with self.strategy.scope():
            # What fit's symbolic build does: metric, loss and optimizer state are
            # created here, under the strategy, rather than inside the traced step.
            model._symbolic_build(data_batch=x.element_spec)
        train = Batches(self._distribute(x), steps_per_epoch,
                        known_batches(x), self.per_call)
        if getattr(model, "_distribute_strategy", None) is not None:
            # Keras's fit, for a model built under a strategy, opens one iterator to
            # build it: that draws a shuffle order, so the loop draws one too.
            iter(train.dataset)
        callbacks = keras.callbacks.CallbackList(
            callbacks, add_history=True, add_progbar=verbose != 0, verbose=verbose,
            epochs=epochs, steps=train.num_batches, model=model)
        model.stop_training = False
        callbacks.on_train_begin()  # a resumed run's state is restored here
        self.step = int(model.optimizer.iterations.numpy())
        training_logs = None
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            epoch_logs = self._metrics_or(self._train_epoch(train, callbacks))
            if validation_data is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self.evaluate(validation_data, steps=validation_steps,
                                         callbacks=callbacks)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            callbacks.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if model.stop_training:
                break
        if epochs > 0:
            model.optimizer.finalize_variable_values(model.trainable_weights)  # EMA, as fit
        callbacks.on_train_end(logs=training_logs)
        return next(c for c in callbacks.callbacks if isinstance(c, keras.callbacks.History))

    def evaluate(self, dataset: Any, *, steps: Optional[int] = None,
                 callbacks: Any = None) -> dict[str, float]:
        """The model's metrics on ``dataset`` (metrics reset first), with the test hooks."""
        model = self.model
        callbacks = callbacks or keras.callbacks.CallbackList([], model=model)
        if self._test_fn is None:
            self._test_fn = self._compile(self._test_step)
        batches = Batches(self._distribute(dataset), steps,
                          known_batches(dataset), self.per_call)
        model.stop_evaluating = False
        callbacks.on_test_begin()
        model.reset_metrics()
        logs: dict = {}
        for begin, n, iterator in batches.epoch():
            callbacks.on_test_batch_begin(begin)
            try:
                logs, _, done = self._test_fn(iterator, tf.constant(n))
            except tf.errors.OutOfRangeError:
                batches.ran_out()
                break
            callbacks.on_test_batch_end(begin + int(done) - 1, logs)
            if model.stop_evaluating:
                break
        logs = {k: float(v) for k, v in self._metrics_or(logs).items()}  # as callbacks get them
        callbacks.on_test_end(logs)
        return logs

    def _distribute(self, dataset: Any) -> Any:
        """The dataset split over the strategy's replicas.

        Under several workers each global batch is split between them (tf.data's DATA
        auto-shard policy, set explicitly: AUTO would try to shard by files, find
        none in an in-memory dataset and fall back with a warning; OFF would give
        every worker every sample).
        """
        options = tf.data.Options()
        policy = tf.data.experimental.AutoShardPolicy.DATA
        options.experimental_distribute.auto_shard_policy = policy
        return self.strategy.experimental_distribute_dataset(dataset.with_options(options))

    def _train_epoch(self, train: "Batches", callbacks: Any) -> dict:
        """One epoch of steps; the last step's logs (running means, as fit's)."""
        if self._train_fn is None:
            self._train_fn = self._compile(self._train_step)
        logs: dict = {}
        for begin, n, iterator in train.epoch():
            callbacks.on_train_batch_begin(begin)
            try:
                logs, losses, done = self._train_fn(iterator, tf.constant(n))
            except tf.errors.OutOfRangeError:
                train.ran_out()
                break
            train.seen += int(done) - n  # a group cut short by the end of the data
            self._log_lines(int(done), losses)
            callbacks.on_train_batch_end(begin + int(done) - 1, logs)
            if self.model.stop_training:
                break
        return logs

    def _log_lines(self, done: int, losses: Any) -> None:
        """``step N: loss X`` for each multiple N of ``log_every`` among the steps just run
        (``losses`` holds their batch losses, the first at ``self.step + 1``)."""
        first, self.step = self.step + 1, self.step + done
        if not self.log_every:
            return
        values = None
        stream = self.stream or sys.stdout
        for number in range(-(-first // self.log_every) * self.log_every, self.step + 1,
                            self.log_every):
            values = losses.numpy() if values is None else values
            # On a terminal the line replaces the progress bar, which the next step redraws
            clear = CLEAR_LINE if is_terminal(stream) else ""
            print(f"{clear}step {number}: loss {float(values[number - first]):.4f}",
                  file=stream, flush=True)

    def _metrics_or(self, logs: dict) -> dict:
        """The metrics' results when the step logs are theirs (fit's rule), else ``logs``."""
        results = self.model.get_metrics_result()
        return dict(results) if set(results) == set(logs) else dict(logs)

    def _train_step(self, data: Any) -> tuple[dict, Any]:
        """Forward, loss (compiled + ``model.losses``), gradients, update, metrics."""
        model = self.model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                      training=True)
            scaled = model.optimizer.scale_loss(loss)  # loss_scale_factor / mixed_float16
        batch_loss = self._track_loss(x, loss)
        if model.trainable_weights:
            grads = tape.gradient(scaled, model.trainable_weights)
            model.optimizer.apply(grads, model.trainable_weights)
        return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight), batch_loss

    def _test_step(self, data: Any) -> tuple[dict, Any]:
        """Forward in inference mode, loss, metrics."""
        model = self.model
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = model(x, training=False)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                  training=False)
        batch_loss = self._track_loss(x, loss)
        return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight), batch_loss

    def _track_loss(self, x: Any, loss: Any) -> Any:
        """Update the compiled ``loss`` tracker, weighted by the batch's size, as fit does.

        Under a strategy each replica's loss is divided by the replica count (so
        gradients sum to the mean); the tracker gets the undivided value.
        """
        replicas = self.strategy.num_replicas_in_sync
        unscaled = loss * tf.cast(replicas, loss.dtype) if replicas > 1 else loss
        tracker = next((m for m in self.model.metrics if m.name == "loss"), None)
        if tracker is not None:
            first = next(t for t in tf.nest.flatten(x) if t is not None)
            tracker.update_state(unscaled, sample_weight=tf.shape(first)[0])
        return loss

    def _compile(self, step: Any) -> Any:
        """``step`` as a ``tf.function`` running up to ``n`` steps per call.

        Returns ``fn(iterator, n) -> (logs, losses, steps_done)``: ``losses`` holds
        each step's batch loss when ``log_every`` is set (so the log lines fall on
        exact multiples whatever the group size), else the last one. An iterator
        with no batch left raises ``tf.errors.OutOfRangeError``.

        Built as Keras builds its train function: the step is a nested
        ``tf.function`` (traced once, called in a ``tf.while_loop``) and nothing is
        converted by AutoGraph, whose conversion of Keras's internals would make
        the first call (the trace) cost about a second more than ``model.fit``'s.
        """
        strategy = self.strategy
        every_loss = bool(self.log_every)

        @tf.autograph.experimental.do_not_convert
        def one(data):
            logs, loss = strategy.run(step, args=(data,))
            return reduce_replicas(strategy, logs, "MEAN"), reduce_replicas(strategy, loss, "SUM")

        one = tf.function(one, reduce_retracing=True,
                          jit_compile=bool(self.model.jit_compile)
                          and strategy.num_replicas_in_sync == 1)

        def run(iterator, n):
            logs, loss = one(iterator.get_next())
            losses = tf.TensorArray(loss.dtype, size=0, dynamic_size=True).write(0, loss) \
                if every_loss else loss
            if self.per_call == 1:  # decided at trace time: no loop for one step a call
                return logs, _stack(losses), tf.constant(1)

            # As Keras's loop: the step is unconditional in the body and the next batch
            # is fetched (as an Optional) only while steps remain, so a group never
            # takes a batch it does not run. A step inside a tf.cond per iteration
            # costs ~10% more per step.
            def cond(done, logs, losses, batch):
                return tf.logical_and(done < n, batch.has_value())

            def body(done, logs, losses, batch):
                logs, loss = one(batch.get_value())
                losses = losses.write(done, loss) if every_loss else loss
                batch = tf.cond(done + 1 < n, iterator.get_next_as_optional, lambda: batch)
                return done + 1, logs, losses, batch

            batch = tf.cond(n > 1, iterator.get_next_as_optional,
                            lambda: tf.experimental.Optional.empty(iterator.element_spec))
            done, logs, losses, _ = tf.while_loop(
                cond, body, (tf.constant(1), logs, losses, batch))
            return logs, _stack(losses), done

        return tf.function(run, reduce_retracing=True, autograph=False)


def _stack(losses: Any) -> Any:
    return losses.stack() if isinstance(losses, tf.TensorArray) else losses


class Batches:
    """The data walked as Keras's EpochIterator walks it.

    Without ``steps`` every epoch opens a new iterator and runs to its end; with
    ``steps`` one iterator carries on across epochs (a repeated dataset), opened
    again when a finite dataset is used up.

    Args:
        dataset: the (distributed) dataset.
        steps: steps per epoch, or None for one pass.
        cardinality: the dataset's number of batches when finite and known.
    """

    def __init__(self, dataset: Any, steps: Optional[int], cardinality: Optional[int],
                 per_call: int = 1):
        self.dataset, self.steps, self.cardinality = dataset, steps, cardinality
        self.per_call = per_call
        self.iterator: Any = None
        self.seen = 0  # batches taken from the current iterator

    @property
    def num_batches(self) -> Optional[int]:
        """Steps in an epoch when known (CallbackList's ``steps`` parameter)."""
        return self.steps or self.cardinality

    def epoch(self) -> Any:
        """Yield ``(first step, steps to run, iterator)`` for each call of the step function."""
        if self.iterator is None or self.steps is None or self._used_up():
            self.iterator, self.seen = iter(self.dataset), 0
        step = 0
        while self.steps is None or step < self.steps:
            n = self.per_call if self.steps is None else min(self.per_call, self.steps - step)
            if self.cardinality is not None:
                n = min(n, self.cardinality - self.seen)
                if n <= 0:
                    self._warn()
                    break
            self.seen += n
            yield step, n, self.iterator
            step += n
        if self._used_up():
            # Keras opens the next iterator as soon as one is used up; with a
            # reshuffling dataset that draws the next order, so doing the same keeps
            # the epochs' data order (and the results) identical to model.fit's.
            self.iterator, self.seen = iter(self.dataset), 0

    def ran_out(self) -> None:
        """The iterator ended: the epoch is over; the next one opens a new iterator."""
        self._warn()
        self.iterator = None

    def _used_up(self) -> bool:
        return self.cardinality is not None and self.seen >= self.cardinality

    def _warn(self) -> None:
        """Keras's warning when ``steps_per_epoch`` asks for more batches than the data has."""
        if self.steps:
            warnings.warn("Your input ran out of data; interrupting training. Make sure that "
                          "your dataset can generate at least `steps_per_epoch * epochs` "
                          "batches (dataset.repeat()).", stacklevel=3)


def known_batches(dataset: Any) -> Optional[int]:
    """The number of batches of a finite dataset, or None (infinite or unknown)."""
    count = int(dataset.cardinality())
    return count if count >= 0 else None


def reduce_replicas(strategy: Any, values: Any, op: str) -> Any:
    """Per-replica values as one (``MEAN`` or ``SUM``) over every replica of every worker.

    Plain tensors pass through, except under several workers: a worker with one
    replica gets its own share back from ``strategy.run`` as a plain tensor, which
    ``strategy.reduce`` then combines with the other workers' shares.
    """
    across_workers = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)

    def reduce(value: Any) -> Any:
        if isinstance(value, tf.distribute.DistributedValues) or across_workers:
            return strategy.reduce(op, value, axis=None)
        return value

    return tf.nest.map_structure(reduce, values)


def class_weight_map_fn(class_weight: dict) -> Any:
    """A ``Dataset.map`` function adding per-sample weights from the class of each label.

    As Keras's own: sparse labels (rank 1, or a last axis of 1) are rounded to
    class ids, one-hot labels are argmax-ed; one output only, and not together
    with sample weights already in the data.

    Example:
        >>> ds = ds.map(class_weight_map_fn({0: 1.0, 1: 1.0, 5: 2.0}))
    """
    table = tf.constant([float(class_weight.get(c, 1.0)) for c in range(max(class_weight) + 1)])

    def add_weights(*data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("class_weight and sample weights cannot be used together")
        if tf.nest.is_nested(y):
            raise ValueError("class_weight is only supported for models with a single output")
        if y.shape.rank >= 2 and y.shape[-1] != 1:
            classes = tf.argmax(y, axis=-1, output_type=tf.int32)
        else:
            classes = tf.cast(tf.round(tf.reshape(y, tf.shape(y)[:1])), tf.int32)
        return x, y, tf.gather(table, classes)

    return add_weights
