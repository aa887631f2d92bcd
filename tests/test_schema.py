"""The editor schema (``trainctl schema``): committed as configs/trainctl.schema.json, named
by every config's first line, accepting every config (partial ones too), refusing
unknown keys."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli
from trainctl.config.editor_schema import editor_schema, schema_text

SCHEMA_FILE = ROOT / "configs" / "trainctl.schema.json"
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
IDS = [str(p.relative_to(ROOT)) for p in CONFIGS]
MODELINE = "# yaml-language-server: $schema="


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_committed_schema_is_the_generated_one():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "configs/trainctl.schema.json is out of date: run "
        "`trainctl schema --output configs/trainctl.schema.json`")


def test_schema_command_prints_and_writes_the_same_text(tmp_path):
    printed = CliRunner().invoke(cli, ["schema"])
    assert printed.exit_code == 0 and printed.output == schema_text()
    out = tmp_path / "s.json"
    written = CliRunner().invoke(cli, ["schema", "--output", str(out)])
    assert written.exit_code == 0 and written.output == f"wrote {out}\n"
    assert out.read_text(encoding="utf-8") == schema_text()
    failed = CliRunner().invoke(cli, ["schema", "--output", str(tmp_path / "no" / "s.json")])
    assert failed.exit_code == 2 and "cannot write" in failed.output


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_every_config_names_the_schema_on_its_first_line(config):
    first = config.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(MODELINE), f"{config}: first line {first!r}"
    target = Path(first[len(MODELINE):])
    assert not target.is_absolute()
    assert (config.parent / target).resolve() == SCHEMA_FILE.resolve()


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_every_config_is_valid_under_the_schema(config, validator):
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(data)]
    assert errors == []


def test_merged_configs_are_complete_under_the_strict_schema():
    """What extends merges (config.yaml of a run) meets every `required` of the pydantic
    schema: only the editor's copy is relaxed."""
    from trainctl.config.extends import load_with_extends
    from trainctl.config.schema import Experiment

    strict = jsonschema.Draft202012Validator(Experiment.model_json_schema())
    partial = [p for p in CONFIGS if "_base" not in p.parts and "extends" in p.read_text()]
    assert partial, "no config uses extends"
    for path in partial:
        merged, _ = load_with_extends(path)  # the merge alone: no plug-in is imported
        raw = {k: v for k, v in merged.items() if k != "extends"}
        assert list(strict.iter_errors(raw)) == [], path


def mnist() -> dict:
    return yaml.safe_load((ROOT / "configs" / "mnist.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [("epochz",), ("fit", "epochz"), ("runtime", "plotz"),
                                  ("data", "validation", "holdot")])
def test_an_unknown_key_is_refused_where_it_is(validator, path):
    data = copy.deepcopy(mnist())
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = 2
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    assert list(error.absolute_path) == list(path[:-1])
    assert "Additional properties are not allowed" in error.message and path[-1] in error.message


def test_partial_mappings_pass_but_list_items_stay_whole(validator):
    assert list(validator.iter_errors({"extends": "_base/x.yaml", "fit": {"epochs": 3}})) == []
    assert list(validator.iter_errors({"model": {"inputs": {"x": {"dtype": "int32"}}}})) == []
    layers = {"model": {"layers": [{"units": 3}]}}  # a list is replaced whole by extends
    [error] = list(validator.iter_errors(layers))
    assert list(error.absolute_path) == ["model", "layers", 0] and "'type'" in error.message
    [error] = list(validator.iter_errors({"fit": {"epochs": "2"}}))
    assert list(error.absolute_path) == ["fit", "epochs"]


@pytest.mark.parametrize("layer, path, says", [
    ({"type": "Dense", "unit": 64}, [], "'unit' was unexpected"),
    ({"type": "Dense"}, [], "'units' is a required property"),
    ({"type": "Dense", "units": 64, "activaton": "relu"}, [], "'activaton' was unexpected"),
    ({"type": "Dense", "units": "64"}, ["units"], "is not of type 'integer'"),
    ({"type": "Dense", "units": 0}, ["units"], "is less than the minimum of 1"),
    ({"type": "Conv2D", "filters": 8, "kernel_size": 3, "padding": "samee"}, ["padding"],
     "is not one of"),
])
def test_a_keras_layers_arguments_are_checked_in_the_editor(validator, layer, path, says):
    data = {"model": {"layers": [layer]}}
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    assert error is not None and list(error.absolute_path) == ["model", "layers", 0, *path]
    assert says in error.message


def test_plug_in_and_well_formed_layers_stay_open(validator):
    layers = [{"type": "Dense", "units": 64, "activation": "relu", "name": "d", "inputs": "x"},
              {"type": "Conv2D", "filters": 8, "kernel_size": [3, 3], "padding": "same"},
              {"type": "MyDenseLayer", "anything": 1}, {"type": "my_layers:Block", "k": 2}]
    assert list(validator.iter_errors({"model": {"layers": layers}})) == []


def test_every_key_a_user_may_write_is_in_the_schema():
    """runtime.plots (this issue) and every top-level section are offered for completion."""
    schema = editor_schema()
    assert {"name", "seed", "imports", "extends", "data", "model", "compile", "fit",
            "evaluate", "predict", "runtime"} <= set(schema["properties"])
    assert "plots" in schema["$defs"]["RuntimeConfig"]["properties"]
    assert os.path.relpath(SCHEMA_FILE, ROOT) == os.path.join("configs", "trainctl.schema.json")
