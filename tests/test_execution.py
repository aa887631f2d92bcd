"""trainctl.run.execution: compile.steps_per_execution: auto."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

keras = pytest.importorskip("keras")

from trainctl.cli import cli  # noqa: E402
from trainctl.run.execution import AUTO_MAX, choose, wants_every_step  # noqa: E402


class EveryBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        pass


class EpochsOnly(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        pass


def test_auto_divides_every_epoch_and_step_cap():
    # 782 = 2 * 17 * 23: Keras would run 896 steps an epoch in groups of 64
    assert choose("auto", steps_per_epoch=782, other_steps=[None, None],
                  callbacks=[]) == 46
    assert choose("auto", steps_per_epoch=1000, other_steps=[],
                  callbacks=[]) == 50
    assert choose("auto", steps_per_epoch=100, other_steps=[3],
                  callbacks=[]) == 1
    assert choose("auto", steps_per_epoch=2, other_steps=[], callbacks=[]) == 2
    for steps in range(1, 300):
        n = choose("auto", steps_per_epoch=steps, other_steps=[], callbacks=[])
        assert steps % n == 0 and 1 <= n <= AUTO_MAX


def test_numbers_are_used_as_given():
    assert choose(7, steps_per_epoch=782, other_steps=[],
                  callbacks=[(EveryBatch, {})]) == 7


def test_callbacks_with_batch_hooks_get_every_step():
    assert wants_every_step(EveryBatch) and not wants_every_step(EpochsOnly)
    assert not wants_every_step(keras.callbacks.ModelCheckpoint)  # Keras's own: per group
    assert wants_every_step(keras.callbacks.LambdaCallback, {"on_batch_end": "f"})
    assert not wants_every_step(keras.callbacks.LambdaCallback, {"on_epoch_end": "f"})
    assert choose("auto", steps_per_epoch=782, other_steps=[],
                  callbacks=[(EpochsOnly, {}), (EveryBatch, {})]) == 1


def test_auto_keeps_epochs_exact_and_is_recorded(tmp_path, write_config):
    """A run with auto groups takes exactly steps_per_epoch batches an epoch: the
    optimizer's iteration count after 2 epochs of 12 steps is 24, not 2 groups of 8."""
    cfg = write_config("""\
seed: 1
data: {source: {type: synthetic, samples: 192, test_samples: 32}, validation: {holdout: 48}}
model:
  inputs: {x: {shape: [4]}}
  layers: [{type: Dense, units: 3, activation: softmax, name: out}]
compile: {optimizer: adam, loss: sparse_categorical_crossentropy}
fit: {epochs: 2, batch_size: 12}
""")
    result = CliRunner().invoke(cli, ["fit", str(cfg), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs").iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["steps_per_execution"] == 12  # 144 training samples / 12 = 12 steps
    model = keras.saving.load_model(run / "model.keras", compile=True)
    assert int(model.optimizer.iterations) == 24


def test_several_replicas_get_one_step_per_call():
    assert choose("auto", steps_per_epoch=782, other_steps=[], callbacks=[], replicas=2) == 1
