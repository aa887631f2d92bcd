"""trainctl.run.state: what checkpoints/resume/ saves and restores."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from trainctl.run.state import load_state, save_state, saved_epochs, state_dir  # noqa: E402


class LossHistory(keras.callbacks.Callback):
    """A user callback as in seed S15: a list of numbers and a counter."""

    def __init__(self):
        super().__init__()
        self.losses: list[float] = []
        self.seen = 0


def model_and_callbacks(tmp_path, seed):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dropout(0.5),
                              keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(
        0.1, decay_steps=2, decay_rate=0.5)), "mse")
    callbacks = [keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True),
                 keras.callbacks.ReduceLROnPlateau(),
                 keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
                 LossHistory()]
    return model, callbacks


def test_weights_optimizer_callbacks_and_rng_come_back(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    model, callbacks = model_and_callbacks(tmp_path, seed=1)
    model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=1, batch_size=2, verbose=0)
    early, plateau, csv, user = callbacks
    early.wait, early.best, early.best_weights = 2, 0.25, model.get_weights()
    plateau.wait, plateau.cooldown_counter = 1, 3
    user.losses, user.seen = [0.5, 0.25], 7
    csv.append_header = False
    np.random.seed(5)
    save_state(tmp_path, model, callbacks, epochs_done=3)
    expected_draw = np.random.random()

    other, fresh = model_and_callbacks(tmp_path, seed=2)  # different initial weights
    other.fit(np.zeros((2, 4)), np.zeros((2, 2)), epochs=1, verbose=0)  # and optimizer state
    assert saved_epochs(tmp_path) == 3
    assert load_state(tmp_path, other, fresh) == 3
    for a, b in zip(model.get_weights(), other.get_weights()):  # seed-generator state too
        np.testing.assert_array_equal(a, b)
    assert int(other.optimizer.iterations) == int(model.optimizer.iterations) == 4
    assert float(other.optimizer.learning_rate) == float(model.optimizer.learning_rate)
    e, p, c, u = fresh
    assert (e.wait, e.best, p.wait, p.cooldown_counter) == (2, 0.25, 1, 3)
    assert len(e.best_weights) == len(model.get_weights())
    assert (u.losses, u.seen) == ([0.5, 0.25], 7)
    assert c.append_header is True  # a Keras callback's set-up is not overwritten
    assert np.random.random() == expected_draw


def test_no_state_and_a_damaged_state(tmp_path):
    assert saved_epochs(tmp_path) is None
    state_dir(tmp_path).mkdir(parents=True)
    (state_dir(tmp_path) / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="state.json: unreadable"):
        saved_epochs(tmp_path)


def test_an_interrupted_swap_keeps_the_previous_state(tmp_path):
    """A crash between the two renames leaves only `.resume.old`: it is put back."""
    (tmp_path / "checkpoints").mkdir()
    model, callbacks = model_and_callbacks(tmp_path, seed=1)
    model.fit(np.ones((4, 4)), np.ones((4, 2)), epochs=1, verbose=0)
    save_state(tmp_path, model, callbacks, epochs_done=2)
    state_dir(tmp_path).rename(state_dir(tmp_path).with_name(".resume.old"))
    assert saved_epochs(tmp_path) == 2
    assert json.loads((state_dir(tmp_path) / "state.json").read_text())["epochs_done"] == 2


def test_a_snapshot_holds_its_moment_while_training_goes_on(tmp_path):
    """The state is copied at the epoch's end and written while the next epoch trains:
    the files must hold the copied moment, not the variables as they are later."""
    from trainctl.run.state import snapshot_state, write_state

    (tmp_path / "checkpoints").mkdir()
    model, callbacks = model_and_callbacks(tmp_path, seed=3)
    model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=1, batch_size=2, verbose=0)
    before = model.get_weights()
    snapshot = snapshot_state(model, callbacks, epochs_done=1)
    model.fit(np.ones((8, 4)), np.ones((8, 2)), epochs=1, batch_size=2, verbose=0)  # moves on
    assert int(model.optimizer.iterations) == 8
    write_state(tmp_path, snapshot)

    other, fresh = model_and_callbacks(tmp_path, seed=4)
    assert load_state(tmp_path, other, fresh) == 1
    for a, b in zip(before, other.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(other.optimizer.iterations) == 4
