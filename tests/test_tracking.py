"""runtime.tracking.mlflow: the run read back with MLflow's own client."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import tiny_config
from trainctl.cli import cli
from trainctl.config.tracking_uri import mlflow_uri_problem
from trainctl.run.tracking import HTTP_DEFAULTS, bounded_http, failure_of, params_of

pytest.importorskip("mlflow", reason="the mlflow extra: pip install 'trainctl[mlflow]'")


def fit(tmp_path: Path, tracking: str, *options: str) -> tuple[Path, str]:
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_config("tracked", seed=3, epochs=3,
                                  extra=f"runtime: {{plots: false, tracking: {tracking}}}\n"))
    result = CliRunner().invoke(cli, ["fit", str(config), "--runs-dir", str(tmp_path / "runs"),
                                      *options])
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1]), result.output


def test_a_run_is_logged_to_a_sqlite_store_beside_the_runs(tmp_path):
    from mlflow.tracking import MlflowClient

    run, _ = fit(tmp_path, "{mlflow: {experiment: tiny}}")
    recorded = json.loads((run / "run.json").read_text())["tracking"]["mlflow"]
    store = tmp_path / "runs" / "mlflow.db"
    assert store.is_file() and recorded["uri"] == f"sqlite:///{store.resolve()}"

    client = MlflowClient(tracking_uri=recorded["uri"])
    logged = client.get_run(recorded["run_id"])
    assert logged.info.status == "FINISHED" and logged.info.run_name == run.name
    assert client.get_experiment(logged.info.experiment_id).name == "tiny"
    assert logged.data.params["fit.epochs"] == "3"
    assert logged.data.params["model.layers.0.units"] == "3"  # [0] -> .0: MLflow's key rules
    assert logged.data.tags["trainctl.seed"] == "3"
    assert logged.data.tags["trainctl.status"] == "completed"

    history = json.loads((run / "history.json").read_text())
    # learning_rate: history.json's (trainctl's HistoryWriter adds it; Keras logs none)
    for key in ("loss", "val_loss", "sparse_categorical_accuracy", "learning_rate"):
        points = client.get_metric_history(recorded["run_id"], key)
        assert [p.step for p in points] == [0, 1, 2], key
        assert [p.value for p in points] == pytest.approx(history[key]), key
    metrics = json.loads((run / "metrics.json").read_text())
    assert logged.data.metrics["test_loss"] == pytest.approx(metrics["loss"])

    files = {f.path for f in client.list_artifacts(recorded["run_id"])}
    assert {"run.json", "history.csv", "model.keras", "checkpoints"} <= files
    assert ".lock" not in files  # the lock is a marker of the live process, not a result
    artifacts = Path(client.get_experiment(logged.info.experiment_id).artifact_location[7:])
    assert artifacts.parent == (tmp_path / "runs").resolve()  # beside the store, not in cwd
    # the artifact copy of run.json is the final one
    copy = Path(client.download_artifacts(recorded["run_id"], "run.json", str(tmp_path)))
    assert json.loads(copy.read_text())["status"] == "completed"


def test_a_resumed_run_continues_its_mlflow_run(tmp_path):
    """Interrupted (SIGINT in epoch 2) then resumed: one MLflow run, KILLED in between,
    then FINISHED with every epoch once."""
    from mlflow.tracking import MlflowClient

    marker = tmp_path / "marker"
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_config("tracked", seed=3, epochs=3, extra=(
        "runtime: {plots: false, tracking: {mlflow: {}}}\n"
        f"fit: {{epochs: 3, batch_size: 16, callbacks: [{{type: 'tests.plugins.pause:SignalAt', "
        f"epoch: 1, batch: 0, marker: '{marker}'}}]}}\n")).replace(
        "fit: {epochs: 3, batch_size: 16}\n", ""))
    result = CliRunner().invoke(cli, ["fit", str(config), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 130, result.output
    [run] = [p for p in (tmp_path / "runs").iterdir() if p.name.startswith("tracked")]
    recorded = json.loads((run / "run.json").read_text())["tracking"]["mlflow"]
    client = MlflowClient(tracking_uri=recorded["uri"])
    assert client.get_run(recorded["run_id"]).info.status == "KILLED"
    assert client.get_run(recorded["run_id"]).data.tags["trainctl.status"] == "interrupted"
    assert [p.step for p in client.get_metric_history(recorded["run_id"], "loss")] == [0]

    result = CliRunner().invoke(cli, ["resume", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "run.json").read_text())["tracking"]["mlflow"] == recorded
    assert client.get_run(recorded["run_id"]).info.status == "FINISHED"
    assert client.get_run(recorded["run_id"]).data.tags["trainctl.status"] == "completed"
    history = json.loads((run / "history.json").read_text())
    points = client.get_metric_history(recorded["run_id"], "loss")
    assert [p.step for p in points] == [0, 1, 2]
    assert [p.value for p in points] == pytest.approx(history["loss"])
    experiment = client.get_experiment_by_name("tracked")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def closed_port() -> int:
    with socket.socket() as sock:  # bound then closed: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_down_server_costs_seconds_and_one_readable_line(tmp_path, monkeypatch):
    """MLflow's own defaults retried for ~4 minutes and the warning was cut mid-message."""
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    run, output = fit(tmp_path, f"{{mlflow: {{uri: '{uri}'}}}}")
    assert time.monotonic() - started < 30, "the HTTP retries are not bounded"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"  # the run trains on, untracked
    line = f"MLflow tracking off for this run: cannot reach {uri} (connection refused)"
    assert [w for w in output.splitlines() if w.startswith("warning:")] == [f"warning: {line}"]
    assert info["notes"] == [line] and "tracking" not in info
    assert not any(name in os.environ for name in HTTP_DEFAULTS)  # only for trainctl's calls


def test_a_server_that_never_answers_is_given_the_users_timeout(tmp_path, monkeypatch):
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # the user's setting wins
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        run, output = fit(tmp_path, f"{{mlflow: {{uri: '{uri}'}}}}")
        assert time.monotonic() - started < 25  # 3 tries of 1 s, 2-3 s of backoff
    line = f"MLflow tracking off for this run: cannot reach {uri} (no answer within 1 s)"
    assert f"warning: {line}\n" in output
    assert json.loads((run / "run.json").read_text())["notes"] == [line]


def test_the_http_bounds_apply_only_where_the_environment_sets_none(monkeypatch):
    for name in HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    with bounded_http():
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"  # the user's wins
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
        assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT")
    with bounded_http("120"):  # the run folder's upload: MLflow's own timeout
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "120"
    assert not any(name in os.environ for name in HTTP_DEFAULTS)


def test_a_failure_is_told_in_one_whole_line():
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise RuntimeError("HTTPConnectionPool(host='h', port=9): Max retries") from exc
    except RuntimeError as exc:
        assert failure_of(exc, "http://h:9") == "cannot reach http://h:9 (connection refused)"
    told = failure_of(ValueError("a " * 400 + "\nsecond line"), "sqlite:///x.db")
    assert "\n" not in told and len(told) < 230 and told.endswith(" ...")
    assert told.startswith("ValueError: a a")


def test_a_smoke_run_is_not_tracked(tmp_path):
    """A smoke run is a check of the config: it stays out of the team's store."""
    store = tmp_path / "team" / "mlflow.db"
    run, output = fit(tmp_path, f"{{mlflow: {{uri: 'sqlite:///{store}'}}}}", "--smoke")
    assert not store.exists() and not (tmp_path / "runs" / "mlflow.db").exists()
    notes = [line for line in output.splitlines() if "MLflow" in line]
    assert notes == ["note: MLflow tracking is off at smoke size (runtime.tracking.mlflow)"]
    assert "tracking" not in json.loads((run / "run.json").read_text())


@pytest.mark.parametrize("uri", ["htp:/nowhere", "http:/nowhere", "sqlite:/x.db",
                                 "bogus-scheme://nowhere"])
def test_validate_rejects_a_uri_mlflow_cannot_use(write_config, uri):
    config = write_config(tiny_config("t", seed=1, epochs=1, extra=(
        f"runtime: {{tracking: {{mlflow: {{uri: '{uri}'}}}}}}\n")))
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2, result.output
    assert "runtime.tracking.mlflow.uri:" in result.output
    assert f"received {uri!r}" in result.output
    assert "sqlite:///" in result.output and "http(s)://host" in result.output


@pytest.mark.parametrize("uri", ["runs/mlruns", "/srv/mlruns", "file:///srv/mlruns",
                                 "sqlite:///runs/mlflow.db", "sqlite:////srv/mlflow.db",
                                 "http://mlflow:5000", "https://mlflow.example.com",
                                 "databricks", "databricks://profile", "databricks-uc",
                                 "postgresql://u:p@db/mlflow",
                                 "postgresql+psycopg2://u@db/mlflow", "mysql://db/mlflow",
                                 "mssql+pyodbc://db/mlflow"])
def test_the_uris_mlflow_accepts_pass(uri):
    assert mlflow_uri_problem(uri) is None


def test_validate_names_the_package_when_mlflow_is_missing(write_config, monkeypatch):
    config = write_config(tiny_config("t", seed=1, epochs=1,
                                      extra="runtime: {tracking: {mlflow: {}}}\n"))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlflow" else real(name, *a))
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 2, result.output
    assert "runtime.tracking.mlflow:" in result.output and "trainctl[mlflow]" in result.output


def test_params_are_the_flattened_config_under_mlflow_names():
    assert params_of({"fit": {"epochs": 2}, "model": {"layers": [{"units": 64}]},
                      "imports": []}) == {"fit.epochs": "2", "model.layers.0.units": "64",
                                          "imports": "[]"}
