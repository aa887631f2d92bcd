"""Progress on a terminal: Keras's progress bar, one epoch at a time.

Both training loops (``fit.loop: keras`` and ``custom``) run ``model.fit``-style
callbacks with ``verbose=0``; trainctl's EpochPrinter prints their progress. On a
terminal it draws this bar (as ``model.fit(verbose=1)`` would); otherwise (a CI log,
a file) it prints one line per epoch and adds no per-step work at all.

Example:
    >>> bar = TerminalBar(sys.stdout)
    >>> bar.begin(epoch=0, epochs=2, steps=100)
    >>> bar.advance(49, {"loss": 0.3})
    >>> bar.end({"loss": 0.25, "val_loss": 0.27})
"""

from __future__ import annotations

import contextlib
from typing import Any, TextIO

# Clears the terminal line the bar is on (carriage return, erase to end of line),
# so a line printed between two updates of the bar starts clean.
CLEAR_LINE = "\r\x1b[K"


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, closed streams).

    Example:
        >>> is_terminal(io.StringIO())
        False
    """
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


class TerminalBar:
    """``keras.utils.Progbar`` for each epoch, drawn on ``stream``.

    Args:
        stream: the terminal (Progbar writes to ``sys.stdout``, which is pointed at
            ``stream`` while it draws).
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.progbar: Any = None

    def begin(self, epoch: int, epochs: int, steps: int | None) -> None:
        """``Epoch 1/2`` and a new bar of ``steps`` steps (None: unknown)."""
        import keras

        print(f"Epoch {epoch + 1}/{epochs}", file=self.stream, flush=True)
        # The logs are running means already (as Keras's ProgbarLogger says): shown as is
        self.progbar = keras.utils.Progbar(target=steps, unit_name="step",
                                           stateless_metrics=set())

    def advance(self, batch: int, logs: dict | None) -> None:
        """Draw the bar after step ``batch`` (0-based; the last of a group of steps)."""
        if self.progbar is None:
            return
        with contextlib.redirect_stdout(self.stream):
            self.progbar.update(batch + 1, list((logs or {}).items()), finalize=False)

    def end(self, logs: dict | None) -> None:
        """Complete the bar with the epoch's metrics (validation ones included)."""
        if self.progbar is None:
            return
        bar, self.progbar = self.progbar, None
        if bar.target is None:
            bar.target = bar._seen_so_far  # unknown length: the steps it has seen
        with contextlib.redirect_stdout(self.stream):
            bar.update(bar.target, list((logs or {}).items()), finalize=True)
