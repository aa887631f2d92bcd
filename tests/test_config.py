"""Config loading: YAML positions, extends, --set, strict schema, error messages."""

from __future__ import annotations

import pytest

from trainctl.config import load_config
from trainctl.config.load import parse_yaml
from trainctl.config.source import format_key, parse_key
from trainctl.errors import ConfigError, ConfigErrors, Location, UsageError

BASE = """\
name: t
data:
  source: synthetic
model:
  inputs: {x: {shape: [4]}}
  layers:
    - {type: Dense, units: 8, activation: relu, name: hidden}
    - {type: Dense, units: 3, activation: softmax, name: out}
compile:
  optimizer: adam
  loss: sparse_categorical_crossentropy
  metrics: [sparse_categorical_accuracy]
fit:
  epochs: 2
  batch_size: 16
"""


def errors_of(exc: pytest.ExceptionInfo) -> list[ConfigError]:
    err = exc.value
    return err.errors if isinstance(err, ConfigErrors) else [err]


def test_key_round_trip():
    path = ("model", "layers", 0, "units")
    assert format_key(path) == "model.layers[0].units"
    assert parse_key("model.layers[0].units") == path
    for bad in ["", "a..b", "[0]", "a.", "a[x]"]:
        with pytest.raises(ValueError):
            parse_key(bad)


def test_positions_point_at_values():
    data, where = parse_yaml("a: 1\nb:\n  - {x: 2, y: [1, 2]}\n", "f.yaml")
    assert data == {"a": 1, "b": [{"x": 2, "y": [1, 2]}]}
    assert where.locate("b[0].y[1]") == Location("f.yaml", 3, 19)
    assert where.locate("a") == Location("f.yaml", 1, 4)
    # an unknown key falls back to its nearest known parent
    assert where.locate("b[0].zzz") == Location("f.yaml", 3, 5)


def test_valid_config_loads_and_is_frozen(write_config):
    cfg = load_config(write_config(BASE))
    assert cfg.experiment.fit.epochs == 2
    assert cfg.experiment.model.layers[0].args == {"units": 8, "activation": "relu",
                                                   "name": "hidden"}
    with pytest.raises(Exception):
        cfg.experiment.fit.epochs = 3  # frozen


def test_yaml_tags_are_refused(write_config):
    path = write_config(BASE + "seed: !!python/object/apply:os.system [echo hi]\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "!!python/object/apply:os.system" in str(exc.value)
    assert f"{path}:16:7" in str(exc.value)


def test_syntax_error_names_line(write_config):
    path = write_config(BASE.replace("epochs: 2", "epochs: [2"))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}:")
    assert "YAML syntax error" in str(exc.value)


# An unclosed quote, list or mapping is reported where it opens (PyYAML's context
# mark), not where YAML noticed it: the end of the file, or the next line.
UNCLOSED = [
    ("quote", "name: t", 'name: "t', "1:7", "a quoted string starts here and is never "
     "closed (the file ended at line 15)", "add the closing \""),
    ("single-quote", "name: t", "name: 't", "1:7", "a quoted string starts here and is never "
     "closed (the file ended at line 15)", "add the closing '"),
    ("list", "metrics: [sparse_categorical_accuracy]", "metrics: [sparse_categorical_accuracy",
     "12:12", "a list ('[') starts here and is not closed: YAML expected ',' or ']' at line "
     "13, column 4 but found ':'", "add the missing ']'"),
    ("mapping", "name: hidden}", "name: hidden", "7:7", "a mapping ('{') starts here and is "
     "not closed: YAML expected ',' or '}' at line 8, column 7 but found '{'",
     "add the missing '}'"),
    ("list-at-end", "  batch_size: 16\n", "  batch_size: [16\n", "15:15", "a list ('[') "
     "starts here and is never closed (the file ended at line 15)", "add the missing ']'"),
]


@pytest.mark.parametrize("case", UNCLOSED, ids=[c[0] for c in UNCLOSED])
def test_unclosed_quote_or_bracket_is_reported_where_it_opens(write_config, case):
    _id, old, new, line_col, words, hint = case
    assert old in BASE
    path = write_config(BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    first, second = str(exc.value).splitlines()
    assert first == f"{path}:{line_col}: YAML syntax error: {words}"
    assert second.startswith(f"  hint: {hint}")


def test_quote_closed_by_a_later_quote_is_reported_where_it_opens():
    # the open quote on line 2 runs on to the quote on line 4; YAML fails after that one
    with pytest.raises(ConfigError) as exc:
        parse_yaml('seed: 1\nname: "mnist\nepochs: 2\nfit: "x"\n', "f.yaml")
    assert str(exc.value).startswith("f.yaml:2:7: YAML syntax error: a quoted string starts "
                                     "here and runs on to line 4, column 6")
    assert "is the closing \" of this value missing? add it on line 2" in str(exc.value)


def test_line_without_a_colon_is_reported_on_that_line():
    with pytest.raises(ConfigError) as exc:
        parse_yaml("name: t\nseed 1\nfit: {}\n", "f.yaml")
    assert str(exc.value).startswith("f.yaml:2:1: YAML syntax error: expected 'key: value', "
                                     "but no ':' follows 'seed 1'")


def test_other_syntax_errors_stay_where_yaml_noticed_them():
    # a bad escape is where YAML says; the mapping it is in is named with its line
    with pytest.raises(ConfigError, match=r"^f.yaml:2:7: YAML syntax error: found unknown "
                                          r"escape character 'q'"):
        parse_yaml('a: 1\nb: "x\\qy"\n', "f.yaml")
    with pytest.raises(ConfigError, match=r"^f.yaml:3:2: .*expected <block end>.*\(while "
                                          r"parsing a block mapping at line 1, column 1\)"):
        parse_yaml("a:\n  b: 1\n c: 2\n", "f.yaml")


def test_duplicate_key_is_an_error(write_config):
    path = write_config(BASE + "seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'seed'; first given at line 16"):
        load_config(path)


def test_unknown_key_suggests_nearest(write_config):
    path = write_config(BASE.replace("batch_size: 16", "batch_sise: 16"))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    text = str(exc.value)
    assert f"{path}:15:3: fit.batch_sise: unknown key 'batch_sise'" in text
    assert "did you mean 'batch_size'?" in text


def test_wrong_type_says_expected_and_received(write_config):
    path = write_config(BASE.replace("epochs: 2", "epochs: two"))
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value) == (f"{path}:14:11: fit.epochs: expected an integer; "
                              "received 'two' (str)")


def test_no_coercion_of_strings(write_config):
    path = write_config(BASE.replace("epochs: 2", "epochs: '2'"))
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(path)


def test_literal_error_lists_choices(write_config):
    path = write_config(BASE + "runtime: {precision: half}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "runtime.precision: expected 'float32', 'mixed_float16' or 'mixed_bfloat16'" \
        in str(exc.value)


def test_missing_required_section(write_config):
    path = write_config("model:\n  inputs: {x: {shape: [4]}}\n  layers: [{type: Dense, units: 1}]\n"
                        "compile: {loss: mse}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "data: required key is missing" in str(exc.value)
    assert "add 'data:'" in str(exc.value)


def test_several_errors_reported_together(write_config):
    path = write_config(BASE.replace("epochs: 2", "epochs: -1").replace(
        "batch_size: 16", "batch_size: 0"))
    with pytest.raises(ConfigErrors) as exc:
        load_config(path)
    keys = [e.key for e in exc.value.errors]
    assert keys == ["fit.epochs", "fit.batch_size"]
    assert "expected a value >= 0; received -1 (int)" in str(exc.value)


def test_extends_merges_base_under_child(tmp_path, write_config):
    write_config(BASE, "_base/base.yaml")
    path = write_config("extends: _base/base.yaml\nfit: {epochs: 5}\n", "child.yaml")
    cfg = load_config(path)
    assert cfg.experiment.fit.epochs == 5
    assert cfg.experiment.fit.batch_size == 16  # from the base
    assert cfg.locate("fit.epochs").file == str(path)
    assert cfg.locate("fit.batch_size").file.endswith("base.yaml")


def test_a_bases_paths_stay_relative_to_the_base(tmp_path, write_config):
    """A base's data.path and weights_from name files beside the base, wherever the
    config that extends it lives (they were read from the child's folder)."""
    write_config(BASE.replace("  source: synthetic", "  source: npz\n  path: ../mine.npz")
                 .replace("model:\n", "model:\n  weights_from: {path: w.keras}\n"),
                 "bases/deep/root.yaml")
    (tmp_path / "bases" / "mine.npz").write_bytes(b"")
    child = write_config("extends: ../bases/deep/root.yaml\n", "sub/leaf.yaml")
    cfg = load_config(child, semantic=False)
    assert (cfg.config_dir / cfg.experiment.data.path).resolve() == tmp_path / "bases/mine.npz"
    assert (cfg.config_dir / cfg.experiment.model.weights_from.path).resolve() == \
        tmp_path / "bases/deep/w.keras"
    assert cfg.raw["data"]["path"] == "../bases/mine.npz"  # what the run's config.yaml keeps
    # a child's own path is its own
    own = write_config("extends: ../bases/deep/root.yaml\ndata: {path: here.npz}\n",
                       "sub/own.yaml")
    assert load_config(own, semantic=False).experiment.data.path == "here.npz"


def test_extends_errors_point_into_the_base(tmp_path, write_config):
    write_config(BASE.replace("units: 8", "units: eight"), "_base/base.yaml")
    path = write_config("extends: _base/base.yaml\n", "child.yaml")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "base.yaml:7:28: model.layers[0].units" in str(exc.value)


def test_extends_missing_and_cycle(write_config):
    path = write_config("extends: nowhere.yaml\n" + BASE)
    with pytest.raises(ConfigError, match="base config not found"):
        load_config(path)
    write_config("a: 1\n", "bases/x.yaml")
    with pytest.raises(ConfigError, match="bases is a folder; extends names a YAML file"):
        load_config(write_config("extends: bases/\n" + BASE))
    write_config("extends: b.yaml\n" + BASE, "a.yaml")
    write_config("extends: a.yaml\n", "b.yaml")
    with pytest.raises(ConfigError, match="extends cycle"):
        load_config(write_config("extends: a.yaml\n", "c.yaml"))


def test_set_overrides_any_key(write_config):
    cfg = load_config(write_config(BASE), ["fit.epochs=7", "model.layers[0].units=32",
                                           "compile.optimizer={type: Adam, learning_rate: 0.01}"])
    exp = cfg.experiment
    assert exp.fit.epochs == 7
    assert exp.model.layers[0].args["units"] == 32
    assert exp.compile.optimizer == {"type": "Adam", "learning_rate": 0.01}
    assert str(cfg.locate("fit.epochs")) == "--set fit.epochs=7"


@pytest.mark.parametrize("text, value", [("1e-3", 0.001), ("1.0e3", 1000.0), ("-2E+4", -2e4),
                                         (".5e1", 5.0), ("1.0e-3", 0.001), ("42", 42),
                                         ("1e", "1e"), ("e3", "e3"), ("1e-3x", "1e-3x")])
def test_exponent_numbers_are_floats_as_in_yaml_1_2(text, value):
    # PyYAML (YAML 1.1) reads 1e-3 as a string: learning_rate: 1e-3 was "unknown schedule"
    parsed = parse_yaml(f"lr: {text}", "t.yaml")[0]["lr"]
    assert parsed == value and type(parsed) is type(value)


def test_an_exponent_learning_rate_from_file_and_set(write_config):
    cfg = load_config(write_config(BASE.replace("optimizer: adam",
                                                "optimizer: {type: Adam, learning_rate: 1e-3}")),
                      ["fit.epochs=2", "compile.optimizer.beta_1=9e-1"])
    assert cfg.experiment.compile.optimizer == {"type": "Adam", "learning_rate": 0.001,
                                                "beta_1": 0.9}


def test_set_errors(write_config):
    path = write_config(BASE)
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        load_config(path, ["fit.epochs"])
    with pytest.raises(ConfigError, match="index 5 is out of range: the list has 2 items"):
        load_config(path, ["model.layers[5].units=3"])
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["fit.epochz=3"])
    assert str(exc.value).startswith("--set fit.epochz=3: fit.epochz: unknown key")


def test_run_name_cannot_escape(write_config):
    with pytest.raises(ConfigError, match="becomes part of a folder name"):
        load_config(write_config(BASE.replace("name: t", "name: ../../etc")))


# -- regressions found by tests/test_fuzz.py ---------------------------------------------
@pytest.mark.parametrize("text, where, words", [
    ("a: 1\nb: x\x1by\n", "f.yaml:2:5", "YAML does not allow the character '\\x1b' (U+001B)"),
    ("a: \x00\n", "f.yaml:1:4", "U+0000"),
])
def test_control_character_is_a_config_error(text, where, words):
    # PyYAML checks the characters while the loader is made: a ReaderError traceback
    with pytest.raises(ConfigError) as exc:
        parse_yaml(text, "f.yaml")
    assert str(exc.value).startswith(f"{where}: ")
    assert words in str(exc.value)
    assert "\x00" not in str(exc.value) and "\x1b" not in str(exc.value)


@pytest.mark.parametrize("value, tag", [
    ("!!int abc", "!!int"), ("!!float abc", "!!float"), ("!!bool maybe", "!!bool"),
    ("!!timestamp yesterday", "!!timestamp"), ("!!timestamp 2001-13-45", "!!timestamp"),
    ("!!binary 3", "!!binary"), ("9" * 5000, "!!int"),  # more digits than int() converts
])
def test_bad_value_for_a_yaml_tag(value, tag):
    # PyYAML's constructors raised ValueError / KeyError / AttributeError (tracebacks)
    with pytest.raises(ConfigError) as exc:
        parse_yaml(f"seed: {value}\n", "f.yaml")
    assert str(exc.value).startswith("f.yaml:1:7: seed: cannot read ")
    assert f"as {tag} (" in str(exc.value)


@pytest.mark.parametrize("text", ["x: &a [*a]\n", "x: &a {b: *a}\n", "x: &a\n  - *a\n"])
def test_alias_inside_its_own_anchor(text):
    # was a RecursionError traceback
    with pytest.raises(ConfigError, match="refers to a value that contains it"):
        parse_yaml(text, "f.yaml")


def test_billion_laughs_stops_quickly():
    # nested aliases expanding to 9**9 values: the loader hung, eating memory
    import time

    text = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9) if i else 'lol'}]\n"
                   for i in range(10))
    start = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than 100,000 values"):
        parse_yaml(text, "f.yaml")
    assert time.monotonic() - start < 5


def test_plain_aliases_and_merge_keys_still_work():
    # (a key given after a merge key overrides the merged one: it was a "duplicate key")
    data, _ = parse_yaml("base: &b {epochs: 1, batch_size: 8}\nfit: {<<: *b, epochs: 3}\n"
                         "x: &x [1, 2]\ny: [*x, *x]\n", "f.yaml")
    assert data["fit"] == {"epochs": 3, "batch_size": 8}
    assert data["y"] == [[1, 2], [1, 2]]
    with pytest.raises(ConfigError, match="duplicate key 'epochs'"):
        parse_yaml("base: &b {epochs: 1}\nfit: {<<: *b, epochs: 3, epochs: 4}\n", "f.yaml")


@pytest.mark.parametrize("text", ["a: " + "[" * 5000, "a: " + "{b: " * 200 + "1",
                                  "- " * 500 + "x"])
def test_deep_nesting_is_a_config_error(text):
    # PyYAML's composer recursed once per level: a RecursionError traceback
    with pytest.raises(ConfigError, match="nested more than 64 levels deep") as exc:
        parse_yaml(text, "f.yaml")
    assert str(exc.value).startswith("f.yaml:1:")


def test_aliases_of_aliases_cannot_nest_too_deep():
    # each alias nests one level more: was a RecursionError in the builder
    text = "c0: &c0 [1]\n" + "".join(f"c{i}: &c{i} [*c{i - 1}]\n" for i in range(1, 400))
    with pytest.raises(ConfigError, match="nested more than 64 levels deep"):
        parse_yaml(text, "f.yaml")


def test_bad_characters_in_set_value(write_config):
    path = write_config(BASE)
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["name=a\x00b"])
    assert str(exc.value).startswith("--set name=a\\x00b:1:")
    with pytest.raises(ConfigError, match="nested more than 64"):
        load_config(path, ["fit.epochs=" + "[" * 5000])


@pytest.mark.parametrize("value", ["\\0", "''", "' '"])
def test_extends_that_is_not_a_path(write_config, value):
    # a NUL byte in the path: ValueError traceback from the file system call
    path = write_config(f'extends: "{value}"\n' if value == "\\0" else f"extends: {value}\n")
    with pytest.raises(ConfigError, match="expected a path to a YAML file") as exc:
        load_config(path)
    assert str(exc.value).startswith(f"{path}:1:10: extends: ")


def test_odd_keys_keep_their_line(write_config):
    # a key holding '.', '[' or nothing made the dotted key unparseable: no line:col
    path = write_config(BASE.replace("  batch_size: 16", '  batch_size: 16\n  "a.b[": 1\n  "": 2'))
    with pytest.raises(ConfigErrors) as exc:
        load_config(path)
    lines = str(exc.value).splitlines()
    assert lines[0].startswith(f"{path}:16:3: fit.a.b[: unknown key 'a.b['")
    assert lines[1].startswith(f"{path}:17:3: fit.: unknown key ''")


def test_set_display_is_one_short_line(write_config):
    path = write_config(BASE)
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["fit.epochs=- 1\n- 2"])
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith("--set fit.epochs=- 1\\n- 2: fit.epochs: expected an integer")
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["seed=" + "9" * 200])
    assert str(exc.value).startswith("--set seed=" + "9" * 72 + "...: seed: ")


def test_key_created_by_set_points_at_the_option(write_config):
    # the unknown key was reported at the file's first line, not at the --set option
    path = write_config(BASE)
    with pytest.raises(ConfigError) as exc:
        load_config(path, ["comzile.loss=mse"])
    assert str(exc.value).startswith("--set comzile.loss=mse: comzile: unknown key 'comzile'")


def test_two_kinds_of_validation_data_are_refused_by_validate(write_config):
    # fit refused them only after loading the data
    with pytest.raises(ConfigError, match="give one kind of validation data; received "
                                          "holdout, split"):
        load_config(write_config(BASE), ["data.validation={holdout: 16, split: 0.2}"])


def test_a_list_item_named_with_a_dot_gets_the_bracket_hint(write_config):
    for option, fixed in (("model.layers.0.units=5", "model.layers[0]"),
                          ("model.layers.1=5", "model.layers[1]")):
        with pytest.raises(ConfigError) as exc:
            load_config(write_config(BASE), [option])
        assert f"hint: a list item is named by its index in brackets: {fixed}" in str(exc.value)
