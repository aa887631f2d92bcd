"""runtime.tracking.mlflow: the run read back with MLflow's own client."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import tiny_config
from trainctl.cli import cli
from trainctl.run.tracking import params_of

pytest.importorskip("mlflow", reason="the mlflow extra: pip install 'trainctl[mlflow]'")


def fit(tmp_path: Path, tracking: str) -> tuple[Path, str]:
    config = tmp_path / "tiny.yaml"
    config.write_text(tiny_config("tracked", seed=3, epochs=3,
                                  extra=f"runtime: {{plots: false, tracking: {tracking}}}\n"))
    result = CliRunner().invoke(cli, ["fit", str(config), "--runs-dir", str(tmp_path / "runs")])
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

    history = json.loads((run / "history.json").read_text())
    for key in ("loss", "val_loss", "sparse_categorical_accuracy"):
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
    assert [p.step for p in client.get_metric_history(recorded["run_id"], "loss")] == [0]

    result = CliRunner().invoke(cli, ["resume", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "run.json").read_text())["tracking"]["mlflow"] == recorded
    assert client.get_run(recorded["run_id"]).info.status == "FINISHED"
    history = json.loads((run / "history.json").read_text())
    points = client.get_metric_history(recorded["run_id"], "loss")
    assert [p.step for p in points] == [0, 1, 2]
    assert [p.value for p in points] == pytest.approx(history["loss"])
    experiment = client.get_experiment_by_name("tracked")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_a_tracking_failure_never_fails_the_run(tmp_path):
    run, output = fit(tmp_path, "{mlflow: {uri: 'bogus-scheme://nowhere'}}")
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"
    assert "warning: mlflow tracking stopped" in output
    assert any(n.startswith("mlflow tracking stopped") for n in info["notes"])


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
