"""trainctl.config.target_kinds: an output's loss and metrics want the same targets."""

from __future__ import annotations

from click.testing import CliRunner

from conftest import tiny_config
from trainctl.cli import cli
from trainctl.config.target_kinds import counterpart, kind_of


def test_keras_names_in_both_spellings_have_a_kind_and_plugins_none():
    assert kind_of("sparse_categorical_accuracy") == "sparse"
    assert kind_of({"type": "CategoricalCrossentropy", "from_logits": True}) == "onehot"
    assert kind_of("CategoricalTruePositives") is None  # a plug-in: may take either
    assert kind_of("accuracy") is None  # Keras picks the right one for the targets
    assert counterpart("SparseTopKCategoricalAccuracy") == "TopKCategoricalAccuracy"
    assert counterpart("categorical_accuracy") == "sparse_categorical_accuracy"


def test_validate_names_the_metric_that_disagrees_with_its_loss(write_config):
    text = tiny_config("kinds", seed=1, epochs=1).replace(
        "loss: sparse_categorical_crossentropy", "loss: categorical_crossentropy")
    path = write_config(text)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:13:13: compile.metrics[0]: sparse_categorical_accuracy wants integer " \
           "class ids, but the loss of output 'out' (compile.loss: categorical_crossentropy) " \
           "wants one-hot targets" in result.output
    assert "hint: use categorical_accuracy" in result.output
    fixed = write_config(text.replace("[sparse_categorical_accuracy]",
                                      "[categorical_accuracy, accuracy]"), "fixed.yaml")
    assert CliRunner().invoke(cli, ["validate", str(fixed)]).exit_code == 0
