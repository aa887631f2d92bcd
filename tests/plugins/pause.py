"""Test plug-in: hold training still at a chosen step so a test can kill the process there.

``PauseAt(epoch=1, batch=3, marker="...")`` creates ``marker`` when training
reaches that batch and then sleeps (up to ``seconds``, or until a file
``<marker>.release`` appears), once: when the marker exists already (the
resumed run) it does nothing, so the config stays the same.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras


class PauseAt(keras.callbacks.Callback):
    """Pause once at ``(epoch, batch)`` (0-based) after creating ``marker``."""

    def __init__(self, epoch: int, batch: int, marker: str, seconds: float = 120.0):
        super().__init__()
        self.at, self.marker, self.seconds = (epoch, batch), Path(marker), seconds
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at and not self.marker.exists():
            self.marker.write_text("paused\n")
            release = self.marker.with_name(self.marker.name + ".release")
            deadline = time.monotonic() + self.seconds
            while time.monotonic() < deadline and not release.exists():
                time.sleep(0.05)  # short sleeps: signals are handled between them


class SignalAt(keras.callbacks.Callback):
    """Send this process ``signal`` (a name: ``SIGINT``) once at ``(epoch, batch)``,
    the first time only (``marker`` records it), as a user pressing Ctrl-C would."""

    def __init__(self, epoch: int, batch: int, marker: str, signal: str = "SIGINT"):
        super().__init__()
        self.at, self.marker, self.signal = (epoch, batch), Path(marker), signal
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        import os
        import signal

        if (self.epoch, batch) == self.at and not self.marker.exists():
            self.marker.write_text("sent\n")
            os.kill(os.getpid(), getattr(signal, self.signal))


class SignalAtEnd(keras.callbacks.Callback):
    """Send this process ``signal`` once when training ends (after the last epoch),
    the first time only (``marker`` records it)."""

    def __init__(self, marker: str, signal: str = "SIGTERM"):
        super().__init__()
        self.marker, self.signal = Path(marker), signal

    def on_train_end(self, logs=None):
        import os
        import signal

        if not self.marker.exists():
            self.marker.write_text("sent\n")
            os.kill(os.getpid(), getattr(signal, self.signal))
