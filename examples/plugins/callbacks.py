"""S15: custom callbacks from the seed notes, registered for ``fit.callbacks``.

Use with ``imports: [examples.plugins.callbacks]`` and e.g.::

    fit:
      callbacks:
        - {type: LossHistory, filename: batch_losses.json}
        - {type: StopAbove, monitor: val_accuracy, threshold: 0.9}
"""

import json
import sys

import keras

import trainctl


@trainctl.register("callback")
class LossHistory(keras.callbacks.Callback):
    """Record the loss after every training batch (seed 001's LossHistory).

    Args:
        filename: where to write the list as JSON when training ends; a relative
            path lands in the run folder (trainctl resolves ``filename``). None: keep
            it in memory only (``self.losses``).
    """

    def __init__(self, filename=None):
        super().__init__()
        self.filename = filename
        self.losses = []

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))

    def on_train_end(self, logs=None):
        if self.filename:
            with open(self.filename, "w", encoding="utf-8") as f:
                json.dump(self.losses, f)


@trainctl.register("callback")
class StopAbove(keras.callbacks.Callback):
    """Stop training once a logged value passes a threshold (seed 004's CustomCallback).

    Args:
        monitor: the history key to watch, e.g. ``val_accuracy``.
        threshold: stop at the end of the first epoch where the value is above it.
    """

    def __init__(self, monitor="val_accuracy", threshold=0.9):
        super().__init__()
        self.monitor = monitor
        self.threshold = threshold
        self._warned = False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            if not self._warned:  # like EarlyStopping: say so once, keep training
                print(f"warning: StopAbove: {self.monitor!r} is not logged; available: "
                      f"{', '.join(sorted(logs))}", file=sys.stderr, flush=True)
                self._warned = True
            return
        if value > self.threshold:
            print(f"{self.monitor} {value:.4f} > {self.threshold}: stopping training",
                  flush=True)
            self.model.stop_training = True
