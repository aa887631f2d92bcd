"""Run files written on a thread beside the training: the resumable state, the last save.

Writing ``checkpoints/resume/`` takes 10-20 ms an epoch for the MNIST MLP, time in
which the training thread would otherwise stand still. Its values are copied on the
training thread (a few ms, so the files hold exactly the epoch that ended) and the
files are written here while the next epoch runs; the last epoch's ``last.keras``
and ``model.keras`` are written while the test split is evaluated. Every file is
still written through a temp file and a rename, so a kill at any moment leaves the
previous version or the new one. What a SIGKILL can cost is the state of an epoch
whose writes had not finished: ``trainctl resume`` then runs that epoch again.

Jobs run one at a time, in the order given. The writer sits in ``run.background``:
:func:`trainctl.run.start.settle` waits for it when the run ends, however it ends.

Example:
    >>> writer = BackgroundWriter.of(run)
    >>> writer.submit(functools.partial(write_state, run.path, snapshot))
    >>> writer.wait()          # raises the first job's error, if any
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

from trainctl.run.timing import add

# Jobs that may wait at once: each holds a copy of the model's variables.
LIMIT = 2

_live: "weakref.WeakSet[BackgroundWriter]" = weakref.WeakSet()


def wait_for_writes() -> None:
    """Return once every writer of this process has done what it was given (errors stay
    with their run). Tests that kill a run at a chosen step call it first, so that the
    epochs finished before that step are on disk, as they mean."""
    for writer in list(_live):
        writer._jobs.join()


class BackgroundWriter:
    """Runs file-writing jobs in order on one daemon thread.

    Args:
        limit: jobs submitted and not yet done at most; :meth:`submit` waits for a
            free place (bounding the memory of the snapshots the jobs hold).
    """

    def __init__(self, limit: int = LIMIT):
        self._jobs: queue.Queue = queue.Queue()
        self._places = threading.BoundedSemaphore(limit)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        _live.add(self)

    @classmethod
    def of(cls, run: Any) -> "BackgroundWriter":
        """The writer of ``run`` (a :class:`~trainctl.artifacts.RunDir`), made on first use."""
        writer = cls.attached(run)
        if writer is None:
            writer = cls()
            run.background.append(writer)
        return writer

    @classmethod
    def attached(cls, run: Any) -> "BackgroundWriter | None":
        """The writer of ``run`` if it has one."""
        return next((item for item in run.background if isinstance(item, cls)), None)

    def submit(self, job: Callable[[], Any]) -> None:
        """Run ``job()`` after the jobs before it; raises an earlier job's error first."""
        self.raise_error()
        self._places.acquire()
        if self._thread is None:
            # a daemon: a process that dies in the middle must not hang on it; every
            # way a run ends waits for it first (settle)
            self._thread = threading.Thread(target=self._work, name="trainctl-writer",
                                            daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def wait(self) -> None:
        """Return once every submitted job is done; raise the first one's error."""
        self._jobs.join()
        self.raise_error()

    def raise_error(self) -> None:
        """Raise (once) the error of a job that failed."""
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Wait for the jobs and end the thread (a later submit starts a new one)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:  # close()
                self._jobs.task_done()
                return
            started = time.perf_counter()
            try:
                if self._error is None:  # after a failure the rest are skipped
                    job()
            except BaseException as exc:  # noqa: BLE001 - handed to the training thread
                self._error = exc
            finally:
                # run.json's timings.background: this thread's work, beside the training
                # (not in timings.own, which is the time the training waits for trainctl)
                add("background", time.perf_counter() - started)
                self._jobs.task_done()
                self._places.release()

    # The interface of run.background (trainctl.run.start.settle, stop_background)
    def collect(self, run_path: Path, timeout: float) -> str | None:
        """Wait for every job (``timeout`` is not applied: a file half written is worse
        than a wait); a note when one failed."""
        try:
            self.wait()
        except Exception as exc:  # noqa: BLE001 - the run's status is written anyway
            return f"writing the run's files failed: {type(exc).__name__}: {exc}"
        finally:
            self.close()  # one idle thread per run would pile up in smoke and tests
        return None

    def stop(self) -> None:
        """Wait for the jobs (the run folder is being discarded: nothing else to do)."""
        self.collect(Path(), 0.0)
