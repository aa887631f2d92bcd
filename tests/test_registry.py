"""Tests for trainctl.registry: registration, lookup, building, Keras built-ins."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainctl.errors import ConfigError, Location
from trainctl.registry import (DuplicateNameError, Registry, accepted_params,
                               get_registry, register)

ROOT = Path(__file__).resolve().parents[1]


class Base:
    def __init__(self, name=None):
        self.name = name


class Thing(Base):
    def __init__(self, size, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.scale = size, scale


class Picky:
    def __init__(self, size):
        if size < 0:
            raise ValueError(f"size must be >= 0, got {size}")
        self.size = size


# -- signature -----------------------------------------------------------------
def test_accepted_params_walks_kwargs_up_the_mro():
    info = accepted_params(Thing)
    assert info.names == ("size", "scale", "name")
    assert info.required == ("size",)
    assert not info.open


def test_accepted_params_kwargs_not_forwarded_is_open():
    class Keeps:
        def __init__(self, a=1, **options):
            self.options = options

    assert accepted_params(Keeps).open


def test_accepted_params_function_and_uninspectable():
    def f(x, alpha=0.5, *, beta=2):
        return x

    info = accepted_params(f)
    assert info.names == ("x", "alpha", "beta") and info.required == ("x",)
    assert accepted_params(lambda *a, **k: None).open


# -- registration ----------------------------------------------------------------
def test_register_as_decorator_call_and_with_name():
    reg = Registry("layer")

    @reg.register
    class A:
        pass

    @reg.register(name="Bee", aliases=("bee",))
    class B:
        pass

    assert reg.register(Thing) is Thing
    assert reg.get("A") is A and reg.get("Bee") is B and reg.get("bee") is B
    assert reg.get("Thing") is Thing


def test_duplicate_name_says_where_the_first_lives():
    reg = Registry("model")
    reg.register(Thing, name="X")
    with pytest.raises(DuplicateNameError) as info:
        reg.register(Picky, name="X")
    text = str(info.value)
    assert "test_registry:Thing" in text and "test_registry.py:" in text
    reg.register(Picky, name="X", force=True)
    assert reg.get("X") is Picky


def test_module_level_register_and_unknown_kind():
    @register("model", name="TestRegistryModel")
    class M:
        pass

    assert get_registry("model").get("TestRegistryModel") is M
    with pytest.raises(ConfigError, match=r"unknown component kind 'layers' \(did you mean 'layer'"):
        get_registry("layers")


def test_unknown_name_suggests_nearest():
    reg = Registry("model")
    reg.register(Thing, name="Dense")
    with pytest.raises(ConfigError, match=r"unknown model 'Dens' \(did you mean 'Dense'\?\)"):
        reg.get("Dens", key="model.layers[0].type")


# -- building ----------------------------------------------------------------
def test_build_checks_kwargs_before_calling():
    reg = Registry("model")
    reg.register(Thing)
    where = Location("c.yaml", 3, 5)
    with pytest.raises(ConfigError) as info:
        reg.build({"type": "Thing", "size": 1, "sise": 2}, key="m", where=where)
    err = info.value
    assert err.key == "m.sise" and err.where == where
    assert "unknown argument 'sise' for Thing (did you mean 'size'?)" in err.message
    assert "accepted: size, scale, name" in err.message
    assert reg.build({"type": "Thing", "size": 3, "name": "t"}, key="m").name == "t"


def test_build_missing_required_and_locate():
    reg = Registry("model")
    reg.register(Thing)
    spots = {"m": Location("c.yaml", 7, 3)}
    with pytest.raises(ConfigError, match="missing required argument 'size' for Thing") as info:
        reg.build("Thing", key="m", locate=spots.get)
    assert info.value.where == Location("c.yaml", 7, 3)


def test_build_converts_constructor_errors():
    reg = Registry("model")
    reg.register(Picky)
    with pytest.raises(ConfigError) as info:
        reg.build({"type": "Picky", "size": -1}, key="model")
    assert "Picky rejected its arguments: ValueError: size must be >= 0" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_build_rejects_bad_specs():
    reg = Registry("model")
    with pytest.raises(ConfigError, match="needs a 'type' key"):
        reg.build({"size": 1}, key="m")
    with pytest.raises(ConfigError, match=r"expected a name or a mapping with 'type'; received 3"):
        reg.build(3, key="m")


def test_module_attr_names_import_from_sys_path(tmp_path, monkeypatch):
    (tmp_path / "tc_plugin_mod.py").write_text(
        "class Widget:\n    def __init__(self, width=1):\n        self.width = width\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("model")
    assert reg.build({"type": "tc_plugin_mod:Widget", "width": 4}, key="m").width == 4
    with pytest.raises(ConfigError, match=r"has no attribute 'Widgit' \(did you mean 'Widget'"):
        reg.get("tc_plugin_mod:Widgit")
    with pytest.raises(ConfigError, match="cannot import module 'no_such_mod_xyz'"):
        reg.get("no_such_mod_xyz:Thing")


# -- Keras built-ins (imports keras) ----------------------------------------------
@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


@pytest.mark.parametrize("kind, name, attr", [
    ("layer", "Dense", "layers.Dense"),
    ("loss", "sparse_categorical_crossentropy", "losses.sparse_categorical_crossentropy"),
    ("loss", "SparseCategoricalCrossentropy", "losses.SparseCategoricalCrossentropy"),
    ("optimizer", "rmsprop", "optimizers.RMSprop"),
    ("callback", "EarlyStopping", "callbacks.EarlyStopping"),
    ("schedule", "ExponentialDecay", "optimizers.schedules.ExponentialDecay"),
])
def test_keras_builtins_resolve(keras, kind, name, attr):
    expected = keras
    for part in attr.split("."):
        expected = getattr(expected, part)
    assert get_registry(kind).get(name) is expected


def test_string_only_metric(keras):
    assert get_registry("metric").get("accuracy") == "accuracy"


def test_build_keras_dense_unknown_arg_and_rejected_value(keras):
    layers = get_registry("layer")
    dense = layers.build({"type": "Dense", "units": 4, "activation": "relu"}, key="l")
    assert isinstance(dense, keras.layers.Dense) and dense.units == 4
    with pytest.raises(ConfigError, match=r"unknown argument 'unit' for Dense \(did you mean 'units'\?\); accepted: units, activation"):
        layers.build({"type": "Dense", "unit": 4}, key="l")
    with pytest.raises(ConfigError, match="Dense rejected its arguments"):
        layers.build({"type": "Dense", "units": -1}, key="l")


def test_optimizer_with_nested_schedule(keras):
    opt = get_registry("optimizer").build(
        {"type": "RMSprop", "learning_rate": {"type": "ExponentialDecay",
         "initial_learning_rate": 0.1, "decay_steps": 10000, "decay_rate": 0.96,
         "staircase": True}}, key="compile.optimizer")
    assert isinstance(opt, keras.optimizers.RMSprop)
    assert isinstance(opt._learning_rate, keras.optimizers.schedules.ExponentialDecay)


def test_optimizer_decay_is_rejected_with_hint(keras):
    with pytest.raises(ConfigError) as info:
        get_registry("optimizer").build({"type": "RMSprop", "decay": 0.1}, key="o")
    assert "learning-rate schedule" in str(info.value)


def test_function_with_kwargs_keeps_its_name(keras):
    fn = get_registry("loss").build(
        {"type": "sparse_categorical_crossentropy", "from_logits": True}, key="compile.loss")
    assert fn.__name__ == "sparse_categorical_crossentropy"
    assert fn.keywords == {"from_logits": True}


def test_plugin_shadowing_a_builtin_is_an_error_unless_forced(keras):
    reg = Registry("layer")
    reg.register(Thing, name="Dense")
    with pytest.raises(DuplicateNameError, match="is a Keras built-in"):
        reg.get("Dense")
    reg2 = Registry("layer")
    reg2.register(Thing, name="Dense", force=True)
    assert reg2.get("Dense") is Thing and reg2.get("Flatten") is keras.layers.Flatten


def test_import_does_not_import_tensorflow():
    code = "import trainctl.registry, sys; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={"PYTHONPATH": str(ROOT), "PATH": ""})
