"""Reopening a run: damaged model.keras files and Keras's safe mode (reopen(unsafe=...))."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from test_errors import GOOD
from trainctl.cli import cli
from trainctl.errors import UsageError
from trainctl.run.reload import UNSAFE_HINT, reopen


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One finished smoke run of GOOD (x: (6,) -> hidden Dense 8 -> out Dense 3 softmax)."""
    folder = tmp_path_factory.mktemp("reload")
    cfg = folder / "exp.yaml"
    cfg.write_text(GOOD, encoding="utf-8")
    result = CliRunner().invoke(cli, ["fit", str(cfg), "--smoke", "--runs-dir",
                                      str(folder / "runs")])
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A private copy of the finished run, free to damage."""
    return Path(shutil.copytree(trained, tmp_path / trained.name))


def invoke(verb: str, run: Path, *extra: str):
    return CliRunner().invoke(cli, [verb, str(run), *extra])


def assert_refused(result, *words: str) -> str:
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output and output.startswith("error: ")
    assert len(output.splitlines()) <= 25
    for word in words:
        assert word in output, f"{word!r} not in:\n{output}"
    return output


def _cut(fraction: float):
    def cut(path: Path) -> None:
        data = path.read_bytes()
        path.write_bytes(data[:100] if fraction == 0 else data[:int(len(data) * fraction)])
    return cut


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def _not_a_model(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


DAMAGE = [
    ("first-100-bytes", _cut(0), "truncated or corrupt"),
    ("half", _cut(0.5), "truncated or corrupt"),
    ("empty", lambda p: p.write_bytes(b""), "an empty file (0 bytes)"),
    ("text", lambda p: p.write_text("not a model"), "not a zip archive"),
    ("bad-crc", _flip_middle, "the file is corrupt"),
    ("zip-without-config", _not_a_model, "no config.json in it"),
    ("folder", _folder, "is a folder"),
]


@pytest.mark.parametrize("verb", ["evaluate", "predict"])
@pytest.mark.parametrize("damage", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_model_file_is_exit_2_naming_it(run, verb, damage):
    _id, damage_it, words = damage
    model = run / "model.keras"
    damage_it(model)
    before = (run / "run.json").read_text()
    assert_refused(invoke(verb, run), str(model), words)
    assert (run / "run.json").read_text() == before  # nothing recorded


def test_unreadable_model_file(run, monkeypatch):
    import errno
    import os

    model, real_open = run / "model.keras", Path.open

    def refuse(self, *args, **kwargs):  # we run as root: simulate chmod 000
        if self == model:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    assert_refused(invoke("evaluate", run), str(model), "Permission denied")


def test_corrupt_run_json(run):
    (run / "run.json").write_text("[1, 2]")
    assert_refused(invoke("evaluate", run), str(run / "run.json"), "expected a JSON object")
    (run / "run.json").write_text("{not json")
    assert_refused(invoke("predict", run), str(run / "run.json"), "cannot read")


def _with_lambda(run: Path) -> None:
    """Replace the run's model by the same graph with a Lambda layer (Python bytecode)."""
    import keras

    x = keras.Input((6,), name="x")
    h = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    h = keras.layers.Lambda(lambda t: t * 2.0, name="doubled")(h)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    keras.Model(x, out).save(run / "model.keras")


@pytest.mark.parametrize("verb", ["evaluate", "predict"])
def test_safe_mode_refuses_a_lambda_and_says_how_to_allow_it(run, verb):
    _with_lambda(run)
    output = assert_refused(invoke(verb, run), str(run / "model.keras"), "safe mode",
                            "Lambda", UNSAFE_HINT)
    assert "pass --unsafe to evaluate/predict if you trust this file" in output


def test_reopen_is_safe_by_default_and_unsafe_on_request(run, tmp_path):
    from trainctl.run.evaluate import evaluate
    from trainctl.run.predict import predict

    _with_lambda(run)
    with pytest.raises(UsageError, match="pass --unsafe"):
        reopen(run)
    with pytest.raises(UsageError, match="pass --unsafe"):
        reopen(run, unsafe=False)
    _run, _cfg, model = reopen(run, unsafe=True)
    assert "doubled" in [layer.name for layer in model.layers]
    assert model.predict(np.zeros((2, 6), np.float32), verbose=0).shape == (2, 3)
    metrics = evaluate(run, unsafe=True)
    assert set(metrics) == {"loss", "sparse_categorical_accuracy"}
    path, y = predict(run, input_path=None, output_path=tmp_path / "y.npy", unsafe=True)
    assert np.load(path).shape == (16, 3)
    kinds = [r["kind"] for r in json.loads((run / "run.json").read_text())["records"]]
    assert kinds == ["evaluate", "predict"]


@pytest.mark.parametrize("verb", ["evaluate", "predict"])
def test_unsafe_flag_loads_a_lambda_model(run, verb, tmp_path):
    _with_lambda(run)
    extra = ["--output", str(tmp_path / "y.npy")] if verb == "predict" else []
    result = invoke(verb, run, "--unsafe", *extra)
    assert result.exit_code == 0, result.output
    assert ("test - loss:" in result.output) if verb == "evaluate" else \
        np.load(tmp_path / "y.npy").shape == (16, 3)


def test_an_intact_run_still_loads(run):
    result = invoke("evaluate", run)
    assert result.exit_code == 0, result.output


# -- predict --input --------------------------------------------------------------------------
def test_predict_input_errors_name_the_file_input_and_shapes(run, tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((4, 7), np.float32))
    assert_refused(invoke("predict", run, "--input", str(tmp_path / "wide.npy")),
                   str(tmp_path / "wide.npy"), "input 'x'", "(N, 6)", "(4, 7)")
    nan = np.zeros((4, 6), np.float32)
    nan[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    assert_refused(invoke("predict", run, "--input", str(tmp_path / "nan.npy")),
                   "input 'x'", "NaN or infinite", "sample 2", "[2, 1]")
    np.savez(tmp_path / "named.npz", a=np.zeros((4, 6)), b=np.zeros((4, 6)))
    assert_refused(invoke("predict", run, "--input", str(tmp_path / "named.npz")),
                   "no array for input(s) x", "the file has: a, b")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "named.npz").read_bytes()[:100])
    assert_refused(invoke("predict", run, "--input", str(tmp_path / "cut.npz")),
                   str(tmp_path / "cut.npz"), "truncated or corrupt")
    (tmp_path / "junk.npy").write_text("1,2,3\n")
    assert_refused(invoke("predict", run, "--input", str(tmp_path / "junk.npy")),
                   str(tmp_path / "junk.npy"), "not a readable .npy/.npz")
    np.save(tmp_path / "empty.npy", np.zeros((0, 6), np.float32))
    assert_refused(invoke("predict", run, "--input", str(tmp_path / "empty.npy")),
                   str(tmp_path / "empty.npy"), "holds 0 samples")
    np.savez(tmp_path / "one.npz", arr_0=np.zeros((4, 6), np.float32))  # any lone array
    result = invoke("predict", run, "--input", str(tmp_path / "one.npz"), "--output",
                    str(tmp_path / "y.npy"))
    assert result.exit_code == 0, result.output


def test_a_run_killed_before_its_model_was_saved_points_to_resume(run):
    """A SIGKILLed run says `running` and has no model.keras: evaluate says how to finish it."""
    import json

    (run / "model.keras").unlink()
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "running"}))
    output = assert_refused(invoke("evaluate", run), f"{run / 'model.keras'}: not found (the "
                            "run did not complete (status 'running'))")
    assert (f"hint: `trainctl resume {run}` continues it to the end; --checkpoint best or last "
            "uses checkpoints/") in output


def test_a_checkpoint_is_evaluated_and_predicted_with_on_request(run, tmp_path):
    """--checkpoint best|last: the model of an unfinished run (or the best epoch's)."""
    (run / "model.keras").unlink()
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    before = (run / "metrics.json").read_bytes()
    result = invoke("evaluate", run, "--checkpoint", "last")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("test (last.keras) - loss: ")
    assert (run / "metrics.json").read_bytes() == before  # the final model's, kept
    record = json.loads((run / "run.json").read_text())["records"][-1]
    assert record["kind"] == "evaluate" and record["checkpoint"] == "last"
    assert f"loss: {record['metrics']['loss']:.4f}" in result.output
    out = tmp_path / "y.npy"
    result = invoke("predict", run, "--checkpoint", "last", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (16, 3)
    record = json.loads((run / "run.json").read_text())["records"][-1]
    assert record["kind"] == "predict" and record["checkpoint"] == "last"
    (run / "checkpoints" / "best.keras").unlink(missing_ok=True)
    output = assert_refused(invoke("evaluate", run, "--checkpoint", "best"),
                            f"{run / 'checkpoints' / 'best.keras'}: not found")
    assert "--checkpoint last uses checkpoints/" in output


def test_arrays_a_two_input_model_cannot_take_are_data_errors(tmp_path):
    import keras

    from trainctl.errors import DataError
    from trainctl.run.predict import check_shape, predict_input

    a, b = keras.Input((3,), name="a"), keras.Input((None, 2), name="b")
    pooled = keras.layers.GlobalMaxPooling1D()(keras.layers.Conv1D(2, 3)(b))
    model = keras.Model([a, b], keras.layers.Concatenate()([a, pooled]))
    path = tmp_path / "x.npz"
    with pytest.raises(DataError, match=r"different numbers of samples \('a': 4, 'b': 5\)"):
        check_shape({"a": np.zeros((4, 3)), "b": np.zeros((5, 6, 2))}, model, path)
    short = {"a": np.zeros((4, 3), np.float32), "b": np.zeros((4, 2, 2), np.float32)}
    check_shape(short, model, path)  # the shapes fit the inputs; the length is too short
    with pytest.raises(DataError) as exc:
        predict_input(model, short, 8, path)
    assert str(exc.value).startswith(f"--input: {path}: the model cannot take these arrays: ")
    assert "shaped as for training" in str(exc.value)
    good = {"a": np.zeros((4, 3), np.float32), "b": np.zeros((4, 5, 2), np.float32)}
    assert predict_input(model, good, 8, path).shape == (4, 5)


def test_changed_plugins_and_data_are_named_before_their_results(run):
    """evaluate/predict warn when run.json's hashes of plug-ins and data files differ from
    what they read now (a user edited a plug-in or replaced the data)."""
    info = json.loads((run / "run.json").read_text())
    info.update(plugins={"my_layers": "ab12"}, data_files={"/data/d.npz": "cd34"})
    (run / "run.json").write_text(json.dumps(info))
    for verb in ("evaluate", "predict"):
        result = invoke(verb, run)
        assert result.exit_code == 0, result.output
        assert ("warning: plug-in module my_layers is not used any more since the run was "
                "trained: results may differ from the run's") in result.stderr
        assert "warning: data file /data/d.npz is not used any more" in result.stderr


def test_changed_inputs_compares_hashes_and_data_by_content():
    from trainctl.run.reload import changed_inputs

    info = {"plugins": {"a": "1", "b": "2"}, "data_files": {"/old/d.npz": "9"}}
    assert changed_inputs(info, plugins={"a": "1", "b": "3", "c": "4"}) == [
        "plug-in module b changed since the run was trained",
        "plug-in module c is new since the run was trained"]
    # the same bytes from another folder (another TRAINCTL_DATA_DIR) are the same data
    assert changed_inputs(info, data_files={"/new/d.npz": "9"}) == []
    assert changed_inputs(info, data_files={"/old/d.npz": "8"}) == [
        "data file /old/d.npz changed since the run was trained"]
    assert changed_inputs({}, plugins={"a": "1"}) == []  # a run.json without hashes


def test_predict_warns_about_inputs_far_outside_the_training_range(run, tmp_path):
    """The commonest predict mistake: raw values (0-255 pixels) for a model trained on the
    transformed ones. run.json records the training range; predict compares."""
    ranges = json.loads((run / "run.json").read_text())["input_ranges"]
    low, high = ranges["x"]
    assert low < high
    np.save(tmp_path / "raw.npy", np.full((4, 6), high + 100 * (high - low), np.float32))
    result = invoke("predict", run, "--input", str(tmp_path / "raw.npy"), "--output",
                    str(tmp_path / "y.npy"))
    assert result.exit_code == 0, result.output
    assert f"warning: --input {tmp_path / 'raw.npy'}: input 'x' holds values in" in result.stderr
    assert "which predict --input does not apply" in result.stderr
    inside = np.linspace(low, high, 24, dtype=np.float32).reshape(4, 6)
    np.save(tmp_path / "ok.npy", inside)
    result = invoke("predict", run, "--input", str(tmp_path / "ok.npy"), "--output",
                    str(tmp_path / "y.npy"))
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output


def test_input_ranges_sample_the_training_inputs():
    from trainctl.data.types import Split
    from trainctl.run.input_range import SAMPLE, input_ranges, out_of_range

    x = np.zeros((SAMPLE + 10, 3), np.float32)
    x[:SAMPLE, 0] = 1.0
    x[SAMPLE:, 0] = 99.0  # past the sample: not read
    assert input_ranges(Split(x=x), ["a"]) == {"a": [0.0, 1.0]}
    assert input_ranges(Split(x={"a": x, "s": np.array(["t"] * 5)}), ["a", "s"]) == \
        {"a": [0.0, 1.0]}  # strings have no range
    assert out_of_range({"a": [0.0, 1.0]}, {"a": np.array([[0.5, 1.9, -0.9]])}) == []
    [line] = out_of_range({"a": [0.0, 1.0]}, {"a": np.array([[0, 255]], np.uint8)})
    assert line.startswith("input 'a' holds values in [0, 255]; the model was trained on [0, 1]")
