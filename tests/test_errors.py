"""Twenty-odd broken configs: each exits 2 with one screen naming file:line and key, no traceback."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from trainctl.cli import cli

GOOD = """\
name: err
seed: 1
data:
  source: {type: synthetic, samples: 64, test_samples: 16}
model:
  inputs: {x: {shape: [6]}}
  layers:
    - {type: Dense, units: 8, activation: relu, name: hidden}
    - {type: Dense, units: 3, activation: softmax, name: out}
compile:
  optimizer: rmsprop
  loss: sparse_categorical_crossentropy
  metrics: [sparse_categorical_accuracy]
fit: {epochs: 1, batch_size: 16}
"""

# (id, replace-this, with-this, command, expected line:col or None, key, words in the message)
CASES = [
    ("yaml-syntax", "units: 8,", "units: [8,", "validate", "8:", None, "YAML syntax error"),
    ("yaml-tab-indent", "fit: {epochs: 1", "fit:\n\t{epochs: 1", "validate", "15:", None,
     "YAML syntax error"),
    ("python-tag", "seed: 1", "seed: !!python/object/apply:os.getcwd []", "validate", "2:7",
     "seed", "not allowed"),
    ("unknown-top-key", "seed: 1", "sed: 1", "validate", "2:1", "sed", "did you mean 'seed'"),
    ("unknown-nested-key", "batch_size: 16", "batchsize: 16", "validate", "14:", "fit.batchsize",
     "did you mean 'batch_size'"),
    ("unknown-layer", "type: Dense, units: 8", "type: Dens, units: 8", "validate", "8:",
     "model.layers[0].type", "did you mean 'Dense'"),
    ("misspelled-arg", "units: 8,", "unit: 8,", "validate", "8:", "model.layers[0].unit",
     "did you mean 'units'"),
    ("wrong-type-arg", "units: 8,", "units: eight,", "validate", "8:28", "model.layers[0].units",
     "expected a positive integer; received 'eight' (str)"),
    ("bad-activation", "activation: relu", "activation: 3", "validate", "8:",
     "model.layers[0].activation", "received 3"),
    ("unknown-activation", "activation: relu", "activation: rellu", "validate", "8:",
     "model.layers[0].activation", "did you mean 'relu'"),
    ("missing-required-arg", "type: Dense, units: 8, ", "type: Dense, ", "validate", "8:",
     "model.layers[0]", "missing required argument 'units'"),
    ("wrong-type-epochs", "epochs: 1", "epochs: one", "validate", "14:", "fit.epochs",
     "expected an integer"),
    ("negative-batch", "batch_size: 16", "batch_size: -4", "validate", "14:", "fit.batch_size",
     "expected a value >= 1"),
    ("unknown-optimizer", "optimizer: rmsprop", "optimizer: rmsprob", "validate", "11:",
     "compile.optimizer", "did you mean 'rmsprop'"),
    ("unknown-loss", "loss: sparse_categorical_crossentropy", "loss: sparse_crossentropy",
     "validate", "12:", "compile.loss", "unknown loss"),
    ("unknown-metric", "metrics: [sparse_categorical_accuracy]", "metrics: [acuracy]", "validate",
     "13:", "compile.metrics[0]", "did you mean 'accuracy'"),
    ("missing-input-ref", "name: out}", "name: out, inputs: hiden}", "validate", "9:",
     "model.layers[1].inputs", "did you mean 'hidden'"),
    ("unknown-output", "compile:\n", "  outputs: outt\ncompile:\n", "validate", "10:12",
     "model.outputs", "did you mean 'out'"),
    ("missing-data-section", "data:\n  source: {type: synthetic, samples: 64, test_samples: 16}\n",
     "", "validate", None, "data", "required key is missing"),
    ("unknown-source", "type: synthetic,", "type: synthetc,", "validate", "4:", "data.source.type",
     "did you mean 'synthetic'"),
    ("unknown-transform", "  source: {type", "  features: [{rescal: 0.5}]\n  source: {type",
     "validate", "4:", "data.features[0]", "did you mean 'rescale'"),
    ("bad-optimizer-arg", "optimizer: rmsprop", "optimizer: {type: RMSprop, lr: 0.1}",
     "validate", "11:", "compile.optimizer.lr", "learning_rate"),
    ("shape-cannot-connect", "{type: Dense, units: 3, activation: softmax, name: out}",
     "{type: Reshape, target_shape: [5, 5], name: out}", "fit", "9:", "model.layers[1]",
     "Reshape cannot take input of shape"),
    ("metric-does-not-fit-targets", "metrics: [sparse_categorical_accuracy]",
     "metrics: [categorical_crossentropy]", "fit", "13:13", "compile.metrics[0]",
     "categorical_crossentropy wants one-hot targets"),
    ("missing-data-file", "  source: {type: synthetic, samples: 64, test_samples: 16}",
     "  source: mnist\n  path: nowhere/mnist.npz", "fit", "5:", "data.path", "nowhere/mnist.npz"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_broken_config_exits_2_with_location(case, write_config, tmp_path):
    _id, old, new, command, line_col, key, words = case
    assert old in GOOD, "the mutation must apply"
    path = write_config(GOOD.replace(old, new, 1))
    args = [command, str(path)] + (["--runs-dir", str(tmp_path / "runs")] if command == "fit" else [])
    result = CliRunner().invoke(cli, args)
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert len(output.splitlines()) <= 25, "one screen"
    assert str(path) in output
    if line_col:
        assert re.search(re.escape(f"{path}:{line_col}"), output), output
    if key:
        assert f": {key}: " in output or f": {key}\n" in output, output
    assert words in output, output
    # nothing half-written: a failed config leaves no run folder
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_label_out_of_range_names_label_and_layer(write_config, tmp_path):
    data = tmp_path / "d.npz"
    x = np.zeros((20, 6), dtype="float32")
    y = np.array([0, 1, 2, 7] * 5)
    np.savez(data, x_train=x, y_train=y, x_test=x, y_test=y)
    path = write_config(GOOD.replace("  source: {type: synthetic, samples: 64, test_samples: 16}",
                                     "  source: npz\n  path: d.npz"))
    result = CliRunner().invoke(cli, ["fit", str(path), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "7" in result.output and "out" in result.output and "3" in result.output
    assert "Traceback" not in result.output


def test_odd_characters_in_keys_stay_on_one_line(write_config):
    # found by tests/test_fuzz.py: a key holding a newline split the error in two lines,
    # the second without a location (or a forged one)
    path = write_config(GOOD.replace("fit: {", 'fit: {"x\\nerror: forged:1:1": 1, '))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"error: {path}:14:")
    assert "fit.x\\nerror: forged:1:1: unknown key" in result.output


def test_unknown_input_dtype_fails_in_validate(write_config):
    # found by tests/test_fuzz.py: validate said ok, `validate --build` and `fit` crashed
    # with "ValueError: Invalid dtype: garbage" from keras.Input
    path = write_config(GOOD.replace("{x: {shape: [6]}}", "{x: {shape: [6], dtype: flaot32}}"))
    result = CliRunner().invoke(cli, ["validate", "--build", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{path}:6:" in result.output
    assert "model.inputs.x.dtype: unknown dtype 'flaot32' (did you mean 'float32'?)" \
        in result.output


def test_device_tensorflow_cannot_parse(write_config):
    # found by tests/test_fuzz.py: "ValueError: Unknown attribute 'garbage' is encountered
    # while parsing the device spec" traceback, exit 1, from `validate --build`
    path = write_config(GOOD + "runtime: {distribution: {strategy: one_device, device: garbage}}\n")
    result = CliRunner().invoke(cli, ["validate", "--build", str(path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"{path}:15:56: runtime.distribution.device: TensorFlow cannot set up this " \
        "distribution: ValueError: Unknown attribute 'garbage'" in result.output


def test_keras_error_text_has_no_colour_codes_nor_a_dangling_tail(write_config):
    # Keras bolds the heart of a layer's error (\x1b[1m ... \x1b[0m) and ends it with
    # "Arguments received by Reshape.call():" and the arguments; cut to its first lines,
    # the message showed the codes as text and ended on that header
    path = write_config(GOOD.replace("{type: Dense, units: 3, activation: softmax, name: out}",
                                     "{type: Reshape, target_shape: [5, 5], name: out}"))
    result = CliRunner().invoke(cli, ["validate", "--build", str(path)])
    assert result.exit_code == 2, result.output
    first = result.output.splitlines()[0]
    assert first.startswith(f"error: {path}:9:7: model.layers[1]: Reshape cannot take input "
                            "of shape (None, 8): "), first
    assert first.endswith("The total size of the tensor must be unchanged. Received: "
                          "input_shape=(8,), target_shape=(5, 5)"), first
    assert "\x1b" not in result.output and "\\x1b" not in result.output
    assert "Arguments received" not in result.output


def test_exception_text_strips_colour_codes_and_the_dangling_arguments_header():
    from trainctl.diagnose import exception_text

    text = ("Exception encountered when calling Reshape.call().\n\n\x1b[1mThe total size "
            "must be unchanged\x1b[0m\n\nArguments received by Reshape.call():\n"
            "  \u2022 inputs=tf.Tensor(shape=(None, 8), dtype=float32)")
    assert exception_text(ValueError(text), lines=3) == (
        "Exception encountered when calling Reshape.call(). The total size must be unchanged")
    # with its arguments after it, the header is not dangling: kept
    assert exception_text(text).endswith("Arguments received by Reshape.call():\n"
                                         "  \u2022 inputs=tf.Tensor(shape=(None, 8), "
                                         "dtype=float32)")
    assert exception_text("\x1b[31;1mred\x1b[0m and \x1b[2Kcleared") == "red and cleared"
