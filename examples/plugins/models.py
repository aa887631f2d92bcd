"""Model classes from the seed notes (004 §2-3), written for Keras 3.

- :class:`CustomModel` (S19): a Model overriding ``train_step``, used by
  ``model.fit``. Seed 004 wrote it with ``self.compiled_loss`` /
  ``self.compiled_metrics``, which Keras 3 runs but logs a wrong loss with
  (KERAS3_NOTES); trainctl refuses that form, and this is the Keras 3 way.
- :class:`MyDenseLayer` and :class:`MyModel` (S20): a layer making its weights in
  ``build`` with ``add_weight``, and a subclassed model using it.
- :func:`mnist_reconstruction` (S22 autoencoder): MNIST with the images as the
  targets too, found where the ``mnist`` source finds it.

Every class has ``get_config`` so a run's ``model.keras`` loads back in
``trainctl evaluate`` / ``predict`` (reload passes registered classes to Keras).

Example (YAML)::

    imports: [examples.plugins.models]
    model: {type: MyModel, args: {hidden: 64, classes: 10}, inputs: {digits: {shape: [784]}}}
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

import trainctl


@trainctl.register("model")
class CustomModel(keras.Model):
    """Seed 004's Model with its own ``train_step``, in the Keras 3 form.

    It does what the built-in step does, so ``fit`` logs the same loss and
    metrics as a plain model would: the loss from ``compute_loss`` (compiled
    losses, loss weights, sample weights and ``self.losses``), the loss tracker
    weighted by the batch size, the compiled metrics updated with ``y, y_pred``.
    """

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                     training=True)
            # under mixed_float16 the optimizer is a LossScaleOptimizer: scale before grads
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        batch = ops.shape(keras.tree.flatten(x)[0])[0]
        # compute_loss divides by the replica count under a strategy; log the true loss
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss * replicas, sample_weight=batch)
            else:
                metric.update_state(y, y_pred, sample_weight=sample_weight)
        return self.get_metrics_result()


@trainctl.register("layer")
class MyDenseLayer(keras.layers.Layer):
    """Seed 004's dense layer: ``inputs @ w + b``, weights made in ``build``.

    Args:
        units: output size.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", name="kernel")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@trainctl.register("model")
class MyModel(keras.Model):
    """Seed 004's subclassed model: ``MyDenseLayer(hidden)``, relu, ``Dense(classes)``.

    Args:
        hidden: units of the first layer (the seed: 64).
        classes: units of the output layer (the seed: 10).
        activation: of the output layer; the seed's None gives logits (then the
            loss needs ``from_logits: true``).
    """

    def __init__(self, hidden: int = 64, classes: int = 10, activation: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.classes, self.activation = hidden, classes, activation
        self.dense1 = MyDenseLayer(hidden, name="my_dense")
        # float32 output: a softmax under a mixed precision policy stays numerically safe
        self.dense2 = keras.layers.Dense(classes, activation=activation, dtype="float32",
                                         name="predictions")

    def call(self, inputs):
        return self.dense2(ops.relu(self.dense1(inputs)))

    def get_config(self):
        # Keras 3 cannot infer a subclassed model's arguments: without this a saved
        # model.keras reloads with the defaults and its weights fail to load
        return {**super().get_config(), "hidden": self.hidden, "classes": self.classes,
                "activation": self.activation}


@trainctl.register("dataset")
def mnist_reconstruction(ctx, *, limit: int | None = None):
    """MNIST images as features and targets (an autoencoder learns to reconstruct them).

    Found where the built-in ``mnist`` source looks (``data.path``,
    ``$TRAINCTL_DATA_DIR``, Keras's cache). ``data.features`` and ``data.targets``
    then apply to each side: give both the same transforms.

    Args:
        limit: keep only the first ``limit`` training and test images.
    """
    from trainctl.data.base import RawData, SOURCES
    from trainctl.data.types import Split

    raw = SOURCES["mnist"](ctx)
    cut = slice(None, limit)

    def images(split):
        return Split(split.x[cut], split.x[cut])

    return RawData(train=images(raw.train), test=images(raw.test), files=raw.files)


mnist_reconstruction.trainctl_source = True  # takes trainctl's SourceContext, like `mnist`
