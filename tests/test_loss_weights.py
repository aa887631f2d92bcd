"""S26: per-output loss weights that change by epoch, in both loops, across a resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli
from trainctl.config.loss_weights import check, value_at
from trainctl.errors import Location

EXAMPLE = ROOT / "configs" / "examples" / "s26_loss_weight_ramp.yaml"
RAMP = {"ramp": {"from": 0.0, "to": 1.0, "first_epoch": 0, "last_epoch": 2}}
# a user callback that interrupts the run once, when its third epoch begins
STOP_ONCE = '''
import keras
from pathlib import Path

class StopOnce(keras.callbacks.Callback):
    def __init__(self, marker, epoch):
        super().__init__()
        self.marker, self.epoch = Path(marker), epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch and not self.marker.exists():
            self.marker.touch()
            raise KeyboardInterrupt
'''


def locate(key: str) -> Location:
    return Location("c.yaml", 1, 1)


def test_each_form_gives_the_weight_of_each_epoch():
    assert [value_at(RAMP, e) for e in range(4)] == [0.0, 0.5, 1.0, 1.0]
    late = {"ramp": {"from": 1.0, "to": 0.0, "first_epoch": 2, "last_epoch": 6}}
    assert [value_at(late, e) for e in (0, 2, 4, 6, 9)] == [1.0, 1.0, 0.5, 0.0, 0.0]
    steps = {"piecewise": {"boundaries": [2, 4], "values": [0.0, 0.5, 1.0]}}
    assert [value_at(steps, e) for e in range(6)] == [0.0, 0.0, 0.5, 0.5, 1.0, 1.0]
    assert value_at({"function": "m:f"}, 3, lambda epoch: epoch / 10) == 0.3
    assert value_at(2, 7) == 2.0


@pytest.mark.parametrize("value, key, words", [
    ({"ramp": {"from": 0, "to": 1, "first_epoch": 3, "last_epoch": 1}}, "ramp.last_epoch",
     "must come after first_epoch 3"),
    ({"ramp": {"from": 0, "to": 1}}, "ramp", "missing first_epoch, last_epoch"),
    ({"piecewise": {"boundaries": [2, 4], "values": [1, 2]}}, "piecewise.values",
     "expected 3 numbers"),
    ({"piecewise": {"boundaries": [4, 2], "values": [1, 2, 3]}}, "piecewise.boundaries",
     "increasing epoch numbers"),
    ({"function": "no_colon"}, "function", "expected 'module:function'"),
    ({"linear": {}}, "", "expected a number or one schedule"),
    ("heavy", "", "expected a number or one schedule"),
])
def test_a_bad_schedule_names_its_key(value, key, words):
    [error] = check(value, "compile.loss_weights.out", locate)
    assert error.key == "compile.loss_weights" + (f".out.{key}" if key else ".out")
    assert words in str(error)


def run_cli(*args: str) -> object:
    return CliRunner().invoke(cli, list(map(str, args)))


def test_a_schedule_for_an_output_the_model_does_not_have_is_refused():
    result = run_cli("validate", EXAMPLE, "--set",
                     "compile.loss_weights.class_outptu={ramp: {from: 0, to: 1, first_epoch: 0,"
                     " last_epoch: 2}}")
    assert result.exit_code == 2, result.output
    assert "compile.loss_weights.class_outptu: unknown output" in result.output
    assert "did you mean 'class_output'" in result.output


def shares(history: dict) -> list[float]:
    """The weighted class loss's share of the total loss, per epoch."""
    return [w * c / total for w, c, total in zip(
        history["loss_weight/class_output"], history["class_output_loss"], history["loss"])]


@pytest.mark.parametrize("loop", ["keras", "custom"])
def test_a_ramp_changes_the_loss_epoch_by_epoch_in_both_loops(tmp_path, loop):
    result = run_cli("fit", EXAMPLE, "--smoke", "--runs-dir", tmp_path, "--set", "fit.epochs=3",
                     "--set", f"fit.loop={loop}")
    assert result.exit_code == 0, result.output
    history = json.loads((Path(result.stdout.strip().splitlines()[-1]) / "history.json")
                         .read_text())
    assert history["loss_weight/class_output"] == [0.0, 0.5, 1.0]
    share = shares(history)
    assert share[0] == 0.0 and share[0] < share[1] < share[2], share
    assert "loss_weight/class_output: 0.5000" in result.output  # the epoch line shows it


def test_a_resumed_run_uses_the_weight_of_its_epoch(tmp_path, monkeypatch):
    (tmp_path / "stop_once.py").write_text(STOP_ONCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "stopped"
    result = run_cli("fit", EXAMPLE, "--smoke", "--runs-dir", tmp_path / "runs",
                     "--set", "fit.epochs=3", "--set",
                     f"fit.callbacks=[{{type: 'stop_once:StopOnce', marker: '{marker}', "
                     "epoch: 2}]")
    assert result.exit_code == 130, result.output
    [run] = (tmp_path / "runs").iterdir()
    assert json.loads((run / "history.json").read_text())["loss_weight/class_output"] == \
        [0.0, 0.5]
    resumed = run_cli("resume", run)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming at epoch 3 of 3" in resumed.output
    assert json.loads((run / "history.json").read_text())["loss_weight/class_output"] == \
        [0.0, 0.5, 1.0]


def test_a_function_schedule_comes_from_the_users_module(tmp_path, monkeypatch):
    (tmp_path / "lw_fn.py").write_text("def weight(epoch):\n    return 0.25 * epoch\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    result = run_cli("fit", EXAMPLE, "--smoke", "--runs-dir", tmp_path / "runs", "--set",
                     "fit.epochs=2", "--set",
                     "compile.loss_weights.class_output={function: 'lw_fn:weight'}")
    assert result.exit_code == 0, result.output
    [run] = (tmp_path / "runs").iterdir()
    assert json.loads((run / "history.json").read_text())["loss_weight/class_output"] == \
        [0.0, 0.25]
    missing = run_cli("fit", EXAMPLE, "--smoke", "--runs-dir", tmp_path / "runs", "--set",
                      "compile.loss_weights.class_output={function: 'lw_fn:nothing'}")
    assert missing.exit_code == 2, missing.output
    assert "compile.loss_weights.class_output.function: module 'lw_fn' has no function " \
           "'nothing'" in missing.output
