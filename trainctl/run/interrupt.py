"""SIGINT and SIGTERM during a run: where they go and what they do.

The handlers report to a :class:`~trainctl.run.callbacks.SignalStop`: outside
training it raises :class:`~trainctl.errors.Interrupted` at once (the folder is
discarded, or the run marked interrupted); inside training it waits for the
next step boundary. ``fit`` and ``resume`` install them for their whole run.

Example:
    >>> stop = new_stop()
    >>> with stop_on_signals(stop):
    ...     run_to_end(cfg, prep, run, stop)
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator

from trainctl.errors import SignalReceived


@contextmanager
def stop_on_signals(stop: Any) -> Iterator[None]:
    """SIGINT and SIGTERM go to ``stop`` (:class:`~trainctl.run.callbacks.SignalStop`)
    for the ``with`` block: at once outside training, at the next step inside it.

    A second SIGINT while a step finishes raises KeyboardInterrupt at once (for a
    user who does not want to wait); the run is still recorded.
    """
    def handler(signum: int, frame: Any) -> None:
        if stop.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.request(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except SignalReceived as exc:  # raised where the program was; reported as Interrupted
        raise exc.interrupted from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def new_stop() -> Any:
    """A fresh :class:`~trainctl.run.callbacks.SignalStop` (imports Keras)."""
    from trainctl.run.callbacks import SignalStop

    return SignalStop()
