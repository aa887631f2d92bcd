"""A layer written the tf.keras 2 way, for trying trainctl's Keras 3 checks.

``MetricLoggingLayer`` is the seed's (001) layer that logs the standard
deviation of its input with ``self.add_metric``, which Keras 3 removed. A config
that uses it fails at ``trainctl validate`` with a message pointing at
trainctl's own ``LogMetric`` layer (``{type: LogMetric, fn: std,
name: std_of_activation}``), which is what configs/examples/s06_layer_metric.yaml uses.
"""

import keras
from keras import ops

import trainctl


@trainctl.register("layer")
class MetricLoggingLayer(keras.layers.Layer):
    """Seed 001: pass-through layer logging ``std(inputs)`` (tf.keras 2 only)."""

    def call(self, inputs):
        self.add_metric(ops.std(inputs), name="std_of_activation", aggregation="mean")
        return inputs
