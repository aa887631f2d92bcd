"""save_keras: an atomic model.save, without Keras remaking its reference objects each time."""

from __future__ import annotations

import numpy as np
import pytest

from trainctl.keras_saving import save_keras


@pytest.fixture
def trained():
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    model.fit(np.ones((8, 4), "float32"), np.zeros(8, "int32"), verbose=0)
    return model


def test_the_file_loads_and_no_temp_file_is_left(tmp_path, trained):
    import keras

    save_keras(trained, tmp_path / "last.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.keras"]
    loaded = keras.saving.load_model(tmp_path / "last.keras")
    assert int(loaded.optimizer.iterations.numpy()) == int(trained.optimizer.iterations.numpy())
    np.testing.assert_array_equal(loaded.layers[0].kernel.numpy(), trained.layers[0].kernel.numpy())


def test_a_failed_save_keeps_the_old_file(tmp_path, trained, monkeypatch):
    target = tmp_path / "last.keras"
    save_keras(trained, target)
    before = target.read_bytes()

    def broken(path, *args, **kwargs):
        open(path, "wb").write(b"half")  # noqa: SIM115 - a save that dies midway
        raise OSError("disk full")

    monkeypatch.setattr(trained, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_keras(trained, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.keras"]


def test_later_saves_do_not_make_keras_reference_objects_again(tmp_path, trained, monkeypatch):
    """Keras builds a bare Layer/Optimizer/Metric at each save to know which attributes
    to skip (a cache it never hits); after trainctl's first save none is made."""
    from keras.src.layers.layer import Layer
    from keras.src.optimizers.optimizer import Optimizer

    save_keras(trained, tmp_path / "first.keras")
    made = []
    for cls in (Layer, Optimizer):
        original = cls.__init__

        def counting(self, *args, _original=original, **kwargs):
            made.append(type(self).__name__)
            _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counting)
    save_keras(trained, tmp_path / "second.keras")
    assert made == []
    assert (tmp_path / "second.keras").stat().st_size > 0
