"""The callbacks trainctl adds to every run: history files, divergence and signal checks,
the resumable state, epoch lines (checkpoints: :mod:`trainctl.run.checkpointer`).

Each one writes only when an epoch ends, so per-step cost is zero and
``steps_per_execution`` stays free to group steps.

Example:
    callbacks = [HistoryWriter(run), DivergenceGuard(), EpochPrinter(2)]
"""

from __future__ import annotations

import functools
import math
import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

import keras

from trainctl.artifacts import RunDir
from trainctl.run.console import format_metrics
from trainctl.run.curves import request_curves


def current_learning_rate(optimizer: Any) -> float | None:
    """The optimizer's learning rate now, schedules included (Keras 3 logs none for them)."""
    if optimizer is None:
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except Exception:  # an optimizer without a scalar learning rate
        return None


class HistoryWriter(keras.callbacks.Callback):
    """history.json and history.csv, rewritten/appended and flushed at each epoch's end.

    Args:
        run: the run directory.
        resume: carry on the run's files (already cut to the finished epochs by
            :func:`trainctl.run.resume.cut_history`) instead of starting them.
    """

    def __init__(self, run: RunDir, resume: bool = False):
        super().__init__()
        self.run = run
        self.history: dict[str, list[float]] = {}
        self.columns: list[str] | None = None
        if resume and run.file("history.json").is_file():
            self.history = run.read_json("history.json")
            with open(run.file("history.csv"), encoding="utf-8") as fh:
                self.columns = fh.readline().strip().split(",")[1:] or None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        row = {k: float(v) for k, v in (logs or {}).items()}
        if "learning_rate" not in row:
            lr = current_learning_rate(getattr(self.model, "optimizer", None))
            if lr is not None:
                row["learning_rate"] = lr
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        self.run.write_json("history.json", self.history)
        self._append_csv(epoch, row)
        if epoch + 1 == (self.params or {}).get("epochs"):
            # The last planned epoch: history.json is whole, so curves.png can be drawn
            # now, beside the last checkpoint, the model's save and the test evaluation,
            # rather than after them (a run that stops early asks in
            # trainctl.run.fit.complete; one that does not complete throws it away).
            request_curves(self.run)

    def _append_csv(self, epoch: int, row: dict[str, float]) -> None:
        path = self.run.file("history.csv")
        if self.columns is None:
            self.columns = list(row)
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(",".join(["epoch", *self.columns]) + "\n")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(",".join([str(epoch), *(repr(row.get(c, float("nan")))
                                             for c in self.columns)]) + "\n")
            fh.flush()


class Diverged(Exception):
    """The loss became NaN or infinite at ``(epoch, step)`` (both 0-based), or somewhere
    in steps ``first`` to ``step`` when they ran in one call (``steps_per_execution``:
    the loss is seen only at the end of each group of steps)."""

    def __init__(self, epoch: int, step: int, first: int | None = None):
        first = step if first is None else first
        steps = (f"step {step + 1}" if first == step else
                 f"one of steps {first + 1}-{step + 1} (run in one call: "
                 "compile.steps_per_execution; 1 finds the exact step)")
        super().__init__(f"loss became NaN or infinite at epoch {epoch + 1}, {steps}")
        self.epoch, self.step, self.first = epoch, step, first


class DivergenceGuard(keras.callbacks.Callback):
    """Stop at the first NaN or infinite loss, at once: raises :class:`Diverged` from the
    batch's end, so the broken epoch is neither validated nor written anywhere.

    ``async_safe``: Keras then runs the batch-end check in its callback thread pool
    instead of reading the loss on the training thread, which would wait for every
    step before dispatching the next (about 10% of an unbatched run's fit time);
    the exception reaches model.fit a step or two later, naming its own step.
    """

    async_safe = True

    def __init__(self):
        super().__init__()
        self.epoch, self.seen = 0, -1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch
        self.seen = -1  # the last step whose loss was finite

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise Diverged(self.epoch, batch, first=self.seen + 1)
        self.seen = batch


class SignalStop(keras.callbacks.Callback):
    """What SIGINT and SIGTERM do: stop at the next step boundary while training,
    at once otherwise.

    The signal handler calls :meth:`request`. Outside training (loading data,
    writing the run's first files, saving the model, the test evaluation) that
    raises :class:`~trainctl.errors.Interrupted` right away. While training
    (:meth:`deferred`) it only records the signal, as nothing else is safe in the
    middle of a TensorFlow step, and the next batch's end raises it, abandoning
    the epoch. The resumable state of the last finished epoch is on disk, and
    ``trainctl resume`` runs the abandoned epoch again. Its checks are ``async_safe``
    (see :class:`DivergenceGuard`), except on a multi-worker run, where every worker
    checks together (:meth:`agree_across`) and all stop at the same step.
    """

    async_safe = True

    def __init__(self):
        super().__init__()
        self.signal_name: str | None = None
        self.defer = False
        self.agree: Any = None  # see agree_across
        self.from_peer = False

    def agree_across(self, agree: Any) -> None:
        """Stop every worker of a multi-worker run at the same step boundary, also for a
        signal that only another worker received (``agree``:
        :func:`trainctl.run.workers.signal_agreement`)."""
        self.agree = agree
        # agree is a collective: it must run on the training thread, between the same
        # steps on every worker, never in Keras's thread for async_safe callbacks
        self.async_safe = False

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Signals wait for the next step boundary inside this block."""
        self.defer = True
        try:
            yield
        finally:
            self.defer = False

    def request(self, signal_name: str) -> None:
        """Called from the signal handler (outside training: raises SignalReceived, which
        no ``except Exception`` takes for a failure of the code it lands in)."""
        from trainctl.errors import SignalReceived

        self.signal_name = signal_name
        if not self.defer:
            raise SignalReceived(self.interrupted())

    def interrupted(self) -> Exception:
        """The :class:`~trainctl.errors.Interrupted` for the signal received."""
        from trainctl.errors import interrupted_by

        return interrupted_by(self.signal_name or "SIGINT",
                              " (received by another worker)" if self.from_peer else "")

    def check(self, *args: Any, **kwargs: Any) -> None:
        """Raise :class:`~trainctl.errors.Interrupted` if a signal came (on several
        workers: if any worker had one when this check began, on every worker)."""
        if self.agree is not None:  # a collective: every worker checks at the same hooks
            agreed = self.agree(self.signal_name)
            # Only the agreed answer counts: a signal that arrives during the collective
            # is this worker's alone until the next check (stopping on it now would leave
            # the others waiting in the next step).
            if agreed is None:
                return
            if self.signal_name is None:
                self.signal_name, self.from_peer = agreed, True
            raise self.interrupted()
        if self.signal_name is not None:
            raise self.interrupted()

    on_train_batch_end = on_test_batch_end = on_epoch_begin = check


class ResumableState(keras.callbacks.Callback):
    """``checkpoints/resume/`` when training starts and at every epoch's end.

    A diverged epoch never reaches its end (:class:`DivergenceGuard` raises), so
    its state is never saved.

    Args:
        run: the run directory.
        callbacks: the run's callbacks whose state is saved (by position).
        resume: restore the saved state when training begins instead of saving one.
        optimizers: restore the optimizers' state too (not when ``resume --force``
            changed the optimizer).
        writer: a :class:`~trainctl.run.writer.BackgroundWriter`: the state is copied
            here and written beside the next epoch. None: written here.
    """

    def __init__(self, run: RunDir, callbacks: list, resume: bool, optimizers: bool = True,
                 writer: Any = None):
        super().__init__()
        self.run, self.callbacks, self.resume = run, callbacks, resume
        self.optimizers, self.writer = optimizers, writer

    def on_train_begin(self, logs: dict | None = None) -> None:
        from trainctl.run.state import load_state

        if self.resume:
            load_state(self.run.path, self.model, self.callbacks,
                       restore_optimizers=self.optimizers)
        else:  # an interrupted first epoch can be resumed too
            self._save(epochs_done=0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._save(epochs_done=epoch + 1)

    def _save(self, epochs_done: int) -> None:
        from trainctl.run.state import snapshot_state, write_state

        snapshot = snapshot_state(self.model, self.callbacks, epochs_done=epochs_done)
        if self.writer is None:
            write_state(self.run.path, snapshot)
        else:
            self.writer.submit(functools.partial(write_state, self.run.path, snapshot))


class EpochPrinter(keras.callbacks.Callback):
    """Progress of both loops: one line per epoch
    (``epoch 1/2 - 3.1s - loss: 0.3412 - val_loss: 0.1893``), or on a terminal Keras's
    progress bar (``model.fit(verbose=1)``'s, :mod:`trainctl.run.progress`).

    Args:
        epochs: the total, for ``1/2``.
        stream: where to print (stdout).
    """

    def __init__(self, epochs: int, stream: Any = None):
        from trainctl.run.progress import TerminalBar, is_terminal

        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self.started = 0.0
        self.bar = TerminalBar(self.stream) if is_terminal(self.stream) else None
        if self.bar is not None:
            # A batch hook on this instance only: off a terminal the class keeps Keras's
            # no-op one, so a CI log's run does no per-step work for its progress.
            self.on_train_batch_end = self._advance

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()
        if self.bar is not None:
            self.bar.begin(epoch, self.epochs, (self.params or {}).get("steps"))

    def _advance(self, batch: int, logs: dict | None = None) -> None:
        self.bar.advance(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.bar is not None:
            self.bar.end(logs)
            return
        took = time.perf_counter() - self.started
        print(f"epoch {epoch + 1}/{self.epochs} - {took:.1f}s - {format_metrics(logs)}",
              file=self.stream, flush=True)
