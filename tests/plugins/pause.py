"""Test plug-ins: act once at a chosen step, so a test can kill or signal a run there.

``PauseAt(epoch=1, batch=3, marker="...")`` creates ``marker`` when training
reaches that batch and then sleeps (up to ``seconds``, or until a file
``<marker>.release`` appears). ``SignalAt`` sends the process a signal there,
``SignalAtEnd`` when training ends. Each acts once: when the marker exists
already (the resumed run) it does nothing, so the config stays the same.
"""

from __future__ import annotations

import os
import signal as signals
import time
from pathlib import Path

import keras


class _Once(keras.callbacks.Callback):
    """Calls :meth:`act` once, at ``(epoch, batch)`` (0-based), unless ``marker`` exists."""

    def __init__(self, epoch: int, batch: int, marker: str):
        super().__init__()
        self.at, self.marker = (epoch, batch), Path(marker)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at and not self.marker.exists():
            self.act()

    def act(self) -> None:
        raise NotImplementedError


class PauseAt(_Once):
    """Pause once at ``(epoch, batch)`` after creating ``marker``."""

    def __init__(self, epoch: int, batch: int, marker: str, seconds: float = 120.0):
        super().__init__(epoch, batch, marker)
        self.seconds = seconds

    def act(self) -> None:
        from trainctl.run.writer import wait_for_writes

        wait_for_writes()  # the finished epochs' state on disk before a kill can come
        self.marker.write_text("paused\n")
        release = self.marker.with_name(self.marker.name + ".release")
        deadline = time.monotonic() + self.seconds
        while time.monotonic() < deadline and not release.exists():
            time.sleep(0.05)  # short sleeps: signals are handled between them


class SignalAt(_Once):
    """Send this process ``signal`` (a name: ``SIGINT``) once at ``(epoch, batch)``,
    as a user pressing Ctrl-C would."""

    def __init__(self, epoch: int, batch: int, marker: str, signal: str = "SIGINT"):
        super().__init__(epoch, batch, marker)
        self.signal = signal

    def act(self) -> None:
        self.marker.write_text("sent\n")
        os.kill(os.getpid(), getattr(signals, self.signal))


class SignalAtEnd(SignalAt):
    """Send this process ``signal`` once when training ends (after the last epoch)."""

    def __init__(self, marker: str, signal: str = "SIGTERM"):
        super().__init__(-1, -1, marker, signal)

    def on_train_end(self, logs=None):
        if not self.marker.exists():
            self.act()


class SignalInCall(keras.layers.Layer):
    """An identity layer that sends this process ``signal`` when it is called, so the
    signal lands inside the code that builds the model (a Ctrl-C at start-up)."""

    def __init__(self, signal: str = "SIGINT", **kwargs):
        super().__init__(**kwargs)
        self.signal = signal

    def call(self, x):
        os.kill(os.getpid(), getattr(signals, self.signal))
        return x
