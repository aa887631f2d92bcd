"""Tests for trainctl.registry.catalog: the TF-free checks `trainctl validate` relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainctl.errors import Location
from trainctl.registry import catalog, listing
from trainctl.registry.catalog import check_component

ROOT = Path(__file__).resolve().parents[1]


def messages(kind, spec, key="model.layers[0]"):
    return [f"{e.key}: {e.message}" for e in check_component(kind, spec, key=key)]


def test_catalog_in_sync_with_installed_keras():
    pytest.importorskip("keras")
    fresh = catalog.dumps(catalog.generate())
    assert catalog.CATALOG_PATH.read_text(encoding="utf-8") == fresh, (
        "catalog.json is stale: run `python -m trainctl.registry.catalog --write`")
    assert json.loads(fresh)["keras"]


def test_unknown_layer_with_suggestion():
    assert messages("layer", {"type": "Dens", "units": 3}) == [
        "model.layers[0].type: unknown layer 'Dens' (did you mean 'Dense'?)"]


def test_unknown_argument_with_suggestion():
    [msg] = messages("layer", {"type": "Dense", "units": 3, "unit": 3})
    assert msg.startswith("model.layers[0].unit: unknown argument 'unit' for Dense "
                          "(did you mean 'units'?); accepted: units, activation, ")


@pytest.mark.parametrize("arg, value, expected", [
    ("units", "sixty-four", "expected a positive integer; received 'sixty-four' (str)"),
    ("units", True, "expected a positive integer; received True (bool)"),
    ("units", 0, "expected a positive integer; received 0 (int)"),
    ("activation", 3, "expected an activation name such as 'relu' or null; received 3 (int)"),
    ("activation", "relu6x", "unknown activation 'relu6x' (did you mean 'relu6'"),
])
def test_dense_value_types(arg, value, expected):
    spec = {"type": "Dense", "units": 3, arg: value}
    [msg] = messages("layer", spec)
    assert msg.startswith(f"model.layers[0].{arg}: {expected}")


def test_float_for_int_or_ints():
    assert messages("layer", {"type": "Conv2D", "filters": 8, "kernel_size": 2.5}) == [
        "model.layers[0].kernel_size: expected an integer or a list of integers; "
        "received 2.5 (float)"]


@pytest.mark.parametrize("spec, arg", [
    ({"type": "TensorBoard", "update_freq": "epochh"}, "update_freq"),
    ({"type": "ModelCheckpoint", "filepath": "m.keras", "save_freq": "epochs"}, "save_freq"),
])
def test_a_frequency_is_epoch_batch_or_a_number(spec, arg):
    """Keras fails only inside fit on these (TensorBoard: "unsupported operand ... '%'")."""
    [msg] = messages("callback", spec)
    assert f".{arg}: expected one of 'epoch'" in msg and "or an integer; received" in msg
    assert messages("callback", {**spec, arg: 100}) == []
    assert messages("callback", {**spec, arg: "epoch"}) == []


def test_missing_required_units():
    assert messages("layer", {"type": "Dense", "activation": "relu"}) == [
        "model.layers[0]: missing required argument 'units' for Dense"]


@pytest.mark.parametrize("kind, spec", [
    ("layer", {"type": "Dense", "units": 64, "activation": "relu", "name": "dense_1"}),
    ("layer", {"type": "Conv2D", "filters": 32, "kernel_size": [3, 3], "strides": 1,
               "padding": "same", "kernel_initializer": {"type": "HeNormal", "seed": 1},
               "kernel_regularizer": {"type": "L2", "l2": 0.01}}),
    ("layer", {"type": "Dropout", "rate": 0.5}),
    ("layer", {"type": "ZeroPadding2D", "padding": [[1, 1], [2, 2]]}),
    ("optimizer", "rmsprop"),
    ("optimizer", {"type": "RMSprop", "learning_rate": 0.001}),
    ("optimizer", {"type": "RMSprop", "learning_rate": {
        "type": "ExponentialDecay", "initial_learning_rate": 0.1, "decay_steps": 10000,
        "decay_rate": 0.96, "staircase": True}}),
    ("loss", "sparse_categorical_crossentropy"),
    ("loss", {"type": "SparseCategoricalCrossentropy", "from_logits": True}),
    ("metric", "accuracy"),
    ("callback", {"type": "EarlyStopping", "monitor": "val_loss", "min_delta": 1e-2,
                  "patience": 2}),
])
def test_valid_specs_pass(kind, spec):
    assert messages(kind, spec) == []


def test_nested_schedule_errors_point_inside():
    msgs = messages("optimizer", {"type": "RMSprop", "learning_rate": {
        "type": "ExponentialDecay", "initial_learning_rate": "x"}}, key="compile.optimizer")
    assert msgs == [
        "compile.optimizer.learning_rate.initial_learning_rate: expected a number; "
        "received 'x' (str)",
        "compile.optimizer.learning_rate: missing required arguments 'decay_steps', "
        "'decay_rate' for ExponentialDecay"]


def test_locate_uses_most_specific_key():
    spots = {"model.layers[0]": Location("c.yaml", 4, 7),
             "model.layers[0].units": Location("c.yaml", 4, 30)}
    [err] = check_component("layer", {"type": "Dense", "units": "x"},
                            key="model.layers[0]", locate=spots.get)
    assert str(err).startswith("c.yaml:4:30: model.layers[0].units: expected a positive integer")


def test_string_only_metric_takes_no_arguments():
    assert messages("metric", {"type": "accuracy", "x": 1}, key="m") == [
        "m: metric 'accuracy' is resolved by Keras itself and takes no arguments; received x"]


def test_plugin_registered_component_is_checked_live():
    from trainctl.registry import REGISTRIES

    class Gadget:
        def __init__(self, width, ratio=0.5, verbose=False):
            pass

    REGISTRIES["callback"].register(Gadget, name="TestCatalogGadget")
    try:
        assert messages("callback", {"type": "TestCatalogGadget", "width": 2}) == []
        msgs = messages("callback", {"type": "TestCatalogGadget", "ratio": "big"}, key="c")
        assert msgs == ["c.ratio: expected a number; received 'big' (str)",
                        "c: missing required argument 'width' for TestCatalogGadget"]
    finally:
        REGISTRIES["callback"]._entries.pop("TestCatalogGadget")


def test_names_describe_and_format():
    assert "rmsprop" in catalog.names("optimizer")
    assert catalog.describe("layer", "Dense").startswith("Dense(units: posint; optional ")
    text = listing.format_components("optimizer")
    assert "  rmsprop -> RMSprop" in text and text.startswith("optimizer (")
    assert "dataset (" in listing.format_components(None)


def test_check_without_tensorflow():
    code = ("import sys; from trainctl.registry.catalog import check_component; "
            "errs = check_component('layer', {'type': 'Dense', 'units': 'x'}, key='k'); "
            "assert len(errs) == 1, errs; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={"PYTHONPATH": str(ROOT), "PATH": ""})


def test_module_colon_names_are_imported_and_checked(tmp_path, monkeypatch):
    (tmp_path / "my_plugin_mod.py").write_text(
        "class Thing:\n    def __init__(self, size=1, scale=0.5):\n        pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ok = check_component("layer", {"type": "my_plugin_mod:Thing", "size": 3}, key="k")
    assert ok == []
    bad = check_component("layer", {"type": "my_plugin_mod:Thing", "sise": 3}, key="k")
    assert len(bad) == 1 and "did you mean 'size'" in str(bad[0])
    missing = check_component("layer", "no_such_mod_xyz:Thing", key="k")
    assert len(missing) == 1 and "no such module" in str(missing[0])
