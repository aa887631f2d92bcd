"""Seed rows S2-S7, S15, S21: custom components from plug-ins and trainctl's own layers.

Each test runs the row's config from configs/examples/ at smoke size (2 steps an
epoch, batch 64 or 32 as the config says) and checks what the row must show;
runs that used plug-ins are loaded back by ``evaluate`` and ``predict``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT, run_python
from trainctl.cli import cli

EXAMPLES = ROOT / "configs" / "examples"
# Random data shaped like the model (labels valid for its loss) instead of MNIST where
# the row does not depend on the images: 3x faster than loading and rescaling 60,000.
# 192 training samples (smoke: 2 batches of 64), 128 held out, 64 for test.
SYNTH = ("data.source={type: synthetic, samples: 320, test_samples: 64}",
         "data.validation={holdout: 128}")


@pytest.fixture
def env(mnist_dir, monkeypatch):
    """MNIST available and the repo root as working directory (plug-ins import from it)."""
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    monkeypatch.chdir(ROOT)


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def fit(config: Path, tmp_path: Path, *overrides: str, smoke: bool = True) -> Path:
    """``trainctl fit CONFIG [--smoke] --set ...``; the run folder (the last line printed)."""
    sets = [x for o in overrides for x in ("--set", o)]
    result = invoke("fit", config, *(["--smoke"] if smoke else []), "--runs-dir",
                    tmp_path / "runs", *sets)
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


def history(run: Path) -> dict:
    return json.loads((run / "history.json").read_text())


def evaluate_and_predict(run: Path, tmp_path: Path) -> dict:
    """Reload the run in ``evaluate`` and ``predict`` (plug-ins and trainctl layers)."""
    result = invoke("evaluate", run)
    assert result.exit_code == 0, result.output
    x = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    result = invoke("predict", run, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "y.npy").shape == (3, 10)
    return json.loads((run / "metrics.json").read_text())


def reload(run: Path):
    from trainctl.run.reload import reopen

    return reopen(run)[2]


def batch(n: int = 16, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def dense_1(model, x: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.Model(model.input, model.get_layer("dense_1").output)(x))


@pytest.fixture
def op_determinism():
    """Let a test enable TF op determinism, and switch it off again afterwards: it is
    process-wide (KERAS3_NOTES) and changes the numerics of every later test's run."""
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    yield
    if not was_on:
        tf_config.disable_op_determinism()


def test_s02_object_compile_matches_strings(env, tmp_path, op_determinism):
    sets = ("runtime.deterministic=true", "fit.epochs=2", *SYNTH)
    strings = history(fit(ROOT / "configs" / "mnist.yaml", tmp_path, *sets))
    objects = history(fit(EXAMPLES / "s02_compile_strings.yaml", tmp_path, *sets))
    assert set(objects) == set(strings) >= {"loss", "sparse_categorical_accuracy", "val_loss",
                                            "val_sparse_categorical_accuracy"}
    for key in ("loss", "val_loss", "sparse_categorical_accuracy"):
        assert objects[key] == pytest.approx(strings[key], abs=1e-6), key


def test_s03_function_loss_on_one_hot_labels(env, tmp_path):
    h = history(fit(EXAMPLES / "s03_custom_loss_function.yaml", tmp_path, "fit.epochs=3"))
    assert len(h["loss"]) == 3 and h["loss"][-1] < h["loss"][0]  # it trains
    assert "categorical_accuracy" in h
    # the config's one_hot transform is what makes the labels fit the 10-unit output
    result = invoke("fit", EXAMPLES / "s03_custom_loss_function.yaml", "--smoke",
                    "--runs-dir", tmp_path / "runs2", "--set", "data.targets=[]")
    # its metric (categorical_accuracy) says the plug-in loss takes one-hot targets
    assert result.exit_code == 2 and "expects one-hot targets of shape (10,)" in result.output


def test_s04_loss_argument_from_yaml(env, tmp_path):
    from trainctl.config import load_config
    from trainctl.run.prepare import prepare

    config = EXAMPLES / "s04_custom_loss_class.yaml"
    prep = prepare(load_config(config, ["compile.loss.regularization_factor=0.25", *SYNTH]),
                   smoke=True)
    assert type(prep.model.loss).__name__ == "CustomMSE"
    assert prep.model.loss.regularization_factor == 0.25
    x, _ = batch()
    y = np.eye(10, dtype=np.float32)[batch()[1]]
    p = np.asarray(prep.model(x))
    expected = np.mean((y - p) ** 2) + 0.25 * np.mean((0.5 - p) ** 2)
    got = prep.model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["loss"]
    assert got == pytest.approx(expected, rel=1e-5)

    metrics = evaluate_and_predict(fit(config, tmp_path, *SYNTH), tmp_path)
    assert set(metrics) == {"loss", "categorical_accuracy"}


def test_s04_misspelled_argument_fails_validate(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    text = (EXAMPLES / "s04_custom_loss_class.yaml").read_text()
    text = text.replace("../_base/", f"{ROOT}/configs/_base/")
    text = text.replace("regularization_factor: 0.1", "regularisation_factor: 0.1")
    config = tmp_path / "s04.yaml"
    config.write_text(text)
    result = invoke("validate", config)
    assert result.exit_code == 2
    line = 1 + text.splitlines().index(next(ln for ln in text.splitlines()
                                            if "regularisation_factor" in ln))
    assert (f"{config}:{line}:" in result.output and "compile.loss.regularisation_factor: "
            "unknown argument 'regularisation_factor' for CustomMSE (did you mean "
            "'regularization_factor'?)" in result.output), result.output


def test_s05_metric_resets_each_epoch_and_reloads(env, tmp_path):
    run = fit(EXAMPLES / "s05_custom_metric.yaml", tmp_path, "fit.epochs=3", *SYNTH)
    h = history(run)
    seen = 2 * 64  # smoke: 2 batches of 64 per epoch, for training and validation
    for prefix in ("", "val_"):
        tp = h[f"{prefix}categorical_true_positives"]
        acc = h[f"{prefix}sparse_categorical_accuracy"]
        assert len(tp) == 3
        # this epoch's count, not a running total (nor validation's count in training's key)
        assert tp == pytest.approx([a * seen for a in acc], abs=0.01), prefix
    metrics = evaluate_and_predict(run, tmp_path)  # the test split: 64 samples
    assert metrics["categorical_true_positives"] == pytest.approx(
        metrics["sparse_categorical_accuracy"] * 64, abs=0.01)


@pytest.mark.slow
def test_s05_full_size_true_positives(env, tmp_path):
    run = fit(EXAMPLES / "s05_custom_metric.yaml", tmp_path, "fit.epochs=1", smoke=False)
    assert history(run)["categorical_true_positives"][0] >= 45_000  # of 50,000 images


def test_tf_keras_2_reset_states_is_called(capsys):
    import keras

    from trainctl.registry import REGISTRIES

    class OldStyleCount(keras.metrics.Metric):
        def __init__(self, name="old_style_count", **kwargs):
            super().__init__(name=name, **kwargs)
            self.count = self.add_weight(name="count", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.count.assign_add(1.0)

        def result(self):
            return self.count

        def reset_states(self):  # not zero, so the default reset_state would differ
            self.count.assign(100.0)

    REGISTRIES["metric"].register(OldStyleCount, name="TestOldStyleCount")
    try:
        metric = REGISTRIES["metric"].build("TestOldStyleCount", key="compile.metrics[0]")
    finally:
        REGISTRIES["metric"]._entries.pop("TestOldStyleCount")
    assert "reset_state()" in capsys.readouterr().err
    metric.update_state(0, 0)
    metric.reset_state()  # what Keras 3 calls at each epoch
    assert float(metric.result()) == 100.0


def test_s06_layer_logs_std_of_activation(env, tmp_path):
    run = fit(EXAMPLES / "s06_layer_metric.yaml", tmp_path, *SYNTH)
    h = history(run)
    assert {"std_of_activation", "val_std_of_activation"} <= set(h)
    metrics = evaluate_and_predict(run, tmp_path)
    assert "std_of_activation" in metrics
    model = reload(run)
    x, y = batch()
    got = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)
    assert got["std_of_activation"] == pytest.approx(np.std(dense_1(model, x)), rel=1e-4)


def test_s07_added_loss_is_in_the_training_loss(env, tmp_path):
    import keras

    run = fit(EXAMPLES / "s07_layer_loss.yaml", tmp_path, *SYNTH)
    assert history(run)["loss"][0] > 1.0  # cross-entropy alone starts near 2.3 and falls
    evaluate_and_predict(run, tmp_path)
    model = reload(run)
    x, y = batch()
    cross_entropy = float(np.mean(keras.losses.sparse_categorical_crossentropy(y, model(x))))
    extra = 0.1 * float(np.sum(dense_1(model, x)))
    got = model.evaluate(x, y, batch_size=len(x), verbose=0, return_dict=True)["loss"]
    assert extra > 0 and got == pytest.approx(cross_entropy + extra, rel=1e-4)


def test_add_metric_plugin_points_at_log_metric(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    text = (EXAMPLES / "s06_layer_metric.yaml").read_text()
    text = text.replace("../_base/", f"{ROOT}/configs/_base/")
    text = text.replace("{type: LogMetric, fn: std, name: std_of_activation}",
                        "{type: MetricLoggingLayer}")
    config = tmp_path / "s06.yaml"
    config.write_text("imports: [examples.plugins.layers]\n" + text)
    result = invoke("validate", config)
    assert result.exit_code == 2
    assert "model.layers[1]: MetricLoggingLayer calls add_metric(), which Keras 3 removed" \
        in result.output and "LogMetric" in result.output


def test_trainctl_layers_validate_without_tensorflow():
    code = ("import sys; from click.testing import CliRunner; from trainctl.cli import cli; "
            "r = CliRunner().invoke(cli, ['validate', 'configs/examples/s06_layer_metric.yaml',"
            " 'configs/examples/s07_layer_loss.yaml']); assert r.exit_code == 0, r.output; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    from trainctl.registry.catalog import check_component

    [err] = check_component("layer", {"type": "LogMetric", "fn": "stdev"}, key="k")
    assert str(err).startswith("k.fn: expected one of 'std', 'mean', 'sum'")
    [err] = check_component("layer", {"type": "AddLoss", "factr": 0.1}, key="k")
    assert "did you mean 'factor'" in str(err)


def test_s15_callbacks_from_plugin_stop_training(env, tmp_path):
    config = EXAMPLES / "s15_custom_callbacks.yaml"
    synth = (SYNTH[0], "data.validation={split: 0.2}")  # the seed's validation_split
    stopped = fit(config, tmp_path, "fit.epochs=4", "fit.callbacks[1].threshold=0.0", *synth)
    h = history(stopped)
    assert len(h["val_accuracy"]) == 1 < 4  # val_accuracy > 0.0 after the first epoch
    assert len(json.loads((stopped / "batch_losses.json").read_text())) == 2  # 2 steps
    full = history(fit(config, tmp_path, "fit.epochs=2", "fit.callbacks[1].threshold=1.0",
                       *synth))
    assert len(full["loss"]) == 2  # never above 1.0: runs every epoch


def test_s21_summary_and_plot(env, tmp_path):
    run = fit(EXAMPLES / "s21_summary_plot.yaml", tmp_path, *SYNTH)
    summary = (run / "summary.txt").read_text()
    for layer in ("digits", "dense_1", "dense_2", "predictions"):
        assert layer in summary
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed: model.png is skipped with a note")
    assert (run / "model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_component_names_finds_module_qualified_names():
    from trainctl.run.reload import component_names

    raw = {"model": {"layers": [{"type": "pkg.mod:Layer", "name": "a:b"}]},
           "compile": {"loss": "pkg.losses:mse", "metrics": [{"type": "m:M", "x": "p:q"}]},
           "fit": {"callbacks": [{"type": "EarlyStopping", "monitor": "val_loss"}]},
           "data": {"source": "pkg.data:load"}}
    assert list(component_names(raw)) == [
        ("model.layers[0].type", "pkg.mod:Layer"), ("compile.loss", "pkg.losses:mse"),
        ("compile.metrics[0].type", "m:M")]


def test_trainctls_own_sources_are_not_listed_as_plug_ins():
    import trainctl.data  # noqa: F401 - registers the sources, as `trainctl components` does
    from trainctl.registry.listing import format_components

    text = format_components("dataset")
    lines = text.splitlines()
    assert "  mnist (trainctl)" in lines and "  npz (trainctl)" in lines
    # (other tests in this process may have registered real plug-ins, e.g. mnist_images)
    assert "  mnist (plug-in)" not in lines and "  synthetic (plug-in)" not in lines


def test_components_shows_one_components_arguments():
    from click.testing import CliRunner

    from trainctl.cli import cli

    def run(*args):
        return CliRunner().invoke(cli, ["components", *args])

    dense = run("Dense")  # the kind found from the name
    assert dense.exit_code == 0 and dense.output.startswith("layer Dense (Keras):\n")
    assert dense.output.splitlines()[1].split() == ["units", "posint", "required"]
    assert run("layer", "Dense").output == dense.output
    csv = run("dataset", "csv")
    assert csv.exit_code == 0 and "label" in csv.output and "default ','" in csv.output
    typo = run("layer", "Dens")
    assert typo.exit_code == 2 and "no layer 'Dens' (did you mean 'Dense'?)" in typo.output
    lost = run("Dens")
    assert lost.exit_code == 2 and "(did you mean layer 'Dense'?)" in lost.output
