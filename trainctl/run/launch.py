"""``trainctl launch --workers N``: N local worker processes of one multi-worker run.

Each worker is ``python -m trainctl <command> ...`` with its own ``TF_CONFIG``
naming the same cluster of free loopback ports, as a Kubernetes TFJob or Vertex AI
would start one per host. Their output lines are printed prefixed with the
worker's index (``[0]`` is the chief). When one worker ends badly the others
cannot go on (every step is a collective): they are given a few seconds to fail on
their own, then terminated, then killed — a worker stuck waiting for its peers
ignores SIGTERM (docs/multi_worker_notes.md). The exit code is the chief's, or the
first failed worker's when the chief succeeded.

Example:
    >>> code = launch(2, ["fit", "configs/mnist.yaml", "--smoke"])
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Any

# Seconds the other workers get to notice a failed worker by themselves (a dead
# peer breaks their next collective within 1-9 s here), then to stop on SIGTERM.
NOTICE_SECONDS = 15.0
TERM_SECONDS = 10.0


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (the OS picks them)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(ports: list[int], index: int) -> str:
    """The TF_CONFIG of worker ``index`` in a loopback cluster on ``ports``."""
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL if the launcher dies (Linux), so no
    worker outlives a launcher that was itself killed."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Launch:
    """The running workers of one launch.

    Args:
        count: how many workers.
        argv: the trainctl command each runs (``["fit", CONFIG, ...]``).
        out, err: where their prefixed stdout and stderr lines go.
    """

    def __init__(self, count: int, argv: list[str], out: IO[str] | None = None,
                 err: IO[str] | None = None):
        self.count, self.argv = count, argv
        self.out, self.err = out or sys.stdout, err or sys.stderr
        self.procs: list[subprocess.Popen] = []
        self.readers: list[threading.Thread] = []
        self.lock = threading.Lock()
        self.run_line: str | None = None  # the chief's "run: <folder>"
        self.signalled: int | None = None

    def start(self) -> None:
        """Start every worker on a fresh loopback cluster."""
        ports = free_ports(self.count)
        for index in range(self.count):
            env = {**os.environ, "TF_CONFIG": tf_config(ports, index),
                   "PYTHONUNBUFFERED": "1"}
            proc = subprocess.Popen(
                [sys.executable, "-m", "trainctl", *self.argv], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                # its own session: a Ctrl-C reaches the launcher, which passes it on
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
            self.procs.append(proc)
            self._print(self.out, f"[launch] worker {index}: pid {proc.pid}, port {ports[index]}")
            for stream, target in ((proc.stdout, self.out), (proc.stderr, self.err)):
                reader = threading.Thread(target=self._relay, args=(index, stream, target),
                                          daemon=True)
                reader.start()
                self.readers.append(reader)

    def _print(self, target: IO[str], line: str) -> None:
        with self.lock:
            print(line, file=target, flush=True)

    def _relay(self, index: int, stream: Any, target: IO[str]) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if index == 0 and target is self.out and line.startswith("run: "):
                self.run_line = line[len("run: "):]
            self._print(target, f"[{index}] {line}")
        stream.close()

    def wait(self) -> int:
        """Wait for every worker; stop them all once one has failed; the exit code."""
        failed_at: float | None = None
        while any(p.poll() is None for p in self.procs):
            codes = [p.poll() for p in self.procs]
            if failed_at is None and (self.signalled or any(c not in (None, 0) for c in codes)):
                failed_at = time.monotonic()
                if self.signalled:  # the workers stop at their next step boundary
                    self._send(self.signalled)
            if failed_at is not None:
                waited = time.monotonic() - failed_at
                if waited > NOTICE_SECONDS + TERM_SECONDS:
                    self._send(signal.SIGKILL)
                elif waited > NOTICE_SECONDS:
                    self._send(signal.SIGTERM)
            time.sleep(0.1)
        for reader in self.readers:
            reader.join(timeout=5)
        return self.exit_code()

    def _send(self, sig: int) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def exit_code(self) -> int:
        """The chief's exit code, or the first failed worker's; 128+N for a death by signal N."""
        codes = [p.returncode if p.returncode >= 0 else 128 - p.returncode for p in self.procs]
        return codes[0] or next((c for c in codes if c), 0)

    def stop(self, sig: int) -> None:
        """A signal for the launcher: passed on to the workers (a second one kills them)."""
        if self.signalled is not None:
            self._send(signal.SIGKILL)
        self.signalled = sig


def launch(count: int, argv: list[str]) -> int:
    """Run ``trainctl <argv>`` as ``count`` workers of one cluster; return the exit code.

    Args:
        count: workers to start (>= 1).
        argv: the trainctl command line each worker runs.

    Example:
        >>> launch(2, ["fit", "configs/mnist.yaml", "--smoke"])
        0
    """
    job = Launch(count, argv)
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda signum, frame: job.stop(signum))
    try:
        job.start()
        code = job.wait()
    finally:
        job._send(signal.SIGKILL)  # none is left running, whatever happened here
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if job.run_line:
        print(job.run_line, flush=True)  # the last line, as fit's: the run folder
    return code


# What `trainctl launch` adds to the worker's --set options.
FORCE = "runtime.distribution.strategy=multi_worker"


def check_multi_worker_run(run_dir: Any) -> None:
    """``resume --workers``: the run must have been a multi-worker one.

    Raises:
        UsageError: it is not (its workers would each train alone).
    """
    from trainctl.artifacts import RunDir
    from trainctl.errors import UsageError
    from trainctl.run.reload import run_config

    run = RunDir.open(run_dir)
    strategy = run_config(run, run.read_json("run.json")).experiment.runtime.distribution.strategy
    if strategy != "multi_worker":
        raise UsageError(f"{run_dir}: --workers continues a multi_worker run, but this run's "
                         f"runtime.distribution.strategy is {strategy!r}\n  hint: resume it "
                         "without --workers")
