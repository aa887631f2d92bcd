"""``fit.loop: custom`` (S16–S18): trainctl's GradientTape loop gives what model.fit gives.

In-process tests on tiny synthetic data compare the loop with ``model.fit`` from
the same weights (same loss, metrics, weights and callback hooks); CLI tests run
the S16–S18 configs at smoke size next to ``--set fit.loop=keras``.
"""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")
from trainctl.run.loop import CustomLoop  # noqa: E402  (imports TensorFlow)

EXAMPLES = ROOT / "configs" / "examples"
STEP_LINE = re.compile(r"^step (\d+): loss (\d+\.\d{4,})$", re.M)


# ---------------------------------------------------------------- in process

def tiny_model(l1: float = 0.0, learning_rate: float = 0.01) -> "keras.Model":
    """6 -> 8 relu (-> ActivityRegularization) -> 3 softmax, compiled like trainctl does."""
    inputs = keras.Input((6,), name="x")
    hidden = keras.layers.Dense(8, activation="relu", name="hidden")(inputs)
    hidden = keras.layers.ActivityRegularization(l1=l1, name="reg")(hidden)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.5),
                  loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    return model


def tiny_data(n: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 3, n)


HOOKS = ["on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end"]


class Recorder(keras.callbacks.Callback):
    """Every hook call: (hook, batch/epoch index, sorted log keys)."""

    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []


def _recording(hook: str):
    def record(self, *args, logs=None):
        if args and isinstance(args[-1], dict):
            args, logs = args[:-1], args[-1]
        self.calls.append((hook, *args, tuple(sorted(logs or {}))))
    return record


for _hook in HOOKS:
    setattr(Recorder, _hook, _recording(_hook))


def twin_models(**kwargs) -> tuple:
    """Two identical compiled models (the second gets the first's weights)."""
    keras.utils.set_random_seed(7)
    first, second = tiny_model(**kwargs), tiny_model(**kwargs)
    second.set_weights(first.get_weights())
    return first, second


@pytest.mark.parametrize("case", ["one_pass", "steps_per_epoch"])
def test_same_computation_and_hooks_as_model_fit(case):
    x, y = tiny_data()

    def train():  # a new pipeline per run: a shuffle's seed generator lives in its dataset
        data = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(90, seed=1).batch(16)
        return data if case == "one_pass" else data.repeat()

    val = tf.data.Dataset.from_tensor_slices((x[:40], y[:40])).batch(16)
    args = dict(epochs=3, validation_data=val)
    if case == "one_pass":  # a partial last batch, class weights, validation every epoch
        args.update(class_weight={0: 1.0, 1: 2.0, 2: 0.5})
    else:  # a repeated dataset cut into epochs, validation every 2nd epoch on 2 batches
        args.update(steps_per_epoch=4, validation_steps=2, validation_freq=2)
    reference, ours = twin_models(l1=0.01)
    seen_fit, seen_loop = Recorder(), Recorder()
    expected = reference.fit(train(), callbacks=[seen_fit], verbose=0, shuffle=False, **args)
    got = CustomLoop(ours).fit(train(), callbacks=[seen_loop], **args)
    assert isinstance(got, keras.callbacks.History) and got.epoch == [0, 1, 2]
    assert list(got.history) == list(expected.history)
    for key, values in expected.history.items():
        assert got.history[key] == pytest.approx(values, rel=1e-5, abs=1e-6), key
    for theirs, mine in zip(reference.get_weights(), ours.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    assert int(ours.optimizer.iterations) == int(reference.optimizer.iterations)
    assert seen_loop.calls == seen_fit.calls  # same hooks, same indices, same log keys


def test_layer_losses_are_added_to_the_loss():
    """S18: the logged loss is cross-entropy + the ActivityRegularization term, exactly."""
    x, y = tiny_data(48)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    keras.utils.set_random_seed(3)
    model = tiny_model(l1=0.05, learning_rate=0.0)  # no update: the loss is computable
    hidden = keras.Model(model.inputs, model.get_layer("hidden").output)
    cross_entropy = keras.losses.sparse_categorical_crossentropy(y, model.predict(x, verbose=0))
    activity = np.abs(hidden.predict(x, verbose=0)).reshape(3, 16, 8).sum(axis=(1, 2)) / 16
    plain = float(np.mean(cross_entropy))
    expected = plain + 0.05 * float(np.mean(activity))  # equal batches: mean of batch losses
    history = CustomLoop(model).fit(data, epochs=1)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)
    assert history.history["loss"][0] > plain + 1e-3


def test_stop_training_ends_the_loop_at_the_next_step():
    class StopAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    x, y = tiny_data()
    _, model = twin_models()
    history = CustomLoop(model).fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16),
                                    epochs=5, callbacks=[StopAt()])
    assert int(model.optimizer.iterations) == 2 and history.epoch == [0]


def test_log_every_prints_the_batch_loss(capsys):
    x, y = tiny_data(64)
    _, model = twin_models()
    CustomLoop(model, log_every=2).fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8),
                                       epochs=1)
    lines = STEP_LINE.findall(capsys.readouterr().out)
    assert [int(step) for step, _ in lines] == [2, 4, 6, 8]
    assert all(np.isfinite(float(loss)) and float(loss) > 0 for _, loss in lines)


def test_log_lines_fall_on_multiples_inside_groups_of_steps(capsys):
    """Groups of 3 steps a call (82 samples: 11 steps, the last group 2) print the
    same lines, with the same losses, as one step a call."""
    x, y = tiny_data(82)
    outputs = []
    for per_call, model in zip((1, 3), twin_models()):
        model.steps_per_execution = per_call
        CustomLoop(model, log_every=2).fit(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=2)
        outputs.append(STEP_LINE.findall(capsys.readouterr().out))
    assert [int(step) for step, _ in outputs[1]] == list(range(2, 23, 2))
    assert outputs[1] == outputs[0]


# ---------------------------------------------------------------- the CLI

def fit_run(tmp_path, config, *sets: str) -> tuple:
    """``trainctl fit config --smoke --set ...``: (run folder, history, stdout)."""
    argv = ["fit", str(config), "--smoke", "--runs-dir", str(tmp_path / "runs")]
    for item in sets:
        argv += ["--set", item]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / result.output.strip().splitlines()[-1].split("/")[-1]
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    return run, json.loads((run / "history.json").read_text()), result.output


def run_files(run) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} - {"run.json"}


@pytest.mark.parametrize("config, epochs", [("s16_custom_loop", 1),
                                            ("s17_custom_loop_val_metrics", 2),
                                            ("s18_custom_loop_extra_loss", 1)])
def test_example_config_gives_the_artifacts_of_fit(config, epochs, tmp_path, mnist_dir,
                                                   monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    path = EXAMPLES / f"{config}.yaml"
    sets = (f"fit.epochs={epochs}", "fit.log_every=1")
    custom, history, out = fit_run(tmp_path, path, *sets)
    keras_run, keras_history, keras_out = fit_run(tmp_path, path, *sets, "fit.loop=keras")
    assert "loop: custom" in (custom / "config.yaml").read_text()
    assert list(history) == list(keras_history)  # same keys, same order
    for key, values in keras_history.items():
        assert history[key] == pytest.approx(values, rel=1e-5), key  # same data, same steps
    assert run_files(custom) == run_files(keras_run)
    # --smoke: 2 steps an epoch, one line per step (log_every=1); model.fit prints none
    assert [int(s) for s, _ in STEP_LINE.findall(out)] == list(range(1, 2 * epochs + 1))
    assert not STEP_LINE.findall(keras_out)
    if config.startswith("s17"):  # train and validation accuracy, every epoch
        assert {"sparse_categorical_accuracy", "val_sparse_categorical_accuracy"} <= set(history)
        assert all(len(v) == epochs for v in history.values())


def test_s18_extra_loss_is_in_the_reported_loss(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    path = EXAMPLES / "s18_custom_loop_extra_loss.yaml"
    run, history, _ = fit_run(tmp_path, path)
    _, plain, _ = fit_run(tmp_path, path, "model.layers[1].l1=0.0")  # same seed, same data
    assert history["loss"][0] > plain["loss"][0]
    model = keras.saving.load_model(run / "model.keras")
    x = np.random.default_rng(0).uniform(size=(4, 784)).astype("float32")
    model(x)
    hidden = keras.Model(model.input, model.get_layer("dense_1").output)(x)
    assert len(model.losses) == 1  # the seed's layer, saved with the model
    assert float(model.losses[0]) == pytest.approx(0.01 * float(np.abs(hidden).sum()) / 4,
                                                   rel=1e-5)


def test_early_stopping_stops_the_custom_loop(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    stop = "fit.callbacks=[{type: EarlyStopping, monitor: loss, min_delta: 100, patience: 1}]"
    _, history, out = fit_run(tmp_path, EXAMPLES / "s16_custom_loop.yaml", "fit.epochs=6", stop)
    assert len(history["loss"]) == 2 and "epoch 2/6" in out and "epoch 3/6" not in out


MIRRORED = """
import json, sys
from click.testing import CliRunner
from trainctl.cli import cli
histories = []
for loop in ("custom", "keras"):
    r = CliRunner().invoke(cli, ["fit", sys.argv[1], "--smoke", "--runs-dir", sys.argv[2],
        "--set", "fit.epochs=2", "--set", "fit.loop=" + loop,
        "--set", "runtime.distribution={strategy: mirrored, logical_cpus: 2}"])
    assert r.exit_code == 0, r.output
    assert "2 replicas" in r.output, r.output
    run = r.output.strip().splitlines()[-1]
    histories.append(json.load(open(run + "/history.json")))
print(json.dumps(histories))
"""


@pytest.mark.slow
def test_custom_loop_under_mirrored_strategy_matches_fit(tmp_path, mnist_dir):
    """Two logical CPUs (only before TF starts: a fresh process); the same history as fit.

    Slow: a second TensorFlow start-up and two more runs (~15 s).
    """
    import os
    import subprocess

    env = {**os.environ, "TRAINCTL_DATA_DIR": str(mnist_dir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", MIRRORED,
                           str(EXAMPLES / "s17_custom_loop_val_metrics.yaml"),
                           str(tmp_path / "runs")], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    custom, fitted = json.loads(proc.stdout.strip().splitlines()[-1])
    assert list(custom) == list(fitted)
    for key, values in fitted.items():
        assert custom[key] == pytest.approx(values, rel=1e-5), key


@pytest.mark.slow
def test_mnist_with_the_custom_loop_reaches_seed_accuracy(tmp_path, mnist_dir, monkeypatch):
    """S1 trained by the custom loop at full size: test accuracy >= 0.95."""
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    result = CliRunner().invoke(cli, ["fit", str(ROOT / "configs" / "mnist.yaml"),
                                      "--runs-dir", str(tmp_path), "--set", "fit.loop=custom"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = tmp_path / result.output.strip().splitlines()[-1].split("/")[-1]
    history = json.loads((run / "history.json").read_text())
    assert list(history) == ["loss", "sparse_categorical_accuracy", "val_loss",
                             "val_sparse_categorical_accuracy", "learning_rate"]
    assert all(len(v) == 2 for v in history.values())
    assert json.loads((run / "metrics.json").read_text())["sparse_categorical_accuracy"] >= 0.95


def test_a_model_with_its_own_train_step_is_refused_by_the_custom_loop(tmp_path, mnist_dir,
                                                                        monkeypatch):
    """The custom loop would skip S19's train_step: exit 2 before any run folder."""
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))  # found like every MNIST test's
    result = CliRunner().invoke(cli, ["fit", str(EXAMPLES / "s19_train_step.yaml"), "--smoke",
                                      "--runs-dir", str(tmp_path), "--set", "fit.loop=custom"])
    assert result.exit_code == 2, result.output
    assert "fit.loop: trainctl's custom loop, which does not call" in result.output
    assert "use fit.loop: keras" in result.output and not any(tmp_path.iterdir())
