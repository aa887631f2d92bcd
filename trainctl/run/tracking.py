"""``runtime.tracking.mlflow``: a run's config, epochs, test metrics and files in MLflow.

The optional extra ``trainctl[mlflow]`` (mlflow-skinny, with SQLAlchemy and alembic
for its SQLite store). By default the tracking store is ``<runs folder>/mlflow.db``
and artifacts go beside it (``<runs folder>/mlartifacts/``), so nothing lands in the
user's working directory; ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``
shows the runs. One MLflow run per trainctl run: the flattened config as params,
every epoch's logs with ``step`` = the epoch (0-based, as history.csv), the test
metrics as ``test_<name>``, and the run folder as artifacts when the run ends. Tags:
``trainctl.run_dir``, ``trainctl.seed`` and ``trainctl.status`` (``running``, then the
run's final status). A resumed run continues its MLflow run (its id is in run.json).
Smoke runs are not tracked (trainctl.run.assemble).

Tracking never costs the run its result: when MLflow fails (a server that is down,
a bad URI), trainctl prints a one-line warning, notes it in run.json, and trains on.
MLflow's HTTP retries default to ~4 minutes a request; unless the user's environment
sets them, trainctl's calls use :data:`HTTP_DEFAULTS` (a refused connection then
costs ~3 s, a server that never answers ~35 s).

Example:
    callbacks.append(MlflowTracker(run, exp.runtime.tracking.mlflow, exp))  # assemble
    notes = close_tracking(run, "completed")                                # finish
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import keras

from trainctl.artifacts import RunDir
from trainctl.status import FINISHED

# MLflow's parameter names take letters, digits, _ - . space : and /
_INDEX = str.maketrans({"[": ".", "]": None})
_PARAM_BATCH = 100  # MLflow's limit of params per log_batch
_VALUE_LIMIT = 6000  # MLflow's limit on a param value's length

# MLflow's HTTP settings (mlflow.environment_variables) for trainctl's calls, where the
# environment does not set them: 2 retries (2-3 s of backoff), 10 s per connect/read.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
# Uploading the run folder keeps MLflow's own 120 s: a server may answer a large
# model.keras only once it has stored it (it answered every epoch, so it is up).
_UPLOAD_TIMEOUT = "120"

# The open tracker of each run folder (resolved path): started by the callback,
# closed by trainctl.run.fit.finish, which only knows the run.
_open: dict[Path, "MlflowTracker"] = {}


def default_uri(run: RunDir) -> str:
    """``sqlite:///<runs folder>/mlflow.db``: the store beside the run folders."""
    return f"sqlite:///{(run.shown.parent / 'mlflow.db').resolve()}"


@contextlib.contextmanager
def bounded_http(timeout: str = HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]):
    """:data:`HTTP_DEFAULTS` (with ``timeout``) in the environment for the block, each
    only where unset."""
    values = {**HTTP_DEFAULTS, "MLFLOW_HTTP_REQUEST_TIMEOUT": timeout}
    added = [name for name in values if name not in os.environ]
    for name in added:
        os.environ[name] = values[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def failure_of(exc: BaseException, uri: str, timeout: str = "?") -> str:
    """One line saying why an MLflow call failed: ``cannot reach URI (connection refused)``
    for a server that is down (``timeout``: the seconds it was given to answer), else the
    error's type and its message folded to one line.

    Example:
        >>> failure_of(ConnectionRefusedError(111, "Connection refused"), "http://h:9")
        'cannot reach http://h:9 (connection refused)'
    """
    import socket

    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:  # MLflow wraps requests wraps urllib3
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
        exc = exc if isinstance(exc, BaseException) else None
    names = {type(e).__name__ for e in chain}
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"cannot reach {uri} (connection refused)"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"cannot reach {uri} (host not found)"
    if names & {"ConnectTimeoutError", "ConnectTimeout", "ReadTimeoutError", "ReadTimeout",
                "Timeout", "TimeoutError", "timeout"}:
        return f"cannot reach {uri} (no answer within {timeout} s)"
    if names & {"ConnectionError", "NewConnectionError", "MaxRetryError"}:
        return f"cannot reach {uri} ({type(chain[-1]).__name__})"
    text = " ".join(str(chain[0]).split())
    if len(text) > 200:
        text = text[:200].rsplit(" ", 1)[0] + " ..."
    return f"{type(chain[0]).__name__}: {text}" if text else type(chain[0]).__name__


def params_of(raw: dict) -> dict[str, str]:
    """The config flattened to MLflow params: ``model.layers.0.units: "64"``.

    Example:
        >>> params_of({"fit": {"epochs": 2}, "model": {"layers": [{"units": 64}]}})
        {'fit.epochs': '2', 'model.layers.0.units': '64'}
    """
    from trainctl.run.resume import flatten

    return {key.translate(_INDEX): str(value)[:_VALUE_LIMIT]
            for key, value in flatten(raw).items() if key}


class MlflowTracker(keras.callbacks.Callback):
    """Logs the run to MLflow: opened when training begins, each epoch at its end.

    Args:
        run: the run folder.
        settings: ``runtime.tracking.mlflow`` (``uri``, ``experiment``).
        raw: the resolved config (its params).
        experiment: the experiment name when ``settings`` gives none (the run's name).
    """

    def __init__(self, run: RunDir, settings: Any, raw: dict, experiment: str):
        super().__init__()
        self.run, self.raw = run, raw
        self.uri = settings.uri or default_uri(run)
        self.experiment = settings.experiment or experiment
        self.client: Any = None
        self.run_id: str | None = None
        self.note: str | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._guard("open the MLflow run", self._open)
        _open[self.run.path.resolve()] = self

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.client is None:
            return
        logs = logs or {}
        if "learning_rate" not in logs:  # history.json's, when Keras logs none (a schedule)
            from trainctl.run.callbacks import current_learning_rate

            rate = current_learning_rate(getattr(self.model, "optimizer", None))
            logs = logs if rate is None else {**logs, "learning_rate": rate}
        self._guard(f"log epoch {epoch + 1}", lambda: self._metrics(logs, step=epoch))

    def _open(self) -> None:
        from mlflow.tracking import MlflowClient

        # after the import, which sets mlflow's logger to INFO: its table-creation lines
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)

        if self.uri.startswith("sqlite:///"):
            Path(self.uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=self.uri)
        info = self.run.read_json("run.json")
        recorded = (info.get("tracking") or {}).get("mlflow") or {}
        if recorded.get("run_id") and recorded.get("uri") == self.uri:  # a resumed run
            self.run_id = recorded["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            self.client.set_tag(self.run_id, "trainctl.status", "running")
            return
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found is not None else \
            self.client.create_experiment(self.experiment, artifact_location=self._artifacts())
        self.run_id = self.client.create_run(
            experiment_id, run_name=self.run.shown.name,
            tags={"trainctl.run_dir": str(self.run.shown.resolve()),
                  "trainctl.seed": str(info.get("seed")),
                  "trainctl.status": "running"}).info.run_id
        self._params()
        self.run.update_run(tracking={"mlflow": {"uri": self.uri, "experiment": self.experiment,
                                                 "run_id": self.run_id}})
        print(f"mlflow: run {self.run_id} in experiment {self.experiment!r} ({self.uri})",
              flush=True)

    def _artifacts(self) -> str | None:
        """Artifacts beside a local SQLite store; a server's URI keeps its own default."""
        if not self.uri.startswith("sqlite:///"):
            return None
        return (Path(self.uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()

    def _params(self) -> None:
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in params_of(self.raw).items()]
        for start in range(0, len(params), _PARAM_BATCH):
            self.client.log_batch(self.run_id, params=params[start:start + _PARAM_BATCH])

    def _metrics(self, values: dict, *, step: int, prefix: str = "") -> None:
        from mlflow.entities import Metric

        if self.client is None:
            return
        now = int(time.time() * 1000)
        metrics = [Metric(f"{prefix}{k}", float(v), now, step) for k, v in values.items()
                   if isinstance(v, (int, float)) and math.isfinite(float(v))]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def close(self, status: str) -> None:
        """Log the test metrics and the run folder (a completed run), then end the MLflow
        run with the matching status."""
        if self.client is None:
            return
        if status in FINISHED:  # a pruned trial ran to its end too
            def finish_logging() -> None:
                metrics = self.run.file("metrics.json")
                if metrics.is_file():
                    done = len(next(iter(self.run.read_json("history.json").values()), []))
                    self._metrics(self.run.read_json("metrics.json"), step=done, prefix="test_")
                self._log_folder()

            self._guard("log the test metrics and the run folder", finish_logging,
                        timeout=_UPLOAD_TIMEOUT)
        state = {"completed": "FINISHED", "pruned": "FINISHED",
                 "interrupted": "KILLED"}.get(status, "FAILED")

        def end() -> None:
            self.client.set_tag(self.run_id, "trainctl.status", status)
            self.client.set_terminated(self.run_id, state)

        self._guard("end the MLflow run", end)

    def _log_folder(self) -> None:
        """The run folder as artifacts, without its lock file (an empty marker, not a result)."""
        for entry in sorted(self.run.path.iterdir()):
            if entry.name == ".lock":
                continue
            if entry.is_dir():
                self.client.log_artifacts(self.run_id, str(entry), artifact_path=entry.name)
            else:
                self.client.log_artifact(self.run_id, str(entry))

    def _guard(self, what: str, action: Any,
               timeout: str = HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]) -> None:
        """Run ``action`` (MLflow's HTTP bounded); on failure warn once in one line and stop
        tracking (the run goes on)."""
        if self.note is not None:
            return
        try:
            with bounded_http(timeout):
                action()
        except Exception as exc:  # noqa: BLE001 - any MLflow/SQL/network error
            failure = failure_of(exc, self.uri,
                                 os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", timeout))
            if self.run_id is not None or not failure.startswith("cannot reach"):
                failure = f"could not {what}: {failure}"
            self.note = f"MLflow tracking off for this run: {failure}"
            self.client = None
            print(f"warning: {self.note}", file=sys.stderr, flush=True)


def close_tracking(run: RunDir, status: str) -> list[str]:
    """End ``run``'s MLflow run (if it has one) for its final ``status``; notes for run.json.

    Example:
        >>> close_tracking(run, "completed")
        []
    """
    tracker = _open.pop(run.path.resolve(), None)
    if tracker is None:
        return []
    tracker.close(status)
    return [tracker.note] if tracker.note else []
