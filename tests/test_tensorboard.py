"""``runtime.tensorboard``: every epoch's scalars in the run's event files, read back with
TensorBoard's own reader; a misspelt argument is a config error before any run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import tiny_config
from trainctl.cli import cli

SYNTH = tiny_config("tb", seed=9, epochs=3, extra='runtime: {tensorboard: true}\n')


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tb") / "tb.yaml"
    path.write_text(SYNTH, encoding="utf-8")
    return path


def epoch_scalars(log_dir: Path) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of the ``epoch_*`` scalars of every event file in a folder."""
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)}
            for tag in events.Tags()["tensors"] if tag.startswith("epoch_")}


@pytest.mark.parametrize("loop", ["keras", "custom"])
def test_every_epochs_scalars_are_in_the_event_files(config, tmp_path, loop):
    result = CliRunner().invoke(cli, ["fit", str(config), "--smoke", "--set", "fit.epochs=3",
                                      "--set", f"fit.loop={loop}", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    run = Path(result.output.strip().splitlines()[-1])
    history = json.loads((run / "history.json").read_text())
    train, validation = (epoch_scalars(run / "tensorboard" / d) for d in ("train", "validation"))
    for key, values in history.items():
        logged = validation if key.startswith("val_") else train
        tag = f"epoch_{key.removeprefix('val_')}"
        assert sorted(logged[tag]) == list(range(len(values))), (key, logged.get(tag))
        assert [logged[tag][e] for e in range(len(values))] == pytest.approx(values, rel=1e-6)
    assert len(history["loss"]) == 3


def test_a_misspelt_tensorboard_argument_fails_before_the_run_starts(config, tmp_path):
    runs = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["fit", str(config), "--set",
                                      "runtime.tensorboard={update_frq: 1}",
                                      "--runs-dir", str(runs)])
    assert result.exit_code == 2
    assert "runtime.tensorboard.update_frq: unknown argument 'update_frq' for TensorBoard " \
           "(did you mean 'update_freq'?)" in result.output
    assert not runs.exists()  # found by the config checks: no run folder was made
    result = CliRunner().invoke(cli, ["validate", str(config), "--set",
                                      "runtime.tensorboard={histogram_freq: one}"])
    assert result.exit_code == 2 and "runtime.tensorboard.histogram_freq: expected" in result.output
