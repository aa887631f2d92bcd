"""Checkpointer: ``checkpoints/last.keras`` every epoch, ``best.keras``, ``epoch-NNN.keras``.

A Keras save of the MNIST MLP takes 20-45 ms, time in which training stands
still. When nothing but the training steps changes the weights (no user callback,
no optimizer EMA: :func:`trainctl.run.assemble.weights_change_outside_steps`), the save
runs on the run's :class:`~trainctl.run.writer.BackgroundWriter` while the epoch's
validation does: the epoch's steps are over then, and the weights stay as they
are until the next epoch begins. It goes to a pending file, which becomes
``last.keras`` once the epoch's monitored value is known to be finite. An epoch
without validation saves at its end; the last one does so on the writer, during
the test evaluation.

Example:
    >>> Checkpointer(run, "val_loss", "min", keep=2, writer=BackgroundWriter.of(run))
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import keras

from trainctl.artifacts import RunDir, copy_file
from trainctl.keras_saving import save_keras

# Hidden and named "tmp": resume's sweep of a killed run's temp files removes it.
PENDING = ".last.pending.tmp.keras"


class Checkpointer(keras.callbacks.Callback):
    """``checkpoints/last.keras`` every epoch, ``best.keras`` when ``monitor`` improves,
    and with ``keep`` the newest ``keep`` epochs as ``epoch-NNN.keras`` (1-based).

    Args:
        run: the run directory.
        monitor: the logged value to compare (``val_loss``, ``loss``, ...).
        mode: ``min`` or ``max``.
        keep: epoch checkpoints to keep besides last and best (``fit.keep_checkpoints``);
            older ones are deleted.
        writer: a :class:`~trainctl.run.writer.BackgroundWriter`, given only when
            nothing but the training steps changes the weights: saves then run on it
            during validation (see the module). None: every save on this thread.
    """

    def __init__(self, run: RunDir, monitor: str, mode: str, keep: int = 0,
                 writer: Any = None):
        super().__init__()
        self.run, self.monitor, self.mode, self.keep = run, monitor, mode, keep
        self.writer = writer
        self.best: float | None = None
        self.saved_step: int | None = None  # the optimizer step last.keras holds
        self.pending = False  # a save of this epoch runs on the writer

    def holds_final(self) -> bool:
        """Whether last.keras holds the model as it is now (no step since its save)."""
        step = _optimizer_step(self.model)
        return step is not None and step == self.saved_step

    def on_test_begin(self, logs: dict | None = None) -> None:
        # Only fit's validation calls this (the run's callbacks go to no other evaluate)
        if self.writer is not None and not self.pending:
            self.writer.submit(functools.partial(save_keras, self.model,
                                                 self.run.file("checkpoints") / PENDING))
            self.pending = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        self.saved_step = None  # last.keras holds an earlier epoch until saved below
        folder = self.run.file("checkpoints")
        pending, self.pending = self.pending, False
        if pending:
            self.writer.wait()  # the save that ran beside the validation
        if value is not None and not math.isfinite(float(value)):
            (folder / PENDING).unlink(missing_ok=True)
            return  # never overwrite a good checkpoint with a diverged model
        improved = value is not None and self._improved(float(value))
        if improved:
            self.best = float(value)
        if pending:
            (folder / PENDING).replace(folder / "last.keras")
            self._copy(epoch, improved)
        elif self.writer is not None and epoch + 1 == (self.params or {}).get("epochs"):
            # the last epoch, not validated: saved during the test evaluation
            self.writer.submit(functools.partial(self._write, epoch, improved))
        else:
            self._write(epoch, improved)
        self.saved_step = _optimizer_step(self.model)

    def _write(self, epoch: int, improved: bool) -> None:
        save_keras(self.model, self.run.file("checkpoints") / "last.keras")
        self._copy(epoch, improved)

    def _copy(self, epoch: int, improved: bool) -> None:
        """best.keras and epoch-NNN.keras: copies of last.keras, not second saves."""
        folder = self.run.file("checkpoints")
        if improved:
            copy_file(folder / "last.keras", folder / "best.keras")
        if self.keep:
            copy_file(folder / "last.keras", folder / f"epoch-{epoch + 1:03d}.keras")
            self._prune(folder)

    def _prune(self, folder: Path) -> None:
        """Delete all but the newest ``keep`` epoch checkpoints (by epoch number, so
        epoch-1000 is newer than epoch-999)."""
        epochs = sorted(folder.glob("epoch-*.keras"), key=lambda p: int(p.stem[6:])
                        if p.stem[6:].isdigit() else -1)
        for old in epochs[:-self.keep]:
            old.unlink(missing_ok=True)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best


def discard_pending(run: RunDir) -> None:
    """Delete the pending save of an epoch that did not end (a stop during validation);
    call once the run's writer is done."""
    (run.file("checkpoints") / PENDING).unlink(missing_ok=True)


def _optimizer_step(model: Any) -> int | None:
    optimizer = getattr(model, "optimizer", None)
    return int(optimizer.iterations.numpy()) if optimizer is not None else None
