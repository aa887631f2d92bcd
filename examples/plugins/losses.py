"""Custom losses from the seed notes (S3, S4), registered for configs by name.

Use with ``imports: [examples.plugins.losses]`` and one-hot targets
(``data.targets: [{one_hot: 10}]``), then ``compile.loss: custom_mean_squared_error``
or ``compile.loss: {type: CustomMSE, regularization_factor: 0.1}``.
"""

import keras
from keras import ops

import trainctl


@trainctl.register("loss")
def custom_mean_squared_error(y_true, y_pred):
    """S3: a loss given as a plain function of ``(y_true, y_pred)``."""
    return ops.mean(ops.square(y_true - y_pred))


@trainctl.register("loss")
class CustomMSE(keras.losses.Loss):
    """S4: mean squared error plus a term pushing predictions away from 0.5.

    Args:
        regularization_factor: weight of the ``mean((0.5 - y_pred)**2)`` term.
        name: the loss's name.
        **kwargs: Keras Loss arguments (``reduction``, ``dtype``), so the loss
            also round-trips through its ``get_config``.
    """

    def __init__(self, regularization_factor=0.1, name="custom_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.regularization_factor = regularization_factor

    def call(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_true - y_pred))
        reg = ops.mean(ops.square(0.5 - y_pred))
        return mse + reg * self.regularization_factor

    def get_config(self):
        return {**super().get_config(), "regularization_factor": self.regularization_factor}
