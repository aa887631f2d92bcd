"""model.weights_from: weights copied by layer name, fine-tuning, transfer to a new head.

One two-epoch MNIST run (100 steps an epoch) is the source of every test here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT, SHARED_DATA, run_python
from trainctl.cli import cli

FINETUNE = ROOT / "configs" / "examples" / "finetune.yaml"
STEPS = "fit.steps_per_epoch=100"

TRANSFER = """\
name: transfer
seed: 5
data:
  source: {{type: synthetic, samples: 128, test_samples: 32}}
  validation: {{holdout: 32}}
model:
  inputs: {{digits: {{shape: [784]}}}}
  weights_from: {source}
  freeze: [dense_1, dense_2]
  layers:
    - {{type: Dense, units: 64, activation: relu, name: dense_1}}
    - {{type: Dense, units: 64, activation: relu, name: dense_2}}
    - {{type: Dense, units: 2, activation: softmax, name: {head}}}
compile:
  optimizer: {{type: Adam, learning_rate: 0.01}}
  loss: sparse_categorical_crossentropy
  metrics: [sparse_categorical_accuracy]
fit: {{epochs: 1, batch_size: 32}}
"""


def invoke(*args) -> "object":
    return CliRunner().invoke(cli, [str(a) for a in args])


def run_folder(result) -> Path:
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


def weights(model_file: Path) -> dict[str, list[np.ndarray]]:
    import keras

    model = keras.saving.load_model(model_file, compile=False)
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def identical(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y)
                                    for x, y in zip(a, b))


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A finished two-epoch MNIST run of configs/mnist.yaml (100 steps an epoch)."""
    data = Path(os.environ.get("TRAINCTL_DATA_DIR", SHARED_DATA))
    if not (data / "mnist.npz").is_file():
        pytest.skip("mnist.npz not available (set TRAINCTL_DATA_DIR)")
    runs = tmp_path_factory.mktemp("source")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRAINCTL_DATA_DIR", str(data))
        return run_folder(invoke("fit", ROOT / "configs" / "mnist.yaml", "--set", STEPS,
                                 "--runs-dir", runs))


@pytest.fixture
def mnist_env(mnist_dir, monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))


@pytest.mark.parametrize("kind", ["run", "weights.h5", "best"])
def test_loaded_layers_are_bit_identical_to_the_source(source, kind, tmp_path, mnist_env):
    import keras

    from trainctl.config import load_config
    from trainctl.run.prepare import prepare

    if kind == "weights.h5":  # no architecture in the file: matched by its layer names
        path = tmp_path / "source.weights.h5"
        keras.saving.load_model(source / "model.keras", compile=False).save_weights(path)
        value, reference = f"model.weights_from={path}", source / "model.keras"
    elif kind == "best":
        value = "model.weights_from={path: %s, checkpoint: best}" % source
        reference = source / "checkpoints" / "best.keras"
    else:
        value, reference = f"model.weights_from.path={source}", source / "model.keras"
    prep = prepare(load_config(FINETUNE, [value]), smoke=True)
    theirs = weights(reference)
    mine = {layer.name: layer.get_weights() for layer in prep.model.layers if layer.weights}
    assert prep.weights_from["loaded"] == ["dense_1", "dense_2", "predictions"]
    assert prep.weights_from["not_loaded"] == {} and prep.weights_from["unused"] == []
    assert all(identical(mine[name], theirs[name]) for name in prep.weights_from["loaded"])


def test_finetune_freezes_by_name_and_starts_where_the_source_ended(source, tmp_path,
                                                                    mnist_env):
    result = invoke("fit", FINETUNE, "--set", f"model.weights_from.path={source}", "--set",
                    STEPS, "--runs-dir", tmp_path)
    run = run_folder(result)
    assert "loaded 3 layer(s): dense_1, dense_2, predictions" in result.output
    info = json.loads((run / "run.json").read_text())
    assert info["weights_from"]["loaded"] == ["dense_1", "dense_2", "predictions"]
    assert info["weights_from"]["run"] == str(source.resolve())
    before, after = weights(source / "model.keras"), weights(run / "model.keras")
    assert identical(before["dense_1"], after["dense_1"])  # frozen
    assert not identical(before["dense_2"], after["dense_2"])  # trained on
    assert not identical(before["predictions"], after["predictions"])
    key = "val_sparse_categorical_accuracy"
    source_last = json.loads((source / "history.json").read_text())[key][-1]
    first = json.loads((run / "history.json").read_text())[key][0]
    assert first >= source_last - 0.005, (first, source_last)


def test_transfer_to_a_new_head_loads_the_body(source, tmp_path, write_config):
    cfg = write_config(TRANSFER.format(source=source, head="binary"))
    result = invoke("fit", cfg, "--smoke", "--runs-dir", tmp_path / "runs")
    run = run_folder(result)
    assert "loaded 2 layer(s): dense_1, dense_2" in result.output
    assert "not loaded 1 layer(s): binary (no layer of that name in the source)" in result.output
    record = json.loads((run / "run.json").read_text())["weights_from"]
    assert record["loaded"] == ["dense_1", "dense_2"]
    assert list(record["not_loaded"]) == ["binary"] and record["unused"] == ["predictions"]
    before, after = weights(source / "model.keras"), weights(run / "model.keras")
    assert identical(before["dense_1"], after["dense_1"])
    assert identical(before["dense_2"], after["dense_2"])


def test_a_head_of_the_same_name_and_another_shape_is_exit_2(source, tmp_path, write_config):
    cfg = write_config(TRANSFER.format(source=source, head="predictions"))
    runs = tmp_path / "runs"
    result = invoke("fit", cfg, "--smoke", "--runs-dir", runs)
    assert result.exit_code == 2, result.output
    assert f"{cfg}:8:17: model.weights_from: layer 'predictions'" in result.output
    assert "(64, 10), (10,)" in result.output and "(64, 2), (2,)" in result.output
    assert "skip_mismatch: true" in result.output and "Traceback" not in result.output
    assert not runs.exists() or not any(runs.iterdir())


def test_skip_mismatch_starts_that_layer_afresh(source, tmp_path, write_config):
    spec = "{path: %s, skip_mismatch: true}" % source
    cfg = write_config(TRANSFER.format(source=spec, head="predictions"))
    run = run_folder(invoke("fit", cfg, "--smoke", "--runs-dir", tmp_path / "runs"))
    record = json.loads((run / "run.json").read_text())["weights_from"]
    assert record["loaded"] == ["dense_1", "dense_2"]
    assert record["not_loaded"] == {
        "predictions": "shapes differ: source (64, 10), (10,), model (64, 2), (2,)"}


def test_smoke_skips_a_missing_source_and_fit_refuses_it(tmp_path, write_config):
    missing = tmp_path / "no-such-run"
    cfg = write_config(TRANSFER.format(source=missing, head="binary"))
    result = invoke("fit", cfg, "--smoke", "--runs-dir", tmp_path / "runs")
    run = run_folder(result)
    assert f"note: model.weights_from: not found: {missing}" in result.output
    assert json.loads((run / "run.json").read_text())["weights_from"]["skipped"]
    runs = tmp_path / "full"
    result = invoke("fit", cfg, "--runs-dir", runs)
    assert result.exit_code == 2 and f"{cfg}:8:17: model.weights_from: not found" in \
        result.output
    assert not runs.exists() or not any(runs.iterdir())


def test_validate_checks_the_source_without_tensorflow(source, tmp_path, write_config):
    good = write_config(TRANSFER.format(source=source, head="binary"), "good.yaml")
    assert invoke("validate", good).exit_code == 0
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "plain").mkdir()
    cases = {
        "missing": (tmp_path / "gone", "model.weights_from: not found"),
        "not a run": (tmp_path / "plain", "is a folder but not a trainctl run"),
        "suffix": (tmp_path / "notes.txt", "expected a run folder, a .keras or a .weights.h5"),
        "checkpoint on a file": ("{path: %s, checkpoint: best}" % (source / "model.keras"),
                                 "model.weights_from.checkpoint: checkpoint: best needs a run"),
    }
    for name, (value, words) in cases.items():
        cfg = write_config(TRANSFER.format(source=value, head="binary"), f"{len(name)}.yaml")
        result = invoke("validate", cfg)
        assert result.exit_code == 2, (name, result.output)
        assert f"{cfg}:8:" in result.output and words in result.output, (name, result.output)
    bad = write_config(TRANSFER.format(source=tmp_path / "gone", head="binary"), "bad.yaml")
    code = ("import sys; from click.testing import CliRunner; from trainctl.cli import cli; "
            f"r = CliRunner().invoke(cli, ['validate', {str(bad)!r}]); "
            "assert r.exit_code == 2 and 'not found' in r.output, r.output; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr


def test_a_glob_takes_the_newest_completed_run(tmp_path):
    import time

    from trainctl.errors import Location
    from trainctl.transfer.source import MissingSource, resolve

    def fake(name: str, status: str) -> Path:
        folder = tmp_path / "runs" / name
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"status": status}))
        (folder / "model.keras").write_bytes(b"PK\x03\x04")
        time.sleep(0.02)  # distinct modification times
        return folder

    fake("mnist-mlp-1", "completed")
    newest = fake("mnist-mlp-2", "completed")
    fake("mnist-mlp-3", "failed")

    def locate(key):
        return Location("exp.yaml", 1, 1)

    src = resolve("runs/mnist-mlp-*", config_dir=tmp_path, locate=locate)
    assert src.run == newest.resolve() and src.file == newest.resolve() / "model.keras"
    with pytest.raises(MissingSource, match="no completed run matches"):
        resolve("runs/other-*", config_dir=tmp_path, locate=locate)


def test_reproduce_starts_from_the_file_the_run_started_from(tmp_path, write_config):
    from trainctl.config import load_config
    from trainctl.errors import UsageError
    from trainctl.run.reproduce import pin_weights_source
    from trainctl.transfer.load import sha256

    cfg = load_config(write_config(TRANSFER.format(source="runs/mnist-mlp-*", head="binary")),
                      semantic=False)
    used = tmp_path / "old-run" / "model.keras"
    used.parent.mkdir()
    used.write_bytes(b"PK\x03\x04 the weights it started from")
    record = {"given": "runs/mnist-mlp-*", "source": str(used), "sha256": sha256(used)}
    # the glob may match a newer run by now: the re-run starts from the recorded file
    pinned = pin_weights_source(cfg, record)
    assert pinned.experiment.model.weights_from.path == str(used)
    assert pinned.raw["model"]["weights_from"] == {"path": str(used)}
    assert cfg.experiment.model.weights_from == "runs/mnist-mlp-*"  # the original untouched
    assert pin_weights_source(cfg, None) is cfg
    used.write_bytes(b"PK\x03\x04 overwritten by a user")
    with pytest.raises(UsageError, match="changed since the run started from it"):
        pin_weights_source(cfg, record)
    used.unlink()
    with pytest.raises(UsageError, match="which is gone"):
        pin_weights_source(cfg, record)


def test_resuming_does_not_read_the_source(tmp_path, write_config):
    from trainctl.config import load_config
    from trainctl.transfer.load import load_weights_from

    cfg = load_config(write_config(TRANSFER.format(source=tmp_path / "gone", head="binary")),
                      semantic=False)
    # the run's own saved state replaces the weights: a deleted source must not matter
    assert load_weights_from(None, cfg, smoke=False, initial_epoch=1) is None


def test_finetune_example_points_at_the_mnist_runs():
    import yaml

    spec = yaml.safe_load(FINETUNE.read_text())["model"]["weights_from"]
    name = yaml.safe_load((ROOT / "configs" / "mnist.yaml").read_text())["name"]
    pattern = (FINETUNE.parent / spec["path"]).resolve()
    # `trainctl fit configs/mnist.yaml` from the repository's top writes runs/<name>-...
    assert pattern.parent == (ROOT / "runs").resolve() and pattern.name == f"{name}-*"
