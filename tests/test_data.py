"""trainctl.data: sources, transforms, validation carve, checks and the tf.data pipeline."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from trainctl.config.schema import DataConfig
from trainctl.data import (OutputInfo, Signature, Split, Splits, check_against_model,
                           check_source, check_transform, load_splits, make_dataset)
from trainctl.data import builtin
from trainctl.errors import ConfigError, DataError, Location

MLP = Signature(inputs={"digits": ((784,), "float32")},
                outputs={"predictions": OutputInfo((), "sparse", 10)})
MNIST_FEATURES = [{"reshape": [784]}, {"rescale": 0.00392156862745098}]


def locate(key: str) -> Location:
    """Every key 'lives' on its own line, so messages show which key they blame."""
    return Location("exp.yaml", 10 + len(key), 3)


def load(data: dict, tmp_path: Path, sig: Signature = MLP, seed: int | None = 1) -> Splits:
    return load_splits(DataConfig.model_validate(data), config_dir=tmp_path, signature=sig,
                       seed=seed, locate=locate)


def tiny_mnist(path: Path, n: int = 20, n_test: int = 6, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
                  y_train=(np.arange(n) % 10).astype(np.uint8),
                  x_test=rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8),
                  y_test=(np.arange(n_test) % 10).astype(np.uint8))
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty TRAINCTL_DATA_DIR and no Keras cache or download to fall back on."""
    folder = tmp_path / "datadir"
    folder.mkdir()
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(folder))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setattr(builtin, "keras_homes", lambda: [tmp_path / "keras_home"])
    monkeypatch.setattr(builtin, "_download", lambda ds: None)
    return folder


# -- Keras data sets --------------------------------------------------------------------
def test_mnist_from_data_dir_reshaped_rescaled_with_last_10000_held_out(tmp_path, monkeypatch,
                                                                        mnist_dir):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    splits = load({"source": "mnist", "features": MNIST_FEATURES,
                   "validation": {"holdout": 10000}}, tmp_path)
    assert splits.train.x.shape == (50000, 784) and splits.train.x.dtype == np.float32
    assert splits.validation.x.shape == (10000, 784) and splits.test.x.shape == (10000, 784)
    assert 0.0 <= splits.train.x.min() and splits.train.x.max() <= 1.0
    with np.load(mnist_dir / "mnist.npz") as raw:
        x_raw, y_raw = raw["x_train"], raw["y_train"]
    np.testing.assert_allclose(splits.validation.x, x_raw[-10000:].reshape(-1, 784) / 255,
                               atol=1e-6)
    np.testing.assert_array_equal(splits.validation.y, y_raw[-10000:])
    np.testing.assert_array_equal(splits.train.y, y_raw[:-10000])
    assert list(splits.files) == [str((mnist_dir / "mnist.npz").resolve())]
    check_against_model(splits, MLP, locate=locate)


def test_missing_data_path_is_an_error_even_with_data_dir(tmp_path, data_dir):
    tiny_mnist(data_dir / "mnist.npz")  # a fallback exists but must not be used
    with pytest.raises(DataError) as err:
        load({"source": "mnist", "path": "data/nope.npz"}, tmp_path)
    text = str(err.value)
    assert str(tmp_path / "data" / "nope.npz") in text
    assert text.startswith(f"{locate('data.path')}: data.path: file not found")


def test_mnist_data_path_relative_to_config_dir(tmp_path, data_dir):
    tiny_mnist(tmp_path / "m.npz")
    splits = load({"source": "mnist", "path": "m.npz", "features": MNIST_FEATURES,
                   "validation": {"split": 0.25}}, tmp_path)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (15, 5, 6)
    assert str(tmp_path / "m.npz") in splits.files


def test_mnist_from_idx_files_in_data_dir(tmp_path, data_dir):
    def idx(stem: str, array: np.ndarray) -> None:
        header = bytes([0, 0, 8, array.ndim]) + b"".join(
            int(d).to_bytes(4, "big") for d in array.shape)
        (data_dir / f"{stem}.gz").write_bytes(gzip.compress(header + array.tobytes()))

    x = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    idx("train-images-idx3-ubyte", x)
    idx("train-labels-idx1-ubyte", np.array([1, 2, 3], np.uint8))
    idx("t10k-images-idx3-ubyte", x[:2])
    idx("t10k-labels-idx1-ubyte", np.array([4, 5], np.uint8))
    splits = load({"source": "mnist", "features": [{"reshape": [784]}]}, tmp_path)
    np.testing.assert_array_equal(splits.train.x, x.reshape(3, 784))
    np.testing.assert_array_equal(splits.test.y, [4, 5])
    assert len(splits.files) == 4


def test_cifar10_from_python_batches_and_no_code_in_pickles(tmp_path, data_dir):
    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 3 * 32 * 32)).astype(np.uint8)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batch = {b"data": images[2 * i:2 * i + 2], b"labels": [i, 9 - i]}
        (folder / name).write_bytes(pickle.dumps(batch))
    sig = Signature({"img": ((32, 32, 3), "uint8")}, {"p": OutputInfo((), "sparse", 10)})
    splits = load({"source": "cifar10"}, tmp_path, sig=sig)
    assert splits.train.x.shape == (10, 32, 32, 3) and splits.train.y.shape == (10, 1)
    np.testing.assert_array_equal(splits.train.x[0, 0, 1], images[0].reshape(3, 32, 32)[:, 0, 1])
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": os.getcwd, b"labels": []}))
    with pytest.raises(DataError, match="refusing to load posix.getcwd"):
        load({"source": "cifar10"}, tmp_path)


def test_mnist_nowhere_says_what_to_do(tmp_path, data_dir):
    with pytest.raises(DataError, match="TRAINCTL_DATA_DIR") as err:
        load({"source": "mnist"}, tmp_path)
    assert "data.path" in str(err.value) and str(data_dir / "mnist.npz") in str(err.value)


def test_corrupt_npz_is_a_data_error_naming_the_file(tmp_path, data_dir):
    good = tiny_mnist(tmp_path / "good.npz").read_bytes()
    (tmp_path / "bad.npz").write_bytes(good[: len(good) // 2])
    for source in ("mnist", "npz"):
        with pytest.raises(DataError, match="not a readable .npz") as err:
            load({"source": source, "path": "bad.npz"}, tmp_path)
        assert str(tmp_path / "bad.npz") in str(err.value)


def test_validation_from_its_own_file_and_one_kind_only(tmp_path, data_dir):
    tiny_mnist(tmp_path / "train.npz", n=20)
    tiny_mnist(tmp_path / "val.npz", n=7)
    splits = load({"source": "mnist", "path": "train.npz", "features": MNIST_FEATURES,
                   "validation": {"path": "val.npz"}}, tmp_path)
    assert (len(splits.train), len(splits.validation)) == (20, 7)
    assert splits.validation.x.shape == (7, 784) and len(splits.files) == 2
    with pytest.raises(ConfigError, match="one kind of validation data"):
        load({"source": "mnist", "path": "train.npz",
              "validation": {"holdout": 2, "split": 0.5}}, tmp_path)
    with pytest.raises(DataError, match="leaves none for training"):
        load({"source": "mnist", "path": "train.npz", "validation": {"holdout": 20}}, tmp_path)


def test_wrong_keys_and_shapes_are_data_errors(tmp_path, data_dir):
    tiny_mnist(tmp_path / "nokey.npz", x_test=None)
    with pytest.raises(DataError, match="missing x_test"):
        load({"source": "mnist", "path": "nokey.npz"}, tmp_path)
    tiny_mnist(tmp_path / "float.npz", x_train=np.zeros((20, 28, 28), np.float32))
    with pytest.raises(DataError, match=r"x_train: expected uint8 images"):
        load({"source": "mnist", "path": "float.npz"}, tmp_path)
    np.savez(tmp_path / "other.npz", images=np.zeros((4, 3)), labels=np.zeros(4))
    with pytest.raises(DataError, match=r"no array 'x_train'.*images, labels") as exc:
        load({"source": "npz", "path": "other.npz"}, tmp_path)
    assert f"{locate('data.path')}: data.path: " in str(exc.value)
    # a key the config renamed is blamed where the config writes it
    with pytest.raises(DataError, match=r"no array 'imgs'") as exc:
        load({"source": {"type": "npz", "x_train": "imgs"}, "path": "other.npz"}, tmp_path)
    assert f"{locate('data.source.x_train')}: data.source.x_train: " in str(exc.value)


# -- npz, synthetic and plug-in sources ---------------------------------------------------
def test_npz_renamed_and_grouped_keys_with_sample_weights(tmp_path):
    sig = Signature(inputs={"image": ((4, 4, 3), "float32"), "series": ((None, 10), "float32")},
                    outputs={"s": OutputInfo((1,), "regression"), "c": OutputInfo((), "sparse", 5)})
    source = {"type": "npz", "x_train": "x", "y_train": "y", "x_test": None}
    np.savez(tmp_path / "d2.npz", **{"x/image": np.ones((8, 4, 4, 3)),
                                     "x/series": np.ones((8, 5, 10)), "y/s": np.arange(8.0),
                                     "y/c": np.arange(8) % 5, "sample_weight_train": np.ones(8)})
    splits = load({"source": source, "path": "d2.npz", "validation": {"holdout": 2}}, tmp_path,
                  sig=sig)
    assert set(splits.train.x) == {"image", "series"} and set(splits.train.y) == {"s", "c"}
    assert splits.test is None and len(splits.train) == 6 and len(splits.validation) == 2
    assert splits.train.sample_weight.shape == (6,)
    check_against_model(splits, sig, locate=locate)


def test_synthetic_fits_a_multi_output_signature(tmp_path):
    sig = Signature(
        inputs={"image": ((32, 32, 3), "float32"), "series": ((None, 10), "float32"),
                "tokens": ((7,), "int32")},
        outputs={"class": OutputInfo((), "sparse", 5), "hot": OutputInfo((4,), "onehot", 4),
                 "score": OutputInfo((1,), "regression"), "flag": OutputInfo((1,), "binary")})
    data = {"source": {"type": "synthetic", "samples": 40, "test_samples": 8},
            "features": [{"reshape": [784]}],  # skipped: synthetic data is model-shaped
            "validation": {"holdout": 10000}}  # cut to a quarter on synthetic data
    a, b = load(data, tmp_path, sig=sig, seed=3), load(data, tmp_path, sig=sig, seed=3)
    assert (len(a.train), len(a.validation), len(a.test)) == (30, 10, 8)
    assert a.train.x["series"].shape == (30, 16, 10) and a.train.x["tokens"].dtype == np.int32
    assert a.train.y["hot"].shape == (30, 4) and set(np.unique(a.train.y["flag"])) <= {0, 1}
    assert a.train.y["class"].max() < 5
    np.testing.assert_array_equal(a.train.x["image"], b.train.x["image"])
    check_against_model(a, sig, locate=locate)
    single = load({"source": "synthetic"}, tmp_path)
    assert isinstance(single.train.x, np.ndarray) and single.train.x.shape == (256, 784)


def test_module_function_source(tmp_path):
    (tmp_path / "mydata.py").write_text(textwrap.dedent("""
        import numpy as np

        def load(n, path=None, seed=None):
            rng = np.random.default_rng(seed)
            x = rng.random((n, 784)).astype("float32")
            return (x, np.arange(n) % 10), (x[:3], np.zeros(3, int))

        def as_dict(n=4):
            return {"x_train": np.zeros((n, 784)), "y_train": np.zeros(n, int)}

        def broken():
            raise RuntimeError("disk on fire")

        def train_only():
            return (np.zeros((5, 784), "float32"), np.zeros(5, int)), None

        def bare_pair():
            return np.zeros((5, 784), "float32"), np.zeros(5, int)
    """))
    splits = load({"source": {"type": "mydata:load", "n": 12}, "validation": {"use_test": True}},
                  tmp_path)
    assert len(splits.train) == 12 and len(splits.validation) == 3 and len(splits.test) == 3
    assert len(load({"source": "mydata:as_dict"}, tmp_path).train) == 4
    with pytest.raises(ConfigError, match=r"takes no argument 'nn'.*did you mean 'n'"):
        load({"source": {"type": "mydata:load", "nn": 1}}, tmp_path)
    with pytest.raises(DataError, match="RuntimeError: disk on fire"):
        load({"source": "mydata:broken"}, tmp_path)
    splits = load({"source": "mydata:train_only"}, tmp_path)  # ((x, y), None): no test split
    assert len(splits.train) == 5 and splits.test is None
    with pytest.raises(DataError) as exc:  # said so with the arrays' repr
        load({"source": "mydata:bare_pair"}, tmp_path)
    assert "returned 2 arrays (x, y): the training pair alone" in str(exc.value)
    assert "hint: return (x, y), None" in str(exc.value) and "array(" not in str(exc.value)


def test_registered_plugin_source(tmp_path):
    from trainctl.registry import register

    @register("dataset", name="test_data_two_blobs")
    def two_blobs(n: int = 6, seed=None):
        x = np.concatenate([np.zeros((n, 784)), np.ones((n, 784))]).astype("float32")
        return {"x_train": x, "y_train": np.repeat([0, 1], n)}

    splits = load({"source": {"type": "test_data_two_blobs", "n": 3}}, tmp_path)
    assert len(splits.train) == 6 and splits.test is None
    check_against_model(splits, MLP, locate=locate)


def test_unknown_source_suggests_names(tmp_path):
    with pytest.raises(ConfigError) as err:
        load({"source": "mnsit"}, tmp_path)
    assert err.value.key == "data.source" and "did you mean 'mnist'" in str(err.value)
    assert "synthetic" in str(err.value)
    assert check_source({"type": "synthetc"}, key="data.source", locate=locate)[0].key \
        == "data.source.type"
    assert check_source({"type": "synthetic", "sampels": 3}, key="data.source", locate=locate)
    assert check_source("my.module:fn", key="data.source", locate=locate) == []


# -- transforms -------------------------------------------------------------------------
def test_unknown_transform_suggests_a_name(tmp_path):
    errors = check_transform({"rescal": 0.1}, key="data.features[1]", locate=locate)
    assert "did you mean 'rescale'" in str(errors[0]) and errors[0].key == "data.features[1]"
    assert check_transform({"reshape": "784"}, key="data.features[0]")[0].key == \
        "data.features[0].reshape"
    assert check_transform({"only": {"image": [{"cast": "flaot32"}]}}, key="k")[0].key == \
        "k.only.image[0].cast"
    with pytest.raises(ConfigError, match="did you mean 'rescale'"):
        load({"source": "synthetic", "features": [{"rescal": 0.1}]}, tmp_path)


def test_one_hot_normalize_and_only(tmp_path):
    np.savez(tmp_path / "d.npz", x_train=np.arange(12.0).reshape(4, 3), y_train=[0, 2, 1, 2])
    sig = Signature(inputs={"a": ((3,), "float32")}, outputs={"o": OutputInfo((3,), "onehot", 3)})
    splits = load({"source": "npz", "path": "d.npz", "targets": [{"one_hot": 3}],
                   "features": [{"only": {"a": [{"normalize": {"mean": 1.0, "std": 2.0}}]}}]},
                  tmp_path, sig=sig)
    np.testing.assert_array_equal(splits.train.y[1], [0, 0, 1])
    assert splits.train.x.dtype == np.float32 and splits.train.x[0, 0] == -0.5
    with pytest.raises(DataError, match=r"label 7 .*one_hot: 3"):
        np.savez(tmp_path / "e.npz", x_train=np.zeros((2, 3)), y_train=[0, 7])
        load({"source": "npz", "path": "e.npz", "targets": [{"one_hot": 3}]}, tmp_path, sig=sig)


# -- checks against the model --------------------------------------------------------------
def test_label_out_of_range_names_label_output_and_classes():
    y = np.array([0, 3, 10, 2])
    splits = Splits(train=Split(np.zeros((4, 784), np.float32), y))
    with pytest.raises(DataError) as err:
        check_against_model(splits, MLP, locate=locate)
    text = str(err.value)
    assert "label 10" in text and "'predictions'" in text and "10 classes" in text
    assert "sample 2" in text


def test_shape_mismatch_names_the_input_and_suggests_reshape():
    splits = Splits(train=Split(np.zeros((4, 28, 28), np.float32), np.zeros(4, int)))
    with pytest.raises(DataError) as err:
        check_against_model(splits, MLP, locate=locate)
    assert "input 'digits'" in str(err.value) and "(784,)" in str(err.value)
    assert "(28, 28)" in str(err.value) and "{reshape: [784]}" in str(err.value)


def test_nan_features_empty_split_and_onehot_mismatch():
    x = np.zeros((4, 784), np.float32)
    x[2, 5] = np.nan
    with pytest.raises(DataError, match=r"NaN or infinite values in 1 sample.*sample 2"):
        check_against_model(Splits(train=Split(x, np.zeros(4, int))), MLP, locate=locate)
    empty = Splits(train=Split(np.zeros((4, 784)), np.zeros(4, int)),
                   validation=Split(np.zeros((0, 784)), np.zeros(0, int)))
    with pytest.raises(DataError, match="validation data: the split is empty"):
        check_against_model(empty, MLP, locate=locate)
    sig = Signature(inputs=MLP.inputs, outputs={"p": OutputInfo((10,), "onehot", 10)})
    with pytest.raises(DataError, match=r"add \{one_hot: 10\}"):
        check_against_model(Splits(train=Split(np.zeros((4, 784)), np.zeros(4, int))), sig,
                            locate=locate)


def test_sample_weights_one_per_sample_or_per_step_else_a_data_error():
    x, y = np.zeros((4, 784), np.float32), np.zeros(4, int)
    for good in (np.ones(4), np.ones((4, 1))):
        check_against_model(Splits(train=Split(x, y, good)), MLP, locate=locate)
    with pytest.raises(DataError, match=r"sample_weight has shape \(4, 3\); output "
                                        r"'predictions' takes \(N,\) or \(N, 1\)\n"):
        check_against_model(Splits(train=Split(x, y, np.ones((4, 3)))), MLP, locate=locate)
    # a sequence output: one weight per time step too, named by output
    seq = Signature(inputs=MLP.inputs, outputs={"tags": OutputInfo((7,), "sparse", 5)})
    ids = np.zeros((4, 7), int)
    check_against_model(Splits(train=Split(x, {"tags": ids}, {"tags": np.ones((4, 7))})), seq,
                        locate=locate)
    with pytest.raises(DataError, match=r"sample_weight\['tags'\] has shape \(4, 6\);.*"
                                        r"or \(N, 7\) for one weight per step"):
        check_against_model(Splits(train=Split(x, {"tags": ids}, {"tags": np.ones((4, 6))})),
                            seq, locate=locate)


# -- tf.data --------------------------------------------------------------------------------
def _orders(ds, epochs: int) -> list[list[int]]:
    return [[int(v) for x, y in ds for v in y.numpy()] for _ in range(epochs)]


def test_make_dataset_order_is_a_function_of_the_seed():
    split = Split(np.arange(100, dtype=np.float32)[:, None].repeat(3, 1), np.arange(100))
    first = _orders(make_dataset(split, batch_size=16, shuffle=True, seed=7), 3)
    again = _orders(make_dataset(split, batch_size=16, shuffle=True, seed=7), 1)
    other = _orders(make_dataset(split, batch_size=16, shuffle=True, seed=8), 1)
    assert first[0] == again[0] != other[0]
    assert first[0] != first[1] and sorted(first[1]) == list(range(100))
    resumed = _orders(make_dataset(split, batch_size=16, shuffle=True, seed=7, initial_epoch=2), 1)
    assert resumed[0] == first[2]
    assert _orders(make_dataset(split, batch_size=16, shuffle=False, seed=None), 1)[0] == \
        list(range(100))
    buffered = _orders(make_dataset(split, batch_size=16, shuffle=10, seed=7), 1)[0]
    assert sorted(buffered) == list(range(100)) and buffered != list(range(100))
    capped = make_dataset(split, batch_size=16, shuffle=True, seed=7, take_batches=2)
    assert [int(y.shape[0]) for _, y in capped] == [16, 16]
    shapes = [tuple(x.shape) for x, _ in make_dataset(split, batch_size=32, shuffle=False)]
    assert shapes == [(32, 3), (32, 3), (32, 3), (4, 3)]


def test_make_dataset_dicts_and_sample_weights():
    n = 10
    split = Split(x={"image": np.zeros((n, 4, 4, 3), np.float32),
                     "series": np.arange(n * 5 * 2, dtype=np.float32).reshape(n, 5, 2)},
                  y={"score": np.arange(n, dtype=np.float32), "class": np.arange(n) % 5},
                  sample_weight=np.full(n, 0.5, np.float32))
    batches = list(make_dataset(split, batch_size=4, shuffle=True, seed=0))
    x, y, w = batches[0]
    assert x["image"].shape == (4, 4, 4, 3) and x["series"].shape == (4, 5, 2)
    assert y["class"].shape == (4,) and w.shape == (4,)
    # rows stay together: the score is the sample index, the series starts at 10 * index
    np.testing.assert_array_equal(x["series"].numpy()[:, 0, 0], y["score"].numpy() * 10)
    only_x = next(iter(make_dataset(Split(np.zeros((3, 2))), batch_size=2)))
    assert len(only_x) == 1 and only_x[0].shape == (2, 2)


def test_importing_data_does_not_import_tensorflow():
    code = ("import sys, trainctl.data, trainctl.data.transforms, trainctl.data.sources; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_keras_fit_on_multi_input_multi_output_synthetic_data(tmp_path):
    import keras

    image, series = keras.Input((8, 8, 3), name="image"), keras.Input((None, 10), name="series")
    merged = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(image),
                                         keras.layers.GlobalAveragePooling1D()(series)])
    model = keras.Model([image, series], [keras.layers.Dense(1, name="score")(merged),
                                          keras.layers.Dense(5, name="cls")(merged)])
    model.compile("sgd", loss={"score": "mse", "cls": "sparse_categorical_crossentropy"})
    sig = Signature({"image": ((8, 8, 3), "float32"), "series": ((None, 10), "float32")},
                    {"score": OutputInfo((1,), "regression"), "cls": OutputInfo((), "sparse", 5)})
    splits = load({"source": {"type": "synthetic", "samples": 32}, "validation": {"split": 0.25}},
                  tmp_path, sig=sig)
    check_against_model(splits, sig, locate=locate)
    history = model.fit(make_dataset(splits.train, batch_size=8, shuffle=True, seed=0),
                        validation_data=make_dataset(splits.validation, batch_size=8),
                        epochs=1, verbose=0, shuffle=False)
    assert {"score_loss", "cls_loss", "val_loss"} <= set(history.history)


# -- bad files and bad values, at the numpy level -------------------------------------------
def test_first_nonfinite_scans_in_chunks_and_finds_the_first(monkeypatch):
    from trainctl.data import checks

    monkeypatch.setattr(checks, "_CHUNK", 10)  # 2 samples of (5,) per chunk
    a = np.zeros((9, 5), np.float32)
    assert checks.first_nonfinite(a) is None
    a[8, 4], a[5, 1] = np.inf, np.nan
    assert checks.first_nonfinite(a) == (5, 1)
    assert checks.first_nonfinite(np.arange(6)) is None  # integers cannot be NaN
    assert checks.first_nonfinite(np.zeros((3, 0))) is None
    with pytest.raises(DataError, match=r"validation data: input 'digits': NaN or infinite "
                                        r"values in 2 sample\(s\); the first is sample 5 "
                                        r"\(index \[5, 1\] is nan\)"):
        x = np.zeros((9, 784), np.float32)
        x[5, 1], x[8, 4] = np.nan, np.inf
        check_against_model(Splits(train=Split(np.zeros((2, 784), np.float32), np.zeros(2, int)),
                                   validation=Split(x, np.zeros(9, int))), MLP, locate=locate)


def test_the_quick_all_finite_test_never_passes_a_bad_value():
    from trainctl.data.checks import all_finite_by_sums, first_nonfinite

    a = np.ones((4, 3, 2), np.float32)
    assert all_finite_by_sums(a)
    for bad in (np.nan, np.inf, -np.inf):
        b = a.copy()
        b[2, 1, 0] = bad
        assert not all_finite_by_sums(b)
        assert first_nonfinite(b) == (2, 1, 0)
    # sums that overflow: finite values, so the exact scan must clear them
    huge = np.full((3, 4), 3e38, np.float32)
    assert not all_finite_by_sums(huge)
    assert first_nonfinite(huge) is None
    # a strided view is not summed (that would copy it) but still scanned
    view = np.zeros((6, 4), np.float64)[:, ::2]
    view[4, 1] = np.nan
    assert not all_finite_by_sums(view)
    assert first_nonfinite(view) == (4, 1)


def test_read_npz_names_what_is_wrong(tmp_path):
    import zipfile

    from trainctl.data.files import read_npz

    with zipfile.ZipFile(tmp_path / "model.keras", "w") as archive:  # data.path -> a model
        archive.writestr("config.json", "{}")
    with pytest.raises(DataError, match=r"k.yaml:3:4: data.path: .*model.keras: not a readable "
                                        r".npz file: it is a zip archive, but 'config.json'"):
        read_npz(tmp_path / "model.keras", "k.yaml:3:4: data.path")
    np.savez(tmp_path / "ok.npz", a=np.arange(3))
    arrays, sha = read_npz(tmp_path / "ok.npz")
    assert list(arrays) == ["a"] and len(sha) == 64


def test_transforms_make_aligned_arrays_that_datasets_share_without_a_copy():
    """The data set is held once: rescale's float32 array is 64-byte aligned, and the
    dataset reads that very memory (a change to the array shows in the next batch);
    an unaligned array is copied (TensorFlow would abort on it)."""
    from trainctl.data.memory import ALIGN, aligned_empty, as_tensor, shareable
    from trainctl.data.transforms import apply_transforms

    images = np.arange(2048 * 784, dtype=np.int64).reshape(2048, 28, 28) % 256
    x = apply_transforms(images.astype(np.uint8), MNIST_FEATURES, key="data.features")
    assert x.dtype == np.float32 and x.ctypes.data % ALIGN == 0 and shareable(x)
    np.testing.assert_allclose(x[5], images[5].reshape(784) / 255.0, rtol=1e-6)
    for spec in ({"normalize": {"mean": 0.5, "std": 2.0}}, {"cast": "float64"},
                 {"one_hot": 10}):
        source = x if "one_hot" not in spec else (images[:, 0, 0] % 10)
        out = apply_transforms(source, [spec], key="data.features")
        assert out.ctypes.data % ALIGN == 0, spec
    labels = (images[:, 0, 0] % 10).astype(np.uint8)

    ds = make_dataset(Split(x, labels), batch_size=4, shuffle=False)
    x[0] = 7.0  # the dataset gathers from the array itself, not from a copy
    first, y = next(iter(ds))
    assert float(first[0, 0]) == 7.0 and list(y.numpy()) == list(labels[:4])

    unaligned = aligned_empty((x.size + 1,), np.float32)[1:].reshape(x.shape)
    unaligned[:] = x
    assert not shareable(unaligned)
    copied = as_tensor(unaligned)
    unaligned[0] = -1.0
    assert float(copied[0, 0]) == 7.0  # its own copy


def test_a_users_own_loss_takes_the_targets_it_wants(capsys):
    """A plug-in loss's targets cannot be told from its name: class ids for a 3-unit
    output are fine (they were refused as 'expects targets of shape (3,)'); a sparse
    metric beside it still has the labels checked."""
    from trainctl.run.plan import output_kind

    assert output_kind("my_losses:sparse_ce") == "any"
    assert output_kind("my_losses:sparse_ce", ["sparse_categorical_accuracy"]) == "sparse"
    assert output_kind({"type": "keras.losses:MeanSquaredError"}) == "regression"
    assert output_kind("mse") == "regression" and output_kind(None) == "regression"
    ids = Splits(train=Split(np.zeros((6, 4), np.float32), np.array([0, 2, 1, 0, 2, 1])))
    check_against_model(ids, Signature(inputs={"x": ((4,), "float32")},
                                       outputs={"out": OutputInfo((3,), "any")}), locate=locate)
    # a word, though: a regression loss of the user's would broadcast them
    assert "output 'out' gives (3,) per sample and its targets are ()" in capsys.readouterr().err
    with pytest.raises(DataError, match="expects targets of shape"):
        check_against_model(ids, Signature(inputs={"x": ((4,), "float32")},
                                           outputs={"out": OutputInfo((3,), "regression")}),
                            locate=locate)


# -- csv ----------------------------------------------------------------------------------
IRIS = ("sepal_length,sepal_width,petal_length,petal_width,species\n"
        "5.1,3.5,1.4,0.2,setosa\n7.0,3.2,4.7,1.4,versicolor\n6.3,3.3,6.0,2.5,virginica\n"
        "\n"  # a blank line is skipped
        "4.9,3.0,1.4,0.2,setosa\n")
TABLE = Signature(inputs={"x": ((4,), "float32")}, outputs={"out": OutputInfo((), "sparse", 3)})


def test_csv_words_become_class_ids_and_the_test_file_uses_them(tmp_path, capsys):
    (tmp_path / "iris.csv").write_text(IRIS)
    (tmp_path / "test.csv").write_text(IRIS.splitlines()[0] + "\n6.0,2.2,5.0,1.5,virginica\n")
    splits = load({"source": {"type": "csv", "label": "species", "test": "test.csv"},
                   "path": "iris.csv"}, tmp_path, sig=TABLE)
    assert splits.train.x.dtype == np.float32 and splits.train.x.shape == (4, 4)
    assert splits.train.x[1].tolist() == pytest.approx([7.0, 3.2, 4.7, 1.4])
    assert splits.train.y.tolist() == [0, 1, 2, 0] and splits.test.y.tolist() == [2]
    assert set(splits.files) == {str(tmp_path / "iris.csv"), str(tmp_path / "test.csv")}
    assert "label 'species' holds words: setosa=0, versicolor=1, virginica=2" in \
        capsys.readouterr().out
    # numbers in the label column: class ids as they are; features: a chosen subset
    (tmp_path / "n.csv").write_text("a,b,c,y\n1,2,3,0\n4,5,6,2\n")
    two = Signature(inputs={"x": ((2,), "float32")}, outputs={"out": OutputInfo((), "sparse", 3)})
    splits = load({"source": {"type": "csv", "label": "y", "features": ["c", "a"]},
                   "path": "n.csv"}, tmp_path, sig=two)
    assert splits.train.x.tolist() == [[3, 1], [6, 4]] and splits.train.y.dtype == np.int64
    assert splits.test is None


@pytest.mark.parametrize("text, source, words", [
    ("a,b,y\n1,,0\n", {}, "line 2, column 'b': an empty cell"),
    ("a,b,y\n1,x2,0\n", {}, "line 2, column 'b': 'x2', not a number"),
    ("a,b,y\n1,2\n", {}, "line 2 has 2 field(s); the header has 3"),
    ("", {}, "the file is empty"),
    ("a,b,y\n", {}, "only a header row (a, b, y); no data rows"),
    ("a;b;y\n1;2;0\n", {}, "hint: the header is one field holding ';': set the source's "
                           "delimiter: ';'"),
    ("a,b,label\n1,2,0\n", {"label": "lable"}, "no column 'lable' (did you mean 'label'?)"),
    ("a,b,y\n1,2,0\n", {"delimiter": ";;"}, "expected one character"),
])
def test_csv_problems_name_the_file_line_and_column(tmp_path, text, source, words):
    (tmp_path / "d.csv").write_text(text)
    two = Signature(inputs={"x": ((2,), "float32")}, outputs={"out": OutputInfo((), "sparse", 3)})
    with pytest.raises((DataError, ConfigError)) as exc:
        load({"source": {"type": "csv", "label": "y", **source}, "path": "d.csv"}, tmp_path,
             sig=two)
    assert words in str(exc.value)
    assert str(tmp_path / "d.csv") in str(exc.value) or "delimiter" in str(exc.value)
