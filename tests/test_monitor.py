"""trainctl.run.monitor: which value a run watches, and refusing one it never logs."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from conftest import tiny_config
from trainctl.cli import cli
from trainctl.run.monitor import unknown_watched

LOGGED = ["loss", "sparse_categorical_accuracy"]


@pytest.mark.parametrize("name, expected", [
    ("val_los", "(did you mean 'val_loss'?)"),
    ("val_accuracy", "(did you mean 'val_sparse_categorical_accuracy'?)"),  # Keras 2 habit
    ("val_acc", "(did you mean 'val_sparse_categorical_accuracy'?)"),
])
def test_an_unknown_name_gets_the_nearest_logged_one_and_the_list(name, expected):
    [(key, got, why)] = unknown_watched([("fit.monitor", name)], LOGGED, has_validation=True)
    assert (key, got) == ("fit.monitor", name)
    assert f"{name!r} is not a value this run logs {expected}; it logs loss, " \
           "sparse_categorical_accuracy, val_loss, val_sparse_categorical_accuracy" == why


def test_logged_names_and_callback_logged_names_pass():
    watch = [("a", "val_loss"), ("b", "sparse_categorical_accuracy"), ("c", "learning_rate"),
             ("d", "loss_weight/out")]
    assert unknown_watched(watch, LOGGED, has_validation=True) == []


def test_a_validation_value_without_validation_data_says_so():
    [(_, _, why)] = unknown_watched([("fit.callbacks[0]", "val_loss")], LOGGED,
                                    has_validation=False)
    assert why == "'val_loss' is a validation value, and the run has no validation data " \
                  "(data.validation)"


@pytest.mark.parametrize("extra, key", [
    ("  callbacks: [{type: EarlyStopping, monitor: val_los, patience: 1}]\n",
     "fit.callbacks[0].monitor"),
    ("  monitor: val_acc\n", "fit.monitor"),
])
def test_fit_refuses_a_monitor_typo_before_the_run_folder(write_config, tmp_path, extra, key):
    text = tiny_config("typo", seed=1, epochs=1).replace(
        "fit: {epochs: 1, batch_size: 16}\n", "fit:\n  epochs: 1\n  batch_size: 16\n" + extra)
    path = write_config(text)
    result = CliRunner().invoke(cli, ["fit", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert f"{path}:17:" in result.output and f"{key}: " in result.output
    assert "is not a value this run logs (did you mean" in result.output
    assert not (tmp_path / "runs").exists()


def test_with_a_callback_of_the_users_an_unknown_name_is_a_warning(tmp_path, mnist_dir,
                                                                   monkeypatch):
    """S15's own StopAbove may log what it watches: warn, and train."""
    from conftest import ROOT

    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    result = CliRunner().invoke(cli, [
        "fit", str(ROOT / "configs/examples/s15_custom_callbacks.yaml"), "--smoke",
        "--set", "fit.callbacks[1].monitor=val_acc", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "fit.callbacks[1].monitor: 'val_acc' is not a " \
        "value this run logs (did you mean 'val_accuracy'?)" in result.stderr
    assert "(unless a callback of yours (LossHistory, StopAbove) logs it)" in result.stderr


def test_keras_defaults_count_only_where_keras_watches():
    """EarlyStopping watches val_loss by default; ModelCheckpoint only with save_best_only."""
    from types import SimpleNamespace

    from trainctl.run.monitor import watched

    def cfg(*callbacks):
        fit = SimpleNamespace(monitor=None, callbacks=list(callbacks))
        return SimpleNamespace(experiment=SimpleNamespace(fit=fit))

    assert watched(cfg("EarlyStopping")) == [("fit.callbacks[0]", "val_loss")]
    assert watched(cfg({"type": "ModelCheckpoint", "filepath": "a.keras"})) == []
    assert watched(cfg({"type": "ModelCheckpoint", "filepath": "a.keras",
                        "save_best_only": True})) == [("fit.callbacks[0]", "val_loss")]
    assert watched(cfg({"type": "ReduceLROnPlateau", "monitor": "loss"}),
                   trial_metric="val_acc") == [("fit.callbacks[0].monitor", "loss"),
                                               ("sweep.objective.metric", "val_acc")]
