"""Bad data files, bad run folders and bad run names: exit 2, one screen, nothing left behind.

Every case runs ``trainctl fit`` through CliRunner on a tiny npz (or synthetic)
dataset and checks the contract of issue 4: exit code 2, no traceback, at most
one screen, the file (and, for config values, ``file:line`` and the key) named,
and no run folder created.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from test_errors import GOOD
from trainctl.cli import cli

NPZ_SOURCE = "  source: npz\n  path: d.npz\n"
SYNTH_SOURCE = "  source: {type: synthetic, samples: 64, test_samples: 16}\n"
assert SYNTH_SOURCE in GOOD


def npz_config(write_config, validation: str = "") -> Path:
    """GOOD (input x of shape (6,), sparse output 'out' of 3 units) reading ``d.npz``."""
    return write_config(GOOD.replace(SYNTH_SOURCE, NPZ_SOURCE + validation))


def arrays(n: int = 20, n_test: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return dict(x_train=rng.random((n, 6), dtype=np.float32), y_train=np.arange(n) % 3,
                x_test=rng.random((n_test, 6), dtype=np.float32), y_test=np.arange(n_test) % 3)


def fit(cfg: Path, tmp_path: Path, *extra: str):
    return CliRunner().invoke(cli, ["fit", str(cfg), "--runs-dir", str(tmp_path / "runs"),
                                    *extra])


def assert_refused(result, runs: Path, *words: str) -> str:
    """Exit 2, one screen, no traceback, every word in the message, no run folder."""
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert output.startswith("error: ") and len(output.splitlines()) <= 25, output
    for word in words:
        assert word in output, f"{word!r} not in:\n{output}"
    assert not runs.exists() or not any(runs.iterdir()), list(runs.iterdir())
    return output


# -- data -------------------------------------------------------------------------------
def test_label_out_of_range_names_label_layer_and_classes(write_config, tmp_path):
    cfg = npz_config(write_config)
    data = arrays()
    data["y_train"][5] = -1
    np.savez(tmp_path / "d.npz", **data)
    assert_refused(fit(cfg, tmp_path), tmp_path / "runs", f"{cfg}:4:", "training data",
                   "label -1 (sample 5", "output 'out'", "3 classes", "layer 'out'")


@pytest.mark.parametrize("split,array,index,value,words", [
    ("x_train", "x", (3, 2), np.nan, ["training data", "input 'x'", "sample 3", "[3, 2]",
                                       "nan"]),
    ("y_train", "y", (4,), np.inf, ["training data", "targets of output 'out'", "sample 4",
                                     "inf"]),
    ("x_test", "x", (1, 0), -np.inf, ["test data", "input 'x'", "sample 1", "[1, 0]"]),
    ("x_train", "x", (18, 5), np.nan, ["validation data", "input 'x'", "sample 3", "[3, 5]"]),
])
def test_nan_or_inf_names_split_array_and_first_index(write_config, tmp_path, split, array,
                                                      index, value, words):
    cfg = npz_config(write_config, "  validation: {holdout: 5}\n")
    data = arrays()
    data[split] = data[split].astype(np.float32)
    data[split][index] = value
    np.savez(tmp_path / "d.npz", **data)
    assert_refused(fit(cfg, tmp_path), tmp_path / "runs", f"{cfg}:4:", "NaN or infinite",
                   "1 sample(s)", *words)


@pytest.mark.parametrize("validation,data,words", [
    ("", dict(x_train=np.zeros((0, 6), np.float32), y_train=np.zeros(0, int)),
     [":4:", "data.source", "training data: the source gave 0 samples"]),
    ("  validation: {holdout: 20}\n", arrays(20),
     [":6:", "data.validation.holdout", "leaves none for training", "has 20"]),
    ("  validation: {split: 0.99}\n", arrays(20),
     [":6:", "data.validation.split", "leaves one side empty"]),
    ("", {**arrays(), "x_test": np.zeros((0, 6), np.float32), "y_test": np.zeros(0, int)},
     [":4:", "test data: the split is empty", "data.test: false"]),
], ids=["no-samples", "holdout-takes-all", "split-leaves-none", "empty-test"])
def test_empty_dataset_or_split(write_config, tmp_path, validation, data, words):
    cfg = npz_config(write_config, validation)
    np.savez(tmp_path / "d.npz", **data)
    output = assert_refused(fit(cfg, tmp_path), tmp_path / "runs", *words)
    assert str(cfg) in output


def _truncated(path: Path) -> None:
    np.savez(path, **arrays())
    path.write_bytes(path.read_bytes()[:100])


def _npy(path: Path) -> None:
    with open(path, "wb") as fh:
        np.save(fh, np.zeros((20, 6)))


@pytest.mark.parametrize("make,words", [
    (_truncated, ["not a readable .npz file", "truncated or corrupt", "100 bytes",
                  "numpy.savez"]),
    (lambda p: p.write_text("id,label\n1,2\n"), ["not a readable .npz file",
                                                 "an .npz is a zip archive", "b'id,label'"]),
    (lambda p: p.write_bytes(b""), ["the file is empty (0 bytes)"]),
    (_npy, ["a single .npy array", "numpy.savez(path, x_train="]),
    (lambda p: np.savez(p, images=np.zeros((4, 6)), labels=np.zeros(4)),
     ["no array 'x_train'", "the file has: images, labels"]),
    (lambda p: p.mkdir(), ["is a folder; expected a file"]),
    (lambda p: np.savez(p, x_train=np.array([None] * 4), y_train=np.zeros(4)),
     ["pickled Python objects"]),
], ids=["truncated-100-bytes", "text-file", "empty-file", "npy-not-npz", "missing-arrays",
        "directory", "object-array"])
def test_bad_data_file_names_file_key_and_line(write_config, tmp_path, make, words):
    cfg = npz_config(write_config)
    make(tmp_path / "d.npz")
    assert_refused(fit(cfg, tmp_path), tmp_path / "runs", f"{cfg}:5:9: data.path:",
                   str(tmp_path / "d.npz"), *words)


def test_unreadable_data_file(write_config, tmp_path, monkeypatch):
    cfg = npz_config(write_config)
    np.savez(tmp_path / "d.npz", **arrays())
    target, read_bytes = (tmp_path / "d.npz").resolve(), Path.read_bytes

    def refuse(self):  # tests run as root, who may read anything: simulate chmod 000
        if self == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert_refused(fit(cfg, tmp_path), tmp_path / "runs", f"{cfg}:5:9: data.path:",
                   str(target), "Permission denied", "check the file's permissions")


def test_mnist_source_with_a_truncated_file(write_config, tmp_path):
    cfg = write_config(GOOD.replace(SYNTH_SOURCE, "  source: mnist\n  path: m.npz\n"))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "m.npz", x_train=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
             y_train=np.arange(10), x_test=np.zeros((2, 28, 28), np.uint8), y_test=[0, 1])
    (tmp_path / "m.npz").write_bytes((tmp_path / "m.npz").read_bytes()[:100])
    assert_refused(fit(cfg, tmp_path), tmp_path / "runs", f"{cfg}:5:9: data.path:",
                   "truncated or corrupt")


def test_shape_mismatch_names_input_expected_and_received(write_config, tmp_path):
    cfg = npz_config(write_config)
    np.savez(tmp_path / "d.npz", **{**arrays(), "x_train": np.zeros((20, 2, 3), np.float32)})
    assert_refused(fit(cfg, tmp_path), tmp_path / "runs", f"{cfg}:4:", "input 'x'",
                   "expects samples of shape (6,)", "the data has (2, 3)", "{reshape: [6]}")


def test_arrays_of_different_lengths(write_config, tmp_path):
    cfg = npz_config(write_config)
    np.savez(tmp_path / "d.npz", **{**arrays(), "y_train": np.zeros(7, int)})
    assert_refused(fit(cfg, tmp_path), tmp_path / "runs", f"{cfg}:4:",
                   "same number of samples", "x: 20, y: 7")


# -- the runs directory ---------------------------------------------------------------------
def synth_config(write_config, name: str = "err") -> Path:
    return write_config(GOOD.replace("name: err", f"name: {name}"))


def test_runs_dir_below_a_regular_file(write_config, tmp_path):
    cfg = synth_config(write_config)
    (tmp_path / "afile").write_text("not a folder")
    result = CliRunner().invoke(cli, ["fit", str(cfg), "--runs-dir",
                                      str(tmp_path / "afile" / "runs")])
    assert_refused(result, tmp_path / "runs", str(tmp_path / "afile" / "runs"),
                   f"{tmp_path / 'afile'} is a file, not a folder", "--runs-dir")
    assert (tmp_path / "afile").read_text() == "not a folder"


def _fail_under(root: Path, code: int):
    """An os.mkdir that raises OSError(code) for paths inside ``root`` (a read-only disk)."""
    real = os.mkdir

    def mkdir(path, *args, **kwargs):
        if Path(path).resolve().is_relative_to(root.resolve()) and Path(path) != root:
            raise OSError(code, os.strerror(code), str(path))
        return real(path, *args, **kwargs)
    return mkdir


def test_read_only_runs_dir(write_config, tmp_path, monkeypatch):
    cfg = synth_config(write_config)
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(os, "mkdir", _fail_under(runs, errno.EROFS))
    output = assert_refused(fit(cfg, tmp_path), runs, f"{runs}/err-",
                            "Read-only file system", "--runs-dir")
    assert "cannot create the run folder" in output


def test_full_disk_when_the_run_folder_is_made(write_config, tmp_path, monkeypatch):
    cfg = synth_config(write_config)
    runs = tmp_path / "runs"
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):  # no file can be written under runs/
        if dir is not None and Path(dir).resolve().is_relative_to(runs.resolve()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    output = assert_refused(fit(cfg, tmp_path), runs, f"{runs}/err-",
                            "No space left on device", "the disk is full")
    assert "cannot write in the run folder" in output


def test_full_disk_after_the_run_folder_is_made(write_config, tmp_path, monkeypatch):
    from trainctl import artifacts

    cfg = synth_config(write_config)
    monkeypatch.setattr(artifacts, "atomic_write", lambda path, data: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))))
    assert_refused(fit(cfg, tmp_path), tmp_path / "runs", "config.yaml",
                   "No space left on device")


BAD_NAMES = ["../x", "/abs", "a/b", "", "..", ".", "-x"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_config_name_cannot_leave_the_runs_dir(write_config, tmp_path, name):
    cfg = synth_config(write_config, repr(name).replace("'", '"'))
    output = assert_refused(fit(cfg, tmp_path), tmp_path / "runs", f"{cfg}:1:7: name:")
    assert repr(name) in output


@pytest.mark.parametrize("name", BAD_NAMES + ["abc\n", "a\tb"])
def test_cli_name_cannot_leave_the_runs_dir(write_config, tmp_path, name):
    cfg = synth_config(write_config)
    output = assert_refused(fit(cfg, tmp_path, "--name", name), tmp_path / "runs", "name")
    assert repr(name) in output
    assert not (tmp_path / "x").exists() and not Path("/abs").exists()


def test_config_name_with_a_newline_is_refused_with_its_key(write_config, tmp_path):
    cfg = synth_config(write_config, '"abc\\n"')
    output = assert_refused(fit(cfg, tmp_path), tmp_path / "runs")
    assert re.search(rf"{re.escape(str(cfg))}:1:\d+: name:", output), output


def test_fit_with_a_device_tensorflow_cannot_parse(write_config, tmp_path):
    cfg = synth_config(write_config)
    result = fit(cfg, tmp_path, "--set",
                 "runtime.distribution={strategy: one_device, device: garbage}")
    assert_refused(result, tmp_path / "runs", "runtime.distribution.device",
                   "TensorFlow cannot set up this distribution", "/cpu:0")


# -- predict --input ----------------------------------------------------------------------
def _object_array(path: Path) -> None:
    with open(path, "wb") as file:  # a file object: np.save would add .npy to a name
        np.save(file, np.array([1, "a", None], dtype=object))


@pytest.mark.parametrize("make, words, absent", [
    # a text file holds no pickle: say it has no .npy header, and how to convert it
    (lambda p: p.write_text("hello"), ["no .npy header: it is a text file, starting b'hello'",
                                       "(5 bytes)", "numpy.loadtxt"], "pickle"),
    (lambda p: p.write_bytes(bytes(range(200, 256))), ["no .npy header: it is something else",
                                                       "(56 bytes)"], "pickle"),
    (lambda p: p.write_bytes(b""), ["the file is empty (0 bytes)"], "pickle"),
    (lambda p: p.write_bytes(__import__("pickle").dumps([1, 2])),
     ["it is a Python pickle, which trainctl does not load"], "no .npy header"),
    (_object_array, ["it holds an array of Python objects (dtype=object, stored pickled)"],
     "no .npy header"),
], ids=["text", "binary", "empty", "pickle", "object-array"])
def test_predict_input_that_is_no_array_says_what_it_is(tmp_path, make, words, absent):
    from trainctl.errors import DataError
    from trainctl.run.predict import read_input

    path = tmp_path / "x.txt"
    make(path)
    with pytest.raises(DataError) as exc:
        read_input(path, model=None)  # the model is only asked about an .npz's names
    text = str(exc.value)
    assert text.startswith(f"--input: {path}: not a readable .npy/.npz array file: "), text
    for word in words:
        assert word in text, text
    assert absent not in text, text
    assert "\n  hint: save the arrays with numpy.save" in text


def test_full_disk_while_the_state_is_written_beside_the_training(write_config, tmp_path,
                                                                  monkeypatch):
    """The resumable state is written on a background thread: its failure still fails the
    run (exit 1, status failed, the error named), never a run reported complete."""
    import json

    from trainctl.run import state

    cfg = synth_config(write_config)
    monkeypatch.setattr(state, "write_state", lambda path, snapshot: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))))
    result = fit(cfg, tmp_path)
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output and "Traceback" not in result.output
    (folder,) = (tmp_path / "runs").iterdir()
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "failed" and "No space left" in info["exit_reason"]
