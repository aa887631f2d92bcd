"""Config to compiled model: graphs, merge layers, several outputs, compile options."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest

from trainctl.build import build_model, compile_model
from trainctl.config import load_config
from trainctl.errors import ConfigError

MULTI = """\
data: {source: synthetic}
model:
  inputs:
    a: {shape: [4]}
    b: {shape: [3]}
  layers:
    - {type: Dense, units: 5, name: da, inputs: a}
    - {type: Dense, units: 5, name: db, inputs: b}
    - {type: Add, name: added, inputs: [da, db]}
    - {type: Concatenate, name: cat, inputs: [added, da]}
    - {type: Dense, units: 1, name: score, inputs: cat}
    - {type: Dense, units: 3, activation: softmax, name: cls, inputs: cat}
  outputs: [score, cls]
compile:
  optimizer: {type: SGD, learning_rate: {type: ExponentialDecay, initial_learning_rate: 0.1,
              decay_steps: 1, decay_rate: 0.5}}
  loss: {score: mse, cls: null}
  loss_weights: {score: 3.0, cls: 1.0}
  metrics: {cls: [sparse_categorical_accuracy]}
"""


def build(write_config, text, *overrides):
    cfg = load_config(write_config(text), list(overrides))
    model = build_model(cfg.experiment, cfg.locate)
    compile_model(model, cfg.experiment, cfg.locate)
    return model


def test_functional_graph_with_merges_and_two_outputs(write_config):
    model = build(write_config, MULTI)
    assert [t.name.split(":")[0] for t in model.inputs] == ["a", "b"]
    assert [layer.name for layer in model.layers if layer.name in ("score", "cls")] == \
        ["score", "cls"]
    assert model.get_layer("cat").output.shape == (None, 10)
    x = {"a": np.ones((8, 4), "float32"), "b": np.ones((8, 3), "float32")}
    y = {"score": np.zeros((8, 1), "float32"), "cls": np.zeros((8,), "int32")}
    logs = model.fit(x, y, epochs=2, verbose=0).history
    assert set(logs) == {"loss", "cls_sparse_categorical_accuracy"}
    # cls has no loss (null), so the total is 3 x the score output's squared error
    score, _ = model.predict(x, verbose=0)
    loss = model.evaluate(x, y, return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(3.0 * float(np.mean(score ** 2)), rel=1e-4)
    # the schedule drives the optimizer: the rate fell after 2 x 1 steps
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1 * 0.5 ** 2)


def test_loss_list_must_match_outputs(write_config):
    text = MULTI.replace("loss: {score: mse, cls: null}", "loss: [mse]")
    with pytest.raises(ConfigError, match=r"expected 2 items, one per output"):
        load_config(write_config(text))


def test_loss_mapping_must_name_every_output(write_config):
    text = MULTI.replace("loss: {score: mse, cls: null}", "loss: {score: mse}")
    with pytest.raises(ConfigError, match="use null for an output that has no loss"):
        load_config(write_config(text))


def test_strings_go_to_keras_as_strings(write_config):
    model = build(write_config, MULTI.replace("optimizer: {type: SGD", "optimizer: sgd\n  x: {type: SGD")
                  .replace("  x: {type: SGD, learning_rate: {type: ExponentialDecay, "
                           "initial_learning_rate: 0.1,\n              decay_steps: 1, "
                           "decay_rate: 0.5}}\n", ""))
    assert isinstance(model.optimizer, keras.optimizers.SGD)


def test_mixed_precision_keeps_outputs_float32(write_config):
    from trainctl.run.runtime import set_precision

    try:
        set_precision("mixed_bfloat16")
        model = build(write_config, MULTI, "runtime.precision=mixed_bfloat16")
        assert model.get_layer("da").compute_dtype == "bfloat16"
        assert model.get_layer("score").compute_dtype == "float32"
        assert model.get_layer("cls").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_shape_that_cannot_connect_names_the_layer(write_config):
    text = MULTI.replace("{type: Add, name: added, inputs: [da, db]}",
                         "{type: Add, name: added, inputs: [da, b]}")
    with pytest.raises(ConfigError) as exc:
        build(write_config, text)
    assert "model.layers[2]" in str(exc.value) and "Add cannot take input of shape" in \
        str(exc.value)


def test_freeze_by_name_and_glob_keeps_weights_still(write_config):
    model = build(write_config, MULTI, "model.freeze=[da, 'd*b']")
    frozen = {layer.name for layer in model.layers if not layer.trainable}
    assert frozen == {"da", "db"}
    before = [w.copy() for w in model.get_layer("da").get_weights()]
    x = {"a": np.ones((8, 4), "float32"), "b": np.ones((8, 3), "float32")}
    y = {"score": np.ones((8, 1), "float32"), "cls": np.zeros((8,), "int32")}
    model.fit(x, y, epochs=1, verbose=0)
    for old, new in zip(before, model.get_layer("da").get_weights()):
        np.testing.assert_array_equal(old, new)
    assert not np.allclose(model.get_layer("score").get_weights()[0], 0)


def test_freeze_pattern_matching_nothing_is_an_error(write_config):
    with pytest.raises(ConfigError, match=r"'dbb' matches no layer \(did you mean 'db'"):
        build(write_config, MULTI, "model.freeze=[dbb]")


def test_component_mapping_is_not_a_per_output_mapping(write_config):
    single = MULTI.replace("  outputs: [score, cls]\n", "  outputs: cls\n").replace(
        "loss: {score: mse, cls: null}", "loss: {type: SparseCategoricalCrossentropy}").replace(
        "loss_weights: {score: 3.0, cls: 1.0}", "loss_weights: 1.0").replace(
        "metrics: {cls: [sparse_categorical_accuracy]}",
        "metrics: [{type: SparseCategoricalAccuracy, name: acc}]")
    model = build(write_config, single)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)


# -- a bug in a plug-in's own code is reported as one, not as a shape problem -------------
# (id, line of call() that fails, the error, its message); Keras wraps each in "Could not
# automatically infer the output shape ... Error encountered: ..." under the same type
PLUGIN_BUGS = [
    ("name", "return x * undefined_name", "NameError", "name 'undefined_name' is not defined"),
    ("attribute", "return x.no_such_attribute", "AttributeError",
     "object has no attribute 'no_such_attribute'"),
    ("import", "import no_such_module_for_trainctl_tests", "ModuleNotFoundError",
     "No module named 'no_such_module_for_trainctl_tests'"),
]

PLUGIN = """\
import keras
import trainctl


@trainctl.register("layer")
class {name}Layer(keras.layers.Layer):
    def call(self, x):
        {line}


@trainctl.register("model")
class {name}Model(keras.Model):
    def call(self, x):
        {line}
"""
PLUGIN_LINE = 8  # the first {line}; the model's is at line 14


def plugin_layer_config(case: str, name: str) -> str:
    """MULTI with its Add layer replaced by plug-in ``case``'s layer (:func:`plugin_module`),
    at model.layers[2], line 10 of the config."""
    return f"imports: [plugin_bug_{case}]\n" + MULTI.replace(
        "{type: Add, name: added, inputs: [da, db]}",
        f"{{type: {name}Layer, name: added, inputs: da}}")


def plugin_module(tmp_path, case: str, line: str) -> str:
    """Write a plug-in with a layer and a model whose call() runs ``line``; return its name
    (one module and one set of names per case: imports and registrations last the process)."""
    name = f"Bug{case.title()}"
    (tmp_path / f"plugin_bug_{case}.py").write_text(PLUGIN.format(name=name, line=line))
    return name


@pytest.mark.parametrize("case", PLUGIN_BUGS, ids=[c[0] for c in PLUGIN_BUGS])
def test_bug_in_a_plugin_layer_is_reported_with_its_file_and_line(write_config, tmp_path,
                                                                 case):
    case_id, line, error, message = case
    name = plugin_module(tmp_path, case_id, line)
    text = plugin_layer_config(case_id, name)
    path = write_config(text)
    with pytest.raises(ConfigError) as exc:
        build(write_config, text)
    first, hint = str(exc.value).splitlines()
    plugin = tmp_path / f"plugin_bug_{case_id}.py"
    # the config's key and place stay; what failed, where in the user's code, and why
    assert first.startswith(f"{path}:10:7: model.layers[2]: {name}Layer failed in its own "
                            f"Python code, not on its input shapes: {error}: "), first
    assert message in first and f"(raised at {plugin}:{PLUGIN_LINE}, in call: {line})" in first
    assert "cannot take input of shape" not in first and "Could not automatically" not in first
    assert hint == (f"  hint: fix the layer's Python code at {plugin}:{PLUGIN_LINE} (if the "
                    "error comes from an argument the config gives the layer, check that "
                    "argument too)")


def test_a_plugin_layers_own_raise_names_its_line_beside_the_shapes(write_config, tmp_path):
    """A RuntimeError/ValueError the layer raises itself may be about its input, so the
    shapes stay in the message; where it was raised is added (Keras's "Could not
    automatically infer the output shape" wrapper is left out)."""
    name = plugin_module(tmp_path, "raises", 'raise RuntimeError("boom at runtime")')
    text = plugin_layer_config("raises", name)
    with pytest.raises(ConfigError) as exc:
        build(write_config, text)
    first, hint = str(exc.value).splitlines()
    plugin = tmp_path / "plugin_bug_raises.py"
    assert f"{name}Layer cannot take input of shape" in first
    assert first.endswith(f": RuntimeError: boom at runtime (raised at {plugin}:{PLUGIN_LINE}, "
                          "in call: raise RuntimeError(\"boom at runtime\"))"), first
    assert "Could not automatically" not in first
    assert hint.endswith(f"feeding it, and its code at {plugin}:{PLUGIN_LINE}")


def test_bug_in_a_plugin_model_is_reported_with_its_file_and_line(write_config, tmp_path):
    name = plugin_module(tmp_path, "model", "return x * undefined_name")
    text = (f"imports: [plugin_bug_model]\ndata: {{source: synthetic}}\nmodel:\n"
            f"  type: {name}Model\n  inputs: {{x: {{shape: [4]}}}}\n"
            "compile: {optimizer: adam, loss: mse}\n")
    path = write_config(text)
    with pytest.raises(ConfigError) as exc:
        build(write_config, text)
    assert str(exc.value).startswith(
        f"{path}:4:9: model.type: {name}Model failed in its own Python code, not on its input "
        f"shapes: NameError: name 'undefined_name' is not defined (raised at "
        f"{tmp_path / 'plugin_bug_model.py'}:14, in call: return x * undefined_name)")


def test_bug_in_a_plugin_installed_among_libraries_is_still_the_users(write_config, tmp_path,
                                                                       monkeypatch):
    import trainctl.diagnose

    # as if the plug-in were installed in site-packages: its folder is a library folder
    libraries = trainctl.diagnose._library_dirs()
    monkeypatch.setattr(trainctl.diagnose, "_library_dirs",
                        lambda: [*libraries, os.path.join(str(tmp_path), "")])
    name = plugin_module(tmp_path, "installed", "return x * undefined_name")
    text = plugin_layer_config("installed", name)
    with pytest.raises(ConfigError) as exc:
        build(write_config, text)
    assert (f"(raised at {tmp_path / 'plugin_bug_installed.py'}:{PLUGIN_LINE}, in call: "
            "return x * undefined_name)") in str(exc.value)


def test_value_error_in_a_plugin_layer_is_still_a_shape_problem(write_config, tmp_path):
    # a ValueError is what Keras raises on shapes: the layer's arguments or inputs are wrong
    name = plugin_module(tmp_path, "value", "raise ValueError('expected 3 channels')")
    text = plugin_layer_config("value", name)
    with pytest.raises(ConfigError) as exc:
        build(write_config, text)
    assert f"model.layers[2]: {name}Layer cannot take input of shape (None, 5): " in \
        str(exc.value) and "expected 3 channels" in str(exc.value)
