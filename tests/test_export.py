"""trainctl export: SavedModel, LiteRT and ONNX artifacts checked against trainctl predict.

Each artifact is loaded here with its own runtime (tf.saved_model.load, the LiteRT
interpreter, onnxruntime), not through trainctl's code, and run on the inputs
given to ``trainctl predict``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli

# A functional graph with a plug-in layer (MyDenseLayer, examples/plugins/models.py).
GRAPH = """\
name: export-graph
seed: 4
imports: [examples.plugins.models]
data:
  source: {type: synthetic, samples: 96, test_samples: 32}
  validation: {holdout: 32}
model:
  inputs: {x: {shape: [12]}}
  layers:
    - {type: MyDenseLayer, units: 8, name: custom}
    - {type: Activation, activation: relu, name: relu}
    - {type: Dense, units: 3, activation: softmax, name: out}
compile:
  optimizer: {type: Adam, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
  metrics: [sparse_categorical_accuracy]
fit: {epochs: 1, batch_size: 16}
"""
# A subclassed plug-in model: Keras would name its export input args_0.
SUBCLASSED = """\
name: export-subclassed
seed: 4
imports: [examples.plugins.models]
data:
  source: {type: synthetic, samples: 64, test_samples: 16}
model:
  type: MyModel
  args: {hidden: 8, classes: 3}
  inputs: {x: {shape: [12]}}
compile:
  loss: {type: SparseCategoricalCrossentropy, from_logits: true}
fit: {epochs: 1, batch_size: 16}
"""
# A layer calling back into Python: it trains, but no runtime can serve it.
NUMPY_LAYER = '''\
import keras
import numpy as np
import tensorflow as tf

import trainctl


@trainctl.register("layer")
class NumpyTanh(keras.layers.Layer):
    def call(self, x):
        y = tf.numpy_function(lambda a: np.tanh(a), [x], tf.float32)
        y.set_shape(x.shape)
        return y
'''
TOLERANCE = {"saved_model": 1e-4, "litert": 1e-3, "onnx": 1e-4}
DEFAULT = {"saved_model": "exports/saved_model", "litert": "exports/litert/model.tflite",
           "onnx": "exports/onnx/model.onnx"}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def train(folder: Path, text: str, name: str = "exp.yaml") -> Path:
    cfg = folder / name
    cfg.write_text(text, encoding="utf-8")
    result = invoke("fit", cfg, "--smoke", "--runs-dir", folder / "runs")
    assert result.exit_code == 0, result.output
    return Path(result.output.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def at_root(monkeypatch):
    """Plug-in modules (examples.plugins) are found from the working directory."""
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def graph_run(tmp_path_factory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        return train(tmp_path_factory.mktemp("graph"), GRAPH)


def predicted(run: Path, tmp_path: Path, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs and what ``trainctl predict`` makes of them."""
    x = np.random.default_rng(1).random((n, 12), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    result = invoke("predict", run, "--input", tmp_path / "x.npy", "--output",
                    tmp_path / "y.npy")
    assert result.exit_code == 0, result.output
    return x, np.load(tmp_path / "y.npy")


def serve(fmt: str, path: Path, x: np.ndarray, output: str = "out") -> np.ndarray:
    """The artifact's output named ``output`` for ``x`` (input ``x``), by its own runtime
    (a functional model's outputs keep their names in every format)."""
    if fmt == "saved_model":
        import tensorflow as tf

        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
        return signature(x=tf.constant(x))[output].numpy()
    if fmt == "litert":
        from tensorflow.lite.python.interpreter import Interpreter

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runner = Interpreter(model_path=str(path)).get_signature_runner("serving_default")
        return runner(x=x)[output]
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return session.run(None, {"x": x})[names.index(output)]


@pytest.mark.parametrize("fmt", ["saved_model", "litert", "onnx"])
def test_export_matches_predict_in_its_own_runtime(fmt, graph_run, tmp_path):
    if fmt == "onnx":
        for package in ("onnx", "tf2onnx", "onnxruntime"):
            pytest.importorskip(package)
    result = invoke("export", graph_run, "--format", fmt)
    assert result.exit_code == 0, result.output
    artifact = graph_run / DEFAULT[fmt]
    assert result.output.strip().splitlines()[-1] == str(artifact) and artifact.exists()
    assert "max |difference|" in result.output
    record = json.loads((graph_run / "run.json").read_text())["records"][-1]
    assert record["kind"] == "export" and record["format"] == fmt and record["passed"]
    assert record["max_abs_diff"] <= TOLERANCE[fmt] and record["output"] == str(artifact)
    assert not [p for p in artifact.parent.iterdir() if p.name.startswith(".tmp-")]
    x, y = predicted(graph_run, tmp_path)
    assert np.max(np.abs(serve(fmt, artifact, x) - y)) <= TOLERANCE[fmt]


def test_a_subclassed_plugin_model_exports_with_named_inputs(tmp_path):
    run = train(tmp_path, SUBCLASSED)
    out = tmp_path / "model.tflite"
    result = invoke("export", run, "--format", "litert", "--output", out)
    assert result.exit_code == 0, result.output
    x, y = predicted(run, tmp_path)
    assert np.max(np.abs(serve("litert", out, x, "output_0") - y)) <= TOLERANCE["litert"]


def test_an_existing_export_needs_force_and_bad_paths_are_exit_2(graph_run, tmp_path):
    out = tmp_path / "sm"
    assert invoke("export", graph_run, "--format", "saved_model", "--output", out).exit_code == 0
    again = invoke("export", graph_run, "--format", "saved_model", "--output", out)
    assert again.exit_code == 2 and "exists already" in again.output and "--force" in again.output
    forced = invoke("export", graph_run, "--format", "saved_model", "--output", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]  # no temp or old copy left
    wrong = invoke("export", graph_run, "--format", "litert", "--output", tmp_path / "m.onnx")
    assert wrong.exit_code == 2 and "a litert model is a .tflite file" in wrong.output
    wrong = invoke("export", graph_run, "--format", "saved_model", "--output", tmp_path / "m.onnx")
    assert wrong.exit_code == 2 and "a SavedModel is a folder, not a .onnx file" in wrong.output


def test_force_replaces_an_earlier_export_only(graph_run, tmp_path):
    # --force moved the folder aside and deleted it: a folder of notes, the run itself
    notes = tmp_path / "precious"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    for folder, says in ((notes, "a folder that is not a SavedModel"),
                         (graph_run, "holds the run folder"),
                         (graph_run.parent, "holds the run folder")):
        result = invoke("export", graph_run, "--format", "saved_model", "--output", folder,
                        "--force")
        assert result.exit_code == 2 and says in result.output, result.output
        assert "Traceback" not in result.output
    assert (notes / "notes.txt").read_text() == "mine"
    assert (graph_run / "run.json").is_file() and (graph_run / "model.keras").is_file()
    (tmp_path / "m.tflite").mkdir()
    result = invoke("export", graph_run, "--format", "litert", "--output",
                    tmp_path / "m.tflite", "--force")
    assert result.exit_code == 2 and "is a folder; a litert model is a .tflite file" in \
        result.output


def test_onnx_without_its_packages_names_them(graph_run, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else real(name, *a))
    result = invoke("export", graph_run, "--format", "onnx")
    assert result.exit_code == 2, result.output
    assert "not installed: tf2onnx" in result.output
    assert "pip install 'trainctl[onnx]'" in result.output


def test_a_difference_over_the_tolerance_is_exit_1_and_writes_nothing(graph_run, tmp_path,
                                                                      monkeypatch):
    import trainctl.run.runtimes as runtimes

    real = runtimes.run_artifact

    def off_by_a_bit(fmt, path, inputs):
        outputs, name = real(fmt, path, inputs)
        return {k: o + 2e-4 for k, o in outputs.items()}, name

    monkeypatch.setattr(runtimes, "run_artifact", off_by_a_bit)
    out = tmp_path / "sm"
    result = invoke("export", graph_run, "--format", "saved_model", "--output", out)
    assert result.exit_code == 1, result.output
    assert "differs from the Keras model by 0.0002, more than 0.0001" in result.output
    assert not out.exists() and not list(tmp_path.iterdir())
    record = json.loads((graph_run / "run.json").read_text())["records"][-1]
    assert record["kind"] == "export" and record["passed"] is False


def test_a_layer_calling_python_fails_with_the_reason(tmp_path):
    (tmp_path / "numpy_layers.py").write_text(NUMPY_LAYER, encoding="utf-8")
    text = GRAPH.replace("examples.plugins.models", "numpy_layers").replace(
        "{type: MyDenseLayer, units: 8, name: custom}", "{type: NumpyTanh, name: custom}")
    run = train(tmp_path, text)
    for fmt, words in (("saved_model", "calls back into Python"),
                       ("litert", "PyFunc")):  # "Custom ops: PyFunc" or "'tf.PyFunc' op is ..."
        result = invoke("export", run, "--format", fmt)
        assert result.exit_code == 1, result.output
        assert words in result.output and "NumpyTanh (numpy_layers)" in result.output
        assert "Traceback" not in result.output
        assert not (run / DEFAULT[fmt]).exists()


def test_outputs_are_compared_by_name_and_by_order_when_renamed():
    from trainctl.run.export import largest_difference

    want = {"score": np.zeros((2, 1)), "cls": np.ones((2, 3))}
    assert largest_difference({"cls": np.ones((2, 3)), "score": np.full((2, 1), 0.5)},
                              want) == 0.5
    # a runtime that names them its own way: paired in natural order of both
    renamed = {"output_1": np.zeros((2, 1)), "output_0": np.ones((2, 3))}
    assert largest_difference(renamed, {"a0": np.ones((2, 3)), "a1": np.zeros((2, 1))}) == 0
    assert largest_difference({"x": np.ones((2, 3))}, want) == float("inf")
