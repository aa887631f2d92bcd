"""Several workers, one run: who this process is, and what only the chief writes.

A multi-worker run (``runtime.distribution.strategy: multi_worker``) is one process
per worker, each told its place by the ``TF_CONFIG`` environment variable, the way
``trainctl launch``, a Kubernetes TFJob, Vertex AI or Ray Train start TensorFlow.
Every worker runs the same code, callbacks and metric reads in the same order:
reading a metric is a collective operation, so a read on one worker alone would
hang or corrupt the next step (docs/multi_worker_notes.md). Only the files differ:
the chief writes the run folder under ``runs/``, every other worker writes the same
files into a scratch folder of its own, removed when it ends (tf.distribute's rule
for saving from several workers: all save, one keeps).

Example:
    >>> me = role()                       # from TF_CONFIG
    >>> me.is_chief, me.index, me.count
    (True, 0, 2)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainctl.errors import UsageError

# Longest run-folder name the chief can share (bytes, UTF-8): names are the config's
# name, a timestamp and a 6-digit id, far below this.
_NAME_BYTES = 512


@dataclass(frozen=True)
class Role:
    """This process's place in the cluster.

    Args:
        index: 0 for the chief, then the other workers in TF_CONFIG's order.
        count: workers in the cluster (1 without TF_CONFIG).
    """

    index: int = 0
    count: int = 1

    @property
    def is_chief(self) -> bool:
        """Whether this worker writes the run folder."""
        return self.index == 0

    def __str__(self) -> str:
        # numbered as TF_CONFIG's task index and launch's [N] prefixes are: from 0
        return f"worker {self.index} of {self.count}" + (" (chief)" if self.is_chief else "")


def role(environ: dict[str, str] | None = None) -> Role:
    """This process's :class:`Role`, read from ``TF_CONFIG`` (one worker when unset).

    The chief is the ``chief`` task when the cluster has one, else ``worker`` 0, as
    tf.distribute decides.

    Raises:
        UsageError: TF_CONFIG is not JSON, or does not name this task in its cluster.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not text:
        return Role()
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"TF_CONFIG: expected JSON like {{\"cluster\": {{\"worker\": "
                         f"[\"host:port\", ...]}}, \"task\": {{\"type\": \"worker\", \"index\": "
                         f"0}}}}; received {text[:200]!r} ({type(exc).__name__}: {exc})") from None
    places = {"chief": chiefs, "worker": workers}
    if kind not in places or not 0 <= index < len(places[kind]):
        raise UsageError(f"TF_CONFIG: task {kind}:{index} is not in its cluster "
                         f"({len(chiefs)} chief, {len(workers)} workers); trainctl runs "
                         "'chief' and 'worker' tasks only")
    return Role(index=index + (len(chiefs) if kind == "worker" else 0),
                count=len(chiefs) + len(workers))


def scratch_folder(me: Role) -> Path:
    """A private folder for a non-chief worker's copy of the run files."""
    return Path(tempfile.mkdtemp(prefix=f"trainctl-worker{me.index}-"))


def remove_scratch(folder: Path | None) -> None:
    """Remove a scratch folder (best effort: it is in the system's temp folder)."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def share_name(strategy: Any, name: str | None, me: Role) -> str | None:
    """The chief's run-folder name, on every worker (None: the chief has none).

    Every worker must call this at the same point: it is a collective sum in which
    only the chief contributes, so a chief that failed to create its folder still
    takes part (with ``None``) and the others learn of it instead of waiting.
    """
    import numpy as np
    import tensorflow as tf

    data = np.zeros(_NAME_BYTES + 1, dtype=np.int32)
    if me.is_chief and name is not None:
        raw = name.encode("utf-8")[:_NAME_BYTES]
        data[0] = 1
        data[1:len(raw) + 1] = np.frombuffer(raw, dtype=np.uint8)
    total = collective_sum(strategy)(tf.constant(data)).numpy()
    copies = int(total[0])  # the chief's data once per local replica (a GPU each, say)
    if copies < 1:
        return None
    return bytes(int(b) // copies for b in total[1:] if b).decode("utf-8")


def collective_sum(strategy: Any) -> Any:
    """A ``tf.function``: this worker's tensor in, the sum over every worker's out.

    A collective: every worker must call it at the same point, in the same order.
    Make it once and call it many times (each new function traces anew).
    """
    import tensorflow as tf

    @tf.function
    def everyone_sums(mine: Any) -> Any:
        per_replica = strategy.run(tf.identity, args=(mine,))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return everyone_sums


SIGNALS = ("SIGINT", "SIGTERM")


def signal_agreement(strategy: Any) -> Any:
    """``agree(pending)``: the signal every worker stops for, given this one's (or None).

    A signal may reach one worker only (a preempted machine), or reach them between
    different steps; a worker that stopped alone would leave the others waiting in
    the next step's collective until they fail. Every worker calls ``agree`` at the
    same step boundaries (:class:`~trainctl.run.callbacks.SignalStop`), and all stop
    at the first one where any of them has a signal; SIGTERM wins over SIGINT.

    Example:
        >>> agree = signal_agreement(strategy)
        >>> agree(None)          # on worker 1, while worker 2 received SIGTERM
        'SIGTERM'
    """
    import tensorflow as tf

    everyone_sums = collective_sum(strategy)

    def agree(pending: str | None) -> str | None:
        mine = tf.constant([int(pending == name) for name in SIGNALS], dtype=tf.int32)
        total = everyone_sums(mine).numpy()  # how many (replicas of) workers had each
        return next((name for name, n in reversed(list(zip(SIGNALS, total))) if n), None)

    return agree


def weights_digest(model: Any) -> str:
    """The first 16 hex digits of the SHA-256 of the model's weights (every worker's are
    the same when they trained in step: each prints this at the end)."""
    import numpy as np

    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:16]


def peer_failure(exc: BaseException) -> str | None:
    """What to tell the user when ``exc`` is a collective that failed because another
    worker stopped or cannot be reached (None for any other error)."""
    import tensorflow as tf

    lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.AbortedError, tf.errors.CancelledError)
    if not isinstance(exc, lost):
        return None
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    detail = " ".join(lines[:2])[:300]
    return (f"another worker of this multi-worker run stopped or cannot be reached "
            f"({type(exc).__name__}: {detail})")
