"""The command line through click's CliRunner: exit codes, messages, no TensorFlow for help."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT, run_python
from trainctl.cli import cli

SYNTH = """\
name: synth
seed: 3
data:
  source: {type: synthetic, samples: 96, test_samples: 32}
  validation: {holdout: 32}
model:
  inputs: {x: {shape: [6]}}
  layers:
    - {type: Dense, units: 8, activation: relu, name: hidden}
    - {type: Dense, units: 3, activation: softmax, name: out}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
  metrics: [sparse_categorical_accuracy]
fit:
  epochs: 2
  batch_size: 16
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("argv", [["--help"], ["validate", "configs/mnist.yaml"],
                                  ["components", "optimizer"], ["schema"]])
def test_light_commands_do_not_import_tensorflow(argv):
    code = ("import sys; from click.testing import CliRunner; from trainctl.cli import cli; "
            f"r = CliRunner().invoke(cli, {argv!r}); "
            "assert r.exit_code == 0, r.output; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'; "
            "assert 'keras' not in sys.modules, 'keras imported'")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr


def test_validate_ok_and_exit_code_on_error(write_config):
    good = write_config(SYNTH, "good.yaml")
    bad = write_config(SYNTH.replace("units: 8", "units: eight"), "bad.yaml")
    result = invoke("validate", str(good))
    assert result.exit_code == 0 and f"ok: {good}" in result.output
    result = CliRunner().invoke(cli, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:9:28: model.layers[0].units: expected a positive integer" in result.output


def test_validate_searches_folders_as_smoke_does(write_config, tmp_path):
    good = write_config(SYNTH, "configs/good.yaml")
    bad = write_config(SYNTH.replace("units: 8", "units: eight"), "configs/more/bad.yaml")
    write_config("model: {}\n", "configs/_base/partial.yaml")  # a base: skipped
    folder = tmp_path / "configs"
    result = CliRunner().invoke(cli, ["validate", str(folder)])
    assert result.exit_code == 2, result.output
    assert f"ok: {good}" in result.output
    assert f"{bad}:9:28: model.layers[0].units: expected a positive integer" in result.output
    assert "partial.yaml" not in result.output
    bad.unlink()
    result = CliRunner().invoke(cli, ["validate", str(folder) + "/", str(good)])
    assert result.exit_code == 0, result.output
    assert result.output.count(f"ok: {good}") == 1  # named twice, checked once
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "empty"), str(good)])
    assert result.exit_code == 2 and f"ok: {good}" in result.output
    assert f"error: no *.yaml config found in {tmp_path / 'empty'}" in result.output


def test_components_lists_names_and_did_you_mean():
    result = invoke("components", "layer")
    assert result.exit_code == 0 and "Dense" in result.output
    result = CliRunner().invoke(cli, ["components", "layerz"])
    assert result.exit_code == 2 and "did you mean 'layer'" in result.output


def test_schema_is_json_schema():
    import jsonschema

    schema = json.loads(invoke("schema").output)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"data", "model", "compile", "fit", "runtime"} <= set(schema["properties"])


def test_fit_writes_a_complete_run(tmp_path, write_config):
    cfg = write_config(SYNTH)
    runs = tmp_path / "runs"
    result = invoke("fit", str(cfg), "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    run_dir = result.output.strip().splitlines()[-1]
    path = runs / run_dir.split("/")[-1]
    assert str(path) == run_dir and path.name.startswith("synth-")
    for name in ["config.yaml", "run.json", "history.json", "history.csv", "summary.txt",
                 "model.keras", "metrics.json", "checkpoints/last.keras",
                 "checkpoints/best.keras"]:
        assert (path / name).is_file(), name
    info = json.loads((path / "run.json").read_text())
    assert info["status"] == "completed" and info["exit_reason"] is None
    assert info["seed"] == 3 and info["smoke"] is False
    assert info["distribution"] == {"strategy": "_DefaultDistributionStrategy", "replicas": 1}
    assert set(info["versions"]) == {"python", "tensorflow", "keras", "trainctl"}
    assert info["attempts"][0]["status"] == "completed"
    # where the time went: every phase, and trainctl's own work as the sum of its phases
    from trainctl.run.timing import OWN

    timings = info["timings"]
    # (startup: only the first run of a process, and this process ran others)
    assert {"import", "config", "build", "data", "checks", "compile", "run_dir",
            "fit", "callbacks", "save", "evaluate", "status"} <= set(timings)
    assert all(seconds >= 0 for seconds in timings.values())
    assert timings["own"] == pytest.approx(sum(timings.get(k, 0) for k in OWN), abs=0.01)
    assert 0 < timings["callbacks"] < timings["fit"]
    history = json.loads((path / "history.json").read_text())
    assert set(history) == {"loss", "sparse_categorical_accuracy", "val_loss",
                            "val_sparse_categorical_accuracy", "learning_rate"}
    assert all(len(v) == 2 for v in history.values())
    assert history["learning_rate"] == pytest.approx([0.01, 0.01])
    rows = (path / "history.csv").read_text().splitlines()
    assert rows[0].split(",")[0] == "epoch" and [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    metrics = json.loads((path / "metrics.json").read_text())
    assert set(metrics) == {"loss", "sparse_categorical_accuracy"}
    import shutil

    if shutil.which("dot"):
        assert (path / "model.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "apt-get install graphviz" in info["notes"][0]
    # no callback changes weights after the last epoch: model.keras is last.keras again
    assert (path / "model.keras").read_bytes() == (path / "checkpoints/last.keras").read_bytes()
    # no temp files left behind by the atomic writes
    assert not [p for p in path.rglob("*") if ".tmp" in p.name]

    # evaluate reproduces the recorded metrics, and records itself
    result = invoke("evaluate", str(path))
    assert result.exit_code == 0, result.output
    again = json.loads((path / "metrics.json").read_text())
    assert again["sparse_categorical_accuracy"] == pytest.approx(
        metrics["sparse_categorical_accuracy"], abs=1e-4)
    assert json.loads((path / "run.json").read_text())["records"][0]["kind"] == "evaluate"

    # predict on the test split, then on a file

    result = invoke("predict", str(path))
    assert result.exit_code == 0, result.output
    assert np.load(path / "predictions.npy").shape == (32, 3)
    np.save(tmp_path / "x.npy", np.zeros((5, 6), dtype="float32"))
    result = invoke("predict", str(path), "--input", str(tmp_path / "x.npy"),
                    "--output", str(tmp_path / "y.npy"))
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "y.npy").shape == (5, 3)
    np.save(tmp_path / "bad.npy", np.zeros((5, 7), dtype="float32"))
    result = CliRunner().invoke(cli, ["predict", str(path), "--input", str(tmp_path / "bad.npy")])
    assert result.exit_code == 2 and "expected arrays of shape (N, 6)" in result.output


def test_smoke_caps_steps_and_is_recorded(tmp_path, write_config):
    cfg = write_config(SYNTH.replace("epochs: 2", "epochs: 5"))
    result = invoke("fit", str(cfg), "--smoke", "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    path = tmp_path / "runs" / result.output.strip().splitlines()[-1].split("/")[-1]
    info = json.loads((path / "run.json").read_text())
    assert info["smoke"] is True
    history = json.loads((path / "history.json").read_text())
    assert len(history["loss"]) == 1  # epochs forced to 1
    # an explicit --set wins over smoke
    result = invoke("fit", str(cfg), "--smoke", "--set", "fit.epochs=2",
                    "--runs-dir", str(tmp_path / "runs"))
    path = tmp_path / "runs" / result.output.strip().splitlines()[-1].split("/")[-1]
    assert len(json.loads((path / "history.json").read_text())["loss"]) == 2
    assert "test - loss" in result.output and "no test split" not in result.output
    # without a test split the run says why it has no test line
    result = invoke("fit", str(cfg), "--smoke", "--set", "data.test=false",
                    "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0 and "note: no test split" in result.output, result.output


def test_diverging_run_fails_with_exit_1(tmp_path, write_config):
    cfg = write_config(SYNTH.replace("learning_rate: 0.01", "learning_rate: 1.0e+30")
                       .replace("sparse_categorical_crossentropy", "mse")
                       .replace("softmax", "linear")
                       .replace("metrics: [sparse_categorical_accuracy]", "metrics: []"))
    result = CliRunner().invoke(cli, ["fit", str(cfg), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1, result.output
    assert re.search(r"NaN or infinite at epoch 1, (step \d+|one of steps \d+-\d+ .*);",
                     result.output), result.output
    run = next((tmp_path / "runs").iterdir())
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and "NaN or infinite at epoch 1, " in info["exit_reason"]
    where = info["diverged_at"]
    assert where["epoch"] == 1 and 1 <= where["first_step"] <= where["step"]
    # stopped at once: no NaN row for the broken epoch, and the starting state is kept
    assert not (run / "history.json").exists()
    assert "no epoch finished; the starting state is in" in result.output
    state = json.loads((run / "checkpoints" / "resume" / "state.json").read_text())
    assert state["epochs_done"] == 0


@pytest.mark.slow
def test_mnist_full_size_reaches_seed_accuracy(tmp_path, mnist_dir, monkeypatch):
    """S1 at full size: test accuracy >= 0.95, and evaluate agrees with fit to 1e-4."""
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    result = invoke("fit", str(ROOT / "configs" / "mnist.yaml"), "--runs-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = tmp_path / result.output.strip().splitlines()[-1].split("/")[-1]
    recorded = json.loads((path / "metrics.json").read_text())
    assert recorded["sparse_categorical_accuracy"] >= 0.95
    history = json.loads((path / "history.json").read_text())
    assert list(history) == ["loss", "sparse_categorical_accuracy", "val_loss",
                             "val_sparse_categorical_accuracy", "learning_rate"]
    assert all(len(v) == 2 for v in history.values())
    result = invoke("evaluate", str(path))
    assert result.exit_code == 0, result.output
    again = json.loads((path / "metrics.json").read_text())
    assert again["sparse_categorical_accuracy"] == pytest.approx(
        recorded["sparse_categorical_accuracy"], abs=1e-4)
    assert f"sparse_categorical_accuracy: {recorded['sparse_categorical_accuracy']:.4f}" \
        in result.output
    # S1 predicts 3 samples: one row of 10 class probabilities each
    x = np.load(mnist_dir / "mnist.npz")["x_test"][:3].reshape(3, 784).astype("float32") / 255
    np.save(tmp_path / "three.npy", x)
    result = invoke("predict", str(path), "--input", str(tmp_path / "three.npy"),
                    "--output", str(tmp_path / "three_out.npy"))
    assert result.exit_code == 0, result.output
    probabilities = np.load(tmp_path / "three_out.npy")
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


CALLBACKS = SYNTH.replace("  epochs: 2\n", """\
  epochs: 6
  monitor: val_sparse_categorical_accuracy
  callbacks:
    - {type: EarlyStopping, monitor: val_loss, patience: 1, min_delta: 10.0,
       restore_best_weights: true}
    - {type: CSVLogger, filename: logs/keras.csv}
    - {type: ModelCheckpoint, filepath: "checkpoints/epoch-{epoch:02d}.keras"}
""") + "runtime: {tensorboard: {update_freq: epoch}}\n"


def test_user_callbacks_and_tensorboard_write_into_the_run(tmp_path, write_config):
    result = invoke("fit", str(write_config(CALLBACKS)), "--runs-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = tmp_path / result.output.strip().splitlines()[-1].split("/")[-1]
    history = json.loads((path / "history.json").read_text())
    assert len(history["loss"]) == 2  # EarlyStopping: no val_loss gain of 10 after 1+1 epochs
    assert "stopped early after epoch 2 of 6" in result.output
    assert json.loads((path / "run.json").read_text())["stopped_early_after_epoch"] == 2
    assert (path / "logs" / "keras.csv").read_text().count("\n") == 3
    assert sorted(p.name for p in (path / "checkpoints").glob("epoch-*.keras")) == \
        ["epoch-01.keras", "epoch-02.keras"]
    events = list((path / "tensorboard").rglob("events.out.tfevents.*"))
    assert {p.parent.name for p in events} == {"train", "validation"}
    # restore_best_weights changed the weights after the last epoch: model.keras holds
    # epoch 1's weights, not last.keras's (epoch 2)
    import keras

    def weights(name):
        return keras.models.load_model(path / name).get_weights()

    final, first = weights("model.keras"), weights("checkpoints/epoch-01.keras")
    assert all(np.array_equal(a, b) for a, b in zip(final, first))
    assert not all(np.array_equal(a, b)
                   for a, b in zip(final, weights("checkpoints/last.keras")))


def test_callback_path_cannot_leave_the_run(tmp_path, write_config):
    cfg = write_config(CALLBACKS.replace("filename: logs/keras.csv", "filename: ../../x.csv"))
    result = CliRunner().invoke(cli, ["fit", str(cfg), "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "fit.callbacks[1].filename: relative output path '../../x.csv' leaves the run" \
        in result.output
    run = next((tmp_path / "runs").iterdir())
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    assert not (tmp_path.parent / "x.csv").exists()


def test_run_of_an_extended_config_is_reusable(tmp_path, write_config):
    write_config(SYNTH, "_base/synth.yaml")
    cfg = write_config("extends: _base/synth.yaml\nfit: {epochs: 1}\n", "child.yaml")
    result = invoke("fit", str(cfg), "--smoke", "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    path = tmp_path / "runs" / result.output.strip().splitlines()[-1].split("/")[-1]
    import yaml

    saved = yaml.safe_load((path / "config.yaml").read_text())
    assert "extends" not in saved and saved["fit"] == {"epochs": 1, "batch_size": 16}
    assert invoke("evaluate", str(path)).exit_code == 0
    # run files are readable by others (mkstemp alone would make them 0600)
    assert (path / "run.json").stat().st_mode & 0o044 == 0o044


def test_predict_multi_output_saves_by_output_name(tmp_path):
    import numpy as np

    result = invoke("fit", str(ROOT / "configs" / "multi_io.yaml"), "--smoke",
                    "--runs-dir", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    path = tmp_path / "runs" / result.output.strip().splitlines()[-1].split("/")[-1]
    assert invoke("predict", str(path)).exit_code == 0
    with np.load(path / "predictions.npz") as saved:
        assert saved.files == ["score_output", "class_output"]
        assert saved["class_output"].shape[1:] == (5,)
    for bad, words in [(tmp_path / "y.npy", "expected a .npz file"),
                       (tmp_path / "no" / "y.npz", "does not exist")]:
        result = CliRunner().invoke(cli, ["predict", str(path), "--output", str(bad)])
        assert result.exit_code == 2 and words in result.output


def test_module_colon_name_needs_no_imports_entry(write_config, tmp_path):
    (tmp_path / "my_losses.py").write_text(
        "def halved_mse(y_true, y_pred):\n    return ((y_true - y_pred) ** 2) / 2\n")
    cfg = write_config(SYNTH.replace("loss: sparse_categorical_crossentropy",
                                     "loss: my_losses:halved_mse")
                       .replace("metrics: [sparse_categorical_accuracy]", "metrics: []"))
    result = invoke("validate", str(cfg))
    assert result.exit_code == 0, result.output


def test_validate_finds_a_missing_data_file_without_loading_anything(write_config):
    from conftest import tiny_config

    text = tiny_config("nofile", seed=1, epochs=1).replace(
        "  source: {type: synthetic, samples: 64, test_samples: 16}\n",
        "  source: npz\n  path: nothere.npz\n")
    path = write_config(text)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:5:9: data.path: file not found: {path.parent / 'nothere.npz'}" \
        in result.output


def test_validate_checks_each_config_with_its_own_same_named_plugin(tmp_path):
    """b/plugins2.py registers LayerB, a/plugins2.py LayerA, each config `imports:
    [plugins2]`. `validate b.yaml a.yaml` used to import b's module once and refuse a
    (unknown layer 'LayerA'): the result depended on the order. a is validated in a child
    process now, with a note saying why."""
    from conftest import tiny_config

    plugin = ("import keras\n\nimport trainctl\n\n\n@trainctl.register('layer')\n"
              "class Layer{0}(keras.layers.Layer):\n    def call(self, x):\n        return x\n")
    paths = {}
    for name in ("b", "a"):
        folder = tmp_path / "mod3" / name
        folder.mkdir(parents=True)
        (folder / "plugins2.py").write_text(plugin.format(name.upper()))
        paths[name] = folder / f"{name}.yaml"
        paths[name].write_text(tiny_config(name, seed=1, epochs=1,
                                           extra="imports: [plugins2]\n").replace(
            "    - {type: Dense", f"    - {{type: Layer{name.upper()}}}\n    - {{type: Dense"))
    result = CliRunner().invoke(cli, ["validate", str(paths["b"]), str(paths["a"])])
    assert result.exit_code == 0, result.output
    assert f"ok: {paths['b']}" in result.output and f"ok: {paths['a']}" in result.output
    assert f"note: {paths['a']}: validated in a child process: plug-in module 'plugins2'" \
        in result.output
    assert "unknown layer" not in result.output
