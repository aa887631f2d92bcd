"""Seed rows S8-S14: tf.data steps, sample/class weights, multi-input/multi-output,
EarlyStopping, ModelCheckpoint, learning-rate schedules and callbacks, TensorBoard/CSV.

Each test runs the row's config from configs/examples/ through the CLI (in process)
at the smallest size that still shows what the row must show.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli
from trainctl.config import load_config
from trainctl.config.schema import SampleWeight
from trainctl.config.validate_fit import check_fit
from trainctl.data import OutputInfo, Signature, Split, Splits, make_dataset, weigh_splits
from trainctl.errors import ConfigError, Location

EXAMPLES = ROOT / "configs" / "examples"


class StepCounter(keras.callbacks.Callback):
    """Counts training and validation batches per epoch (named from --set as a plug-in)."""

    train: list[int] = []
    val: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        StepCounter.train.append(0)
        StepCounter.val.append(0)

    def on_train_batch_end(self, batch, logs=None):
        StepCounter.train[-1] += 1

    def on_test_batch_end(self, batch, logs=None):
        StepCounter.val[-1] += 1


@pytest.fixture(autouse=True)
def data_env(mnist_dir, monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))


def fit(config: str, tmp_path: Path, *sets: str, smoke: bool = True) -> Path:
    """Run ``trainctl fit`` on an example config; the run folder."""
    args = ["fit", str(EXAMPLES / config), "--runs-dir", str(tmp_path / "runs")]
    args += ["--smoke"] * smoke + [a for s in sets for a in ("--set", s)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return tmp_path / "runs" / result.output.strip().splitlines()[-1].split("/")[-1]


def history(run: Path) -> dict:
    return json.loads((run / "history.json").read_text())


def fit_errors(config: str, *sets: str) -> list[ConfigError]:
    cfg = load_config(EXAMPLES / config, list(sets), semantic=False)
    return check_fit(cfg.experiment, cfg.locate)


# -- S8: exactly steps_per_epoch steps ----------------------------------------------------
@pytest.mark.parametrize("steps", [5, 100])
def test_s08_every_epoch_has_exactly_steps_per_epoch(tmp_path, steps):
    StepCounter.train, StepCounter.val = [], []
    run = fit("s08_tf_data_steps.yaml", tmp_path, "fit.epochs=2", f"fit.steps_per_epoch={steps}",
              'fit.callbacks=[{type: "test_seeds_data:StepCounter"}]', smoke=False)
    assert StepCounter.train == [steps, steps] and StepCounter.val == [3, 3]
    model = keras.saving.load_model(run / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 2 * steps


# -- S9: class weights, sample weights by class, weights in the data ---------------------------
def tiny_mnist(path: Path, weights: dict | None = None) -> Path:
    rng = np.random.default_rng(0)
    y = (np.arange(96) * 7) % 10
    arrays = dict(x_train=rng.integers(0, 256, (96, 28, 28)).astype(np.uint8), y_train=y,
                  x_test=rng.integers(0, 256, (32, 28, 28)).astype(np.uint8),
                  y_test=np.arange(32) % 10)
    if weights:
        arrays["sample_weight_train"] = np.array([weights.get(c, 1.0) for c in y], np.float32)
    np.savez(path, **arrays)
    return path


def test_s09_all_three_weight_forms_train_alike_and_change_training(tmp_path):
    plain, weighted = tiny_mnist(tmp_path / "plain.npz"), tiny_mnist(tmp_path / "w.npz", {5: 4.0})
    small = ["data.source=npz", "data.validation.holdout=16", "fit.epochs=2", "fit.batch_size=32"]
    runs = {
        "none": fit("s09_class_weight.yaml", tmp_path, *small, f"data.path={plain}",
                    "fit.class_weight=null", smoke=False),
        "class_weight": fit("s09_class_weight.yaml", tmp_path, *small, f"data.path={plain}",
                            "fit.class_weight={5: 4.0}", smoke=False),
        "by_class": fit("s09_sample_weight_by_class.yaml", tmp_path, *small,
                        f"data.path={plain}", "data.sample_weight.by_class={5: 4.0}",
                        smoke=False),
        "in_data": fit("s09_class_weight.yaml", tmp_path, *small, f"data.path={weighted}",
                       "fit.class_weight=null", smoke=False),
    }
    loss = {k: history(r)["loss"] for k, r in runs.items()}
    test = {k: json.loads((r / "metrics.json").read_text())["loss"] for k, r in runs.items()}
    assert loss["class_weight"] != pytest.approx(loss["none"], rel=1e-3)
    assert loss["by_class"] == pytest.approx(loss["class_weight"], rel=1e-5)
    assert loss["in_data"] == pytest.approx(loss["class_weight"], rel=1e-5)
    assert test["by_class"] == pytest.approx(test["class_weight"], rel=1e-5) \
        == pytest.approx(test["in_data"], rel=1e-5)


def test_s09_mnist_configs_agree(tmp_path):
    """MNIST with weights from a source function trains as class_weight does (same shuffle)."""
    losses = [history(fit(name, tmp_path, "data.shuffle=true"))["loss"] for name in (
        "s09_class_weight.yaml", "s09_sample_weight_in_data.yaml")]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


MULTI = Signature(inputs={"a": ((4,), "float32")},
                  outputs={"score": OutputInfo((1,), "regression"),
                           "cls": OutputInfo((), "sparse", 10)})


def locate(key: str) -> Location:
    return Location("exp.yaml", 1, 1)


def test_partial_class_weight_covers_labels_above_its_keys_and_goes_per_output():
    y = np.array([0, 5, 9, 5])
    split = Split({"a": np.zeros((4, 4), np.float32)},
                  {"score": np.zeros((4, 1), np.float32), "cls": y})
    out = weigh_splits(Splits(train=split), MULTI, sample_weight=None,
                       class_weight={5: 2.0}, locate=locate).train
    assert list(out.sample_weight) == ["score", "cls"]
    assert out.sample_weight["score"].tolist() == [1, 1, 1, 1]
    assert out.sample_weight["cls"].tolist() == [1, 2, 1, 2]
    x, _, weights = next(iter(make_dataset(out, batch_size=4, outputs=["score", "cls"])))
    assert isinstance(weights, tuple) and weights[1].numpy().tolist() == [1, 2, 1, 2]


@pytest.mark.parametrize("table", [{-1: 2.0}, {10: 2.0}])
@pytest.mark.parametrize("where", ["fit.class_weight", "data.sample_weight.by_class"])
def test_a_weight_for_a_class_the_output_lacks_is_a_config_error(table, where):
    # {-1: w} weighed the last class (numpy's index -1); {10: w} on 10 classes weighed nothing
    split = Split({"a": np.zeros((4, 4), np.float32)},
                  {"score": np.zeros((4, 1), np.float32), "cls": np.array([0, 5, 9, 5])})
    weights = ({"class_weight": table, "sample_weight": None} if where == "fit.class_weight"
               else {"class_weight": None, "sample_weight": SampleWeight(by_class=table)})
    with pytest.raises(ConfigError) as exc:
        weigh_splits(Splits(train=split), MULTI, locate=locate, **weights)
    assert exc.value.key == where
    assert f"class {next(iter(table))} is not a class of output 'cls': it has 10 classes, " \
        "0 to 9" in str(exc.value)


def test_s09_class_weight_on_the_multi_output_model_trains(tmp_path):
    """class_weight on S10's model becomes per-output sample weights (Keras 3 refuses it)."""
    from trainctl.run.fit import fit as run_fit

    def losses(*sets):
        cfg = load_config(EXAMPLES / "s10_multi_io_dict.yaml", ["fit.epochs=1", *sets],
                          semantic=False)
        return history(run_fit(cfg, runs_dir=tmp_path / "runs", smoke=True).path)

    plain, weighted = losses(), losses("fit.class_weight={0: 5.0, 3: 5.0}")
    assert weighted["class_output_loss"][0] != pytest.approx(plain["class_output_loss"][0])
    assert check_fit(load_config(EXAMPLES / "s10_multi_io_dict.yaml", [
        "fit.class_weight={1: 2.0}"], semantic=False).experiment, locate) == []


# -- S10: multi-input, multi-output -------------------------------------------------------
def test_s10_dict_losses_metrics_and_loss_weights(tmp_path):
    h = history(fit("s10_multi_io_dict.yaml", tmp_path, "fit.epochs=2"))
    for key in ("score_output_loss", "class_output_loss", "score_output_mean_absolute_error",
                "score_output_mean_absolute_percentage_error",
                "class_output_categorical_accuracy", "val_score_output_loss",
                "val_class_output_categorical_accuracy"):
        assert len(h[key]) == 2, key
    expected = [2.0 * s + c for s, c in zip(h["score_output_loss"], h["class_output_loss"])]
    assert h["loss"] == pytest.approx(expected, rel=1e-4)  # loss_weights {score: 2, class: 1}


def test_s10_list_losses_with_an_output_without_loss(tmp_path):
    h = history(fit("s10_multi_io_list.yaml", tmp_path))
    assert "score_output_loss" not in h and "score_output_mean_absolute_error" in h
    assert "class_output_categorical_accuracy" in h
    h = history(fit("s10_multi_io_list.yaml", tmp_path,
                    "compile.loss=[mean_squared_error, categorical_crossentropy]",
                    "compile.loss_weights=[0.5, 1.0]"))
    expected = [0.5 * s + c for s, c in zip(h["score_output_loss"], h["class_output_loss"])]
    assert h["loss"] == pytest.approx(expected, rel=1e-4)


def test_s10_npz_data_per_input_and_output_name(tmp_path):
    rng = np.random.default_rng(1)
    n = 40
    arrays = {"x_train/img_input": rng.random((n, 32, 32, 3), dtype=np.float32),
              "x_train/ts_input": rng.random((n, 12, 10), dtype=np.float32),  # length 12
              "y_train/score_output": rng.random((n, 1), dtype=np.float32),
              "y_train/class_output": np.eye(5, dtype=np.float32)[rng.integers(0, 5, n)]}
    np.savez(tmp_path / "multi.npz", **arrays)
    h = history(fit("s10_multi_io_dict.yaml", tmp_path, "data.source=npz",
                    f"data.path={tmp_path / 'multi.npz'}"))
    assert h["class_output_loss"] and h["val_score_output_loss"]


# -- S11: EarlyStopping ---------------------------------------------------------------------
def test_s11_stops_after_patience_epochs_without_improvement(tmp_path):
    # A learning rate of 0 leaves val_loss flat: the first epoch sets the best, then
    # `patience` epochs without a 1e-2 improvement stop the run.
    run = fit("s11_early_stopping.yaml", tmp_path, "fit.epochs=20",
              "compile.optimizer={type: SGD, learning_rate: 0.0}")
    patience = load_config(EXAMPLES / "s11_early_stopping.yaml").experiment.fit.callbacks[0][
        "patience"]
    assert len(history(run)["loss"]) == patience + 1 < 20
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


# -- S12: ModelCheckpoint ---------------------------------------------------------------------
def test_s12_best_only_checkpoints_in_the_run_folder(tmp_path):
    run = fit("s12_checkpoint.yaml", tmp_path, "fit.epochs=3")
    val, best, expected = history(run)["val_loss"], float("inf"), set()
    for epoch, value in enumerate(val):
        if value < best:
            best, expected = value, expected | {f"mymodel_{epoch + 1}.keras"}
    saved = {p.name for p in (run / "checkpoints").glob("mymodel_*")}
    assert saved == expected and saved


def test_s12_legacy_h5_name_works_and_other_suffixes_are_refused(tmp_path):
    run = fit("s12_checkpoint.yaml", tmp_path, "fit.callbacks[0].filepath=ckpt/m_{epoch}.h5")
    assert list((run / "ckpt").glob("m_1.h5"))
    [err] = fit_errors("s12_checkpoint.yaml", "fit.callbacks[0].filepath=m_{epoch}.ckpt")
    assert err.key == "fit.callbacks[0].filepath" and ".keras" in str(err)


# -- S13: schedules and learning-rate callbacks ---------------------------------------------------
def test_s13_schedule_is_applied_and_logged(tmp_path):
    lr = "compile.optimizer.learning_rate"
    h = history(fit("s13_lr_schedule.yaml", tmp_path, "fit.epochs=2",
                    f"{lr}.initial_learning_rate=0.001", f"{lr}.decay_steps=3"))
    steps = [2, 4]  # smoke: 2 steps an epoch; staircase: 0.96 ** floor(step / 3)
    assert h["learning_rate"] == pytest.approx([0.001 * 0.96 ** (s // 3) for s in steps])


def test_s13_reduce_lr_on_plateau_logged_where_keras_logs_it(tmp_path):
    # min_delta 10: no epoch counts as an improvement after the first one.
    h = history(fit("s13_reduce_lr.yaml", tmp_path, "fit.epochs=4",
                    "fit.callbacks[0].min_delta=10.0"))
    assert h["learning_rate"] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])


def test_s13_learning_rate_scheduler_with_a_plugin_function(tmp_path):
    from examples.plugins.schedules import step_decay

    h = history(fit("s13_lr_scheduler.yaml", tmp_path, "fit.epochs=3"))
    assert h["learning_rate"] == pytest.approx(
        [step_decay(e, 0.0, initial=0.001, drop=0.5, every=2) for e in range(3)])


@pytest.mark.parametrize("callback", ["ReduceLROnPlateau", "LearningRateScheduler"])
def test_s13_schedule_with_lr_callback_is_a_config_error(callback):
    cb = "{type: ReduceLROnPlateau}" if callback == "ReduceLROnPlateau" else \
        '{type: LearningRateScheduler, schedule: {type: "examples.plugins.schedules:step_decay"}}'
    [err] = fit_errors("s13_lr_schedule.yaml", f"fit.callbacks=[{cb}]")
    assert err.key == "compile.optimizer.learning_rate"
    assert "fit.callbacks[0]" in str(err) and callback in str(err)


# -- S14: TensorBoard and CSVLogger ---------------------------------------------------------------
def test_s14_event_files_and_csv_in_the_run_folder(tmp_path):
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = fit("s14_tensorboard_csv.yaml", tmp_path, "fit.epochs=2")
    loss = history(run)["loss"]
    events = EventAccumulator(str(run / "logs" / "train"))
    events.Reload()
    logged = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("epoch_loss")]
    assert logged == pytest.approx(loss)
    with open(run / "training_log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["loss"]) for r in rows] == pytest.approx(loss)


# -- monitors that cannot exist -----------------------------------------------------------------
def test_val_monitor_without_validation_data_is_an_error():
    no_val = ["data.validation=null"]
    [err] = fit_errors("s11_early_stopping.yaml", *no_val)
    assert err.key == "fit.callbacks[0].monitor" and "no validation data" in str(err)
    [err] = fit_errors("s11_early_stopping.yaml", *no_val,
                       "fit.callbacks=[{type: ModelCheckpoint, filepath: m.keras}]")
    assert err.key == "fit.callbacks[0]"  # Keras's default monitor is val_loss
    assert fit_errors("s11_early_stopping.yaml", *no_val, "fit.callbacks[0].monitor=loss") == []
    [err] = fit_errors("s08_tf_data_steps.yaml", *no_val)
    assert err.key == "fit.validation_steps"


def test_class_weights_need_a_classification_output():
    [err] = fit_errors("s09_class_weight.yaml", "compile.loss=mean_squared_error")
    assert err.key == "fit.class_weight"
    [err] = fit_errors("s09_sample_weight_by_class.yaml", "data.sample_weight.output=predictons")
    assert err.key == "data.sample_weight.output" and "predictions" in str(err)
