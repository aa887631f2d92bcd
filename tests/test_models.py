"""Seed rows S19, S20, S22-S25: custom train_step, subclassed models, sub-models,
mixed precision, MirroredStrategy and freezing, each from its config in configs/examples."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli
from trainctl.config import load_config

EXAMPLES = ROOT / "configs" / "examples"


@pytest.fixture(autouse=True)
def data_dir(mnist_dir, monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    monkeypatch.chdir(ROOT)  # `imports: [examples.plugins.models]` resolves from the repo


def fit(config: Path | str, tmp_path: Path, *args: str) -> Path:
    """``trainctl fit`` in-process; the run folder."""
    result = CliRunner().invoke(cli, ["fit", str(config), "--runs-dir", str(tmp_path / "runs"),
                                      *args])
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


def history(run: Path) -> dict:
    return json.loads((run / "history.json").read_text())


def saved_class(run: Path) -> str:
    with zipfile.ZipFile(run / "model.keras") as z:
        return json.loads(z.read("config.json"))["class_name"]


# -- S19: train_step override -------------------------------------------------------
def test_s19_train_step_logs_the_true_loss(tmp_path):
    """CustomModel's train_step logs what the built-in fit logs, same seed, one epoch."""
    custom = fit(EXAMPLES / "s19_train_step.yaml", tmp_path, "--smoke")
    builtin = fit(EXAMPLES / "s19_train_step.yaml", tmp_path, "--smoke",
                  "--set", "model.type=null", "--name", "builtin")
    assert saved_class(custom) == "CustomModel" and saved_class(builtin) == "Functional"
    mine, ref = history(custom), history(builtin)
    assert set(mine) == set(ref)
    for key in ("loss", "sparse_categorical_accuracy", "val_loss"):
        assert mine[key][0] == pytest.approx(ref[key][0], abs=1e-3), key
    assert mine["loss"][0] > 0.5  # a real cross-entropy, not a prediction's mean


KERAS2_STEP = '''
import keras, tensorflow as tf, trainctl

@trainctl.register("model")
class Keras2StepModel(keras.Model):
    def train_step(self, data):
        x, y = data  # self.compiled_loss in a comment does not count
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compiled_loss(y, y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.compiled_metrics.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}
'''


@pytest.mark.parametrize("verb", ["validate", "fit"])
def test_s19_keras2_train_step_is_refused_with_the_keras3_way(tmp_path, verb):
    (tmp_path / "keras2_step_model.py").write_text(KERAS2_STEP)
    text = (EXAMPLES / "s19_train_step.yaml").read_text()
    text = text.replace("imports: [examples.plugins.models]", "imports: [keras2_step_model]")
    config = tmp_path / "s19.yaml"
    config.write_text(text.replace("type: CustomModel", "type: Keras2StepModel"))
    result = CliRunner().invoke(cli, [verb, str(config), "--runs-dir", str(tmp_path / "r")]
                                if verb == "fit" else [verb, str(config)])
    assert result.exit_code == 2, result.output
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "type: CustomModel" in ln)
    assert f"s19.yaml:{line}:" in result.output and "model.type" in result.output
    assert "Keras2StepModel.train_step uses self.compiled_loss" in result.output
    assert "keras2_step_model.py:10" in result.output  # the line of the call, not the comment
    assert "self.compute_loss(" in result.output and "self.optimizer.apply(" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()


# -- S20: custom layer + subclassed model -------------------------------------------
def test_s20_subclassed_model_with_custom_layer_trains_and_reloads(tmp_path):
    import keras

    from examples.plugins.models import MyDenseLayer, MyModel
    from trainctl.build import attach_io

    run = fit(EXAMPLES / "s20_subclassed.yaml", tmp_path, "--smoke")
    assert saved_class(run) == "MyModel"
    summary = (run / "summary.txt").read_text()
    assert "my_dense (MyDenseLayer)" in summary and "50,240" in summary  # 784 x 64 + 64
    assert history(run)["loss"][0] > 0
    model = keras.saving.load_model(run / "model.keras", compile=False,
                                    custom_objects={"MyModel": MyModel,
                                                    "MyDenseLayer": MyDenseLayer})
    assert (model.hidden, model.classes) == (64, 10)  # args from YAML survive get_config
    cfg = load_config(run / "config.yaml")
    attach_io(model, cfg.experiment, cfg.locate)
    assert tuple(model.outputs[0].shape) == (None, 10)
    logits = model.predict(np.ones((3, 784), "float32"), verbose=0)
    assert logits.shape == (3, 10) and (logits < 0).any()  # logits, as the seed's MyModel


def test_s20_run_loads_in_evaluate_and_predict(tmp_path):
    run = fit(EXAMPLES / "s20_subclassed.yaml", tmp_path, "--smoke")
    result = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    assert "sparse_categorical_accuracy" in json.loads((run / "metrics.json").read_text())
    np.save(tmp_path / "x.npy", np.zeros((3, 784), "float32"))
    result = CliRunner().invoke(cli, ["predict", str(run), "--input", str(tmp_path / "x.npy"),
                                      "--output", str(tmp_path / "p.npy")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "p.npy").shape == (3, 10)


def test_s19_run_loads_in_evaluate(tmp_path):
    run = fit(EXAMPLES / "s19_train_step.yaml", tmp_path, "--smoke")
    result = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"loss", "sparse_categorical_accuracy"}


def test_model_type_errors_point_at_the_key(tmp_path, write_config):
    text = (EXAMPLES / "s20_subclassed.yaml").read_text()
    bad = write_config(text.replace("type: MyModel", "type: MyModle"), "bad.yaml")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "model.type: unknown model 'MyModle' (did you mean 'MyModel'?)" in result.output
    bad = write_config(text.replace("hidden: 64", "hiden: 64"), "bad2.yaml")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2 and "model.args.hiden" in result.output
    assert "did you mean 'hidden'" in result.output


# -- S22: sub-models ---------------------------------------------------------------
def build(config: Path, *overrides: str):
    from trainctl.build import build_model
    from trainctl.plugins import import_plugins

    cfg = load_config(config, list(overrides))
    import_plugins(list(cfg.experiment.imports), config_dir=cfg.config_dir, locate=cfg.locate)
    return build_model(cfg.experiment, cfg.locate)


def test_s22_ensemble_members_are_separate_models_averaged(tmp_path):
    import keras

    model = build(EXAMPLES / "s22_ensemble.yaml")
    members = [model.get_layer(f"model{i}") for i in (1, 2, 3)]
    assert all(isinstance(m, keras.Model) for m in members)
    kernels = [m.get_layer("score").kernel for m in members]
    assert len({id(k) for k in kernels}) == 3  # own weights for each use
    x = np.random.default_rng(0).random((4, 128), dtype=np.float32)
    each = [m.predict(x, verbose=0) for m in members]
    assert not np.allclose(each[0], each[1])
    assert np.allclose(model.predict(x, verbose=0), np.mean(each, axis=0), atol=1e-6)
    run = fit(EXAMPLES / "s22_ensemble.yaml", tmp_path, "--smoke")
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_s22_resnet_blocks_add_their_input(tmp_path):
    import keras

    model = build(EXAMPLES / "s22_resnet.yaml")
    block = model.get_layer("block2")
    assert isinstance(block, keras.Model) and block is not model.get_layer("block3")
    assert isinstance(block.get_layer("residual"), keras.layers.Add)
    x = np.random.default_rng(0).random((2, 9, 9, 64), dtype=np.float32)
    inner = keras.Model(block.inputs, block.get_layer("conv_b").output)
    assert np.allclose(block.predict(x, verbose=0), inner.predict(x, verbose=0) + x, atol=1e-5)
    assert model.output.shape == (None, 10)
    fit(EXAMPLES / "s22_resnet.yaml", tmp_path, "--smoke")


def test_s22_autoencoder_learns_to_reconstruct_mnist(tmp_path, mnist_dir):
    model = build(EXAMPLES / "s22_autoencoder.yaml")
    assert model.output.shape == (None, 28, 28, 1)
    assert model.get_layer("encoder").output.shape == (None, 16)
    run = fit(EXAMPLES / "s22_autoencoder.yaml", tmp_path,
              "--set", "data.source={type: mnist_reconstruction, limit: 1024}",
              "--set", "data.validation.holdout=256", "--set", "fit.epochs=2",
              "--set", "fit.batch_size=64", "--set", "compile.optimizer.learning_rate=0.003")
    val = history(run)["val_loss"]
    assert val[-1] < val[0]
    # closer to the digits than a black image (the full-size figure: benchmarks/)
    with np.load(mnist_dir / "mnist.npz") as data:
        pixels = data["x_test"][:1024].astype("float32") / 255.0
    assert json.loads((run / "metrics.json").read_text())["loss"] < float(np.mean(pixels ** 2))


def test_submodel_misuse_is_a_config_error(write_config):
    text = (EXAMPLES / "s22_ensemble.yaml").read_text()
    bad = write_config(text.replace("{type: member, name: model2, inputs: features}",
                                    "{type: member, name: model2, inputs: features, units: 3}"))
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "model.layers[1].units: a sub-model takes only name and inputs" in result.output
    bad = write_config(text.replace("member:", "Dense:").replace("type: member", "type: Dense"),
                       "clash.yaml")
    result = CliRunner().invoke(cli, ["validate", str(bad)])
    assert result.exit_code == 2 and "model.submodels.Dense: sub-model name" in result.output


# -- S23: mixed precision ----------------------------------------------------------
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_s23_mixed_precision_keeps_the_output_float32(tmp_path, policy):
    from trainctl.run.runtime import set_precision

    set_precision(policy)
    try:
        model = build(EXAMPLES / "s23_mixed_precision.yaml", f"runtime.precision={policy}")
    finally:
        set_precision("float32")  # the policy is global to the process
    assert model.get_layer("dense_1").compute_dtype == policy.split("_")[1]
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.output.dtype == "float32"
    run = fit(EXAMPLES / "s23_mixed_precision.yaml", tmp_path, "--smoke",
              "--set", f"runtime.precision={policy}")
    assert np.isfinite(history(run)["loss"][0])


# -- S24: MirroredStrategy ---------------------------------------------------------
# Two replicas from the example's strategy, for both loops, in a fresh process:
# tests/test_loop.py::test_custom_loop_under_mirrored_strategy_matches_fit.
def test_s24_logical_cpus_after_tensorflow_started_is_a_usage_error(tmp_path):
    import tensorflow as tf

    tf.constant(1.0)  # make sure this process's TensorFlow is initialised
    result = CliRunner().invoke(cli, ["fit", str(EXAMPLES / "s24_mirrored.yaml"), "--smoke",
                                      "--runs-dir", str(tmp_path / "runs"),
                                      "--set", "runtime.distribution.logical_cpus=3"])
    assert result.exit_code == 2, result.output
    assert "runtime.distribution.logical_cpus: 3 logical CPUs asked" in result.output
    assert "its own process" in result.output and "Traceback" not in result.output


# -- S25: freezing -----------------------------------------------------------------
def test_s25_frozen_weights_unchanged_after_fit(tmp_path):
    import keras

    from trainctl.run.prepare import prepare

    config = EXAMPLES / "s25_fine_tune_freeze.yaml"
    run = fit(config, tmp_path, "--smoke")
    # the same config and seed build the same initial weights
    initial = prepare(load_config(config), smoke=True).model
    trained = keras.saving.load_model(run / "model.keras")
    for name, frozen in (("dense_1", True), ("dense_2", True), ("predictions", False)):
        before, after = initial.get_layer(name).get_weights(), trained.get_layer(name).get_weights()
        same = [np.array_equal(a, b) for a, b in zip(before, after)]
        assert same == [frozen, frozen], name
    assert not trained.get_layer("dense_1").trainable
