"""trainctl.run.plan: smoke sizes and what targets each output wants."""

from __future__ import annotations

import pytest

from trainctl.run.plan import output_kind


@pytest.mark.parametrize("loss, kind", [
    ("sparse_categorical_crossentropy", "sparse"),
    ({"type": "SparseCategoricalCrossentropy", "from_logits": True}, "sparse"),
    ("categorical_crossentropy", "onehot"),
    ({"type": "BinaryCrossentropy"}, "binary"),
    ("mse", "regression"),
])
def test_output_kind_from_the_loss(loss, kind):
    assert output_kind(loss) == kind


def test_output_without_loss_takes_the_kind_of_its_metrics():
    assert output_kind(None, ["sparse_categorical_accuracy"]) == "sparse"
    assert output_kind(None, None) == "regression"


def test_one_loss_component_is_not_a_per_output_mapping(tmp_path, write_config):
    """``compile.loss: {type: ...}`` is one loss for the output, so synthetic targets
    are class ids (a per-output mapping would have left the output without a loss)."""
    from trainctl.config import load_config
    from trainctl.run.prepare import prepare

    cfg = write_config("""\
seed: 1
data: {source: {type: synthetic, samples: 48}}
model:
  inputs: {x: {shape: [4]}}
  layers: [{type: Dense, units: 3, activation: softmax, name: out}]
compile: {optimizer: adam, loss: {type: SparseCategoricalCrossentropy}}
fit: {epochs: 1, batch_size: 16}
""")
    prep = prepare(load_config(cfg), smoke=True)
    y = prep.splits.train.y
    y = y["out"] if isinstance(y, dict) else y
    assert y.ndim == 1 and set(y.tolist()) <= {0, 1, 2}
