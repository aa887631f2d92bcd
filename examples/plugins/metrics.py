"""S5: the seed's CategoricalTruePositives metric, kept in its tf.keras 2 form.

It resets with ``reset_states()`` as seed 001 writes it. Keras 3 only calls
``reset_state()``; trainctl adapts the class when a config uses it (and prints
a warning), so the count restarts every epoch as the author meant.

Use with ``imports: [examples.plugins.metrics]`` and
``compile.metrics: [CategoricalTruePositives]``.
"""

import keras
from keras import ops

import trainctl


@trainctl.register("metric")
class CategoricalTruePositives(keras.metrics.Metric):
    """How many samples of the epoch were classified correctly (sparse labels)."""

    def __init__(self, name="categorical_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_weight(name="ctp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.reshape(ops.argmax(y_pred, axis=1), (-1, 1))
        # Keras 3 passes sparse labels as (batch,), tf.keras 2 as (batch, 1): without
        # this reshape (batch,) == (batch, 1) would broadcast to a (batch, batch) grid.
        y_true = ops.reshape(y_true, (-1, 1))
        values = ops.cast(ops.cast(y_true, "int32") == ops.cast(y_pred, "int32"), "float32")
        if sample_weight is not None:
            values = values * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        self.true_positives.assign_add(ops.sum(values))

    def result(self):
        return self.true_positives

    def reset_states(self):  # the tf.keras 2 name (seed 001); Keras 3 calls reset_state
        self.true_positives.assign(0.0)
