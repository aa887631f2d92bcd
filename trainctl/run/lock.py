"""One process at a time in a run folder: an advisory lock on ``<run>/.lock``.

``fit`` and ``resume`` hold it while they train. The operating system drops it
when the process ends, however it ends (SIGKILL included), so a crashed run can
be resumed at once while a live one cannot be resumed a second time.

Example:
    >>> with hold(run.path):
    ...     train(cfg, prep, run)
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from trainctl.errors import UsageError


@contextmanager
def hold(run_path: Path) -> Iterator[None]:
    """Hold the run's lock for the ``with`` block.

    Raises:
        UsageError: another process holds it (the run is still training).
    """
    fd = os.open(run_path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{run_path}: another trainctl process is training this run "
                             "right now; wait for it to end (or stop it) first") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock
