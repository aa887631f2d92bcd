"""``trainctl runs list``, ``runs show`` and ``compare`` on real (tiny) runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import run_python, tiny_config
from trainctl.cli import cli

SYNTH = tiny_config("synth", seed=5, epochs=2)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def fit(config: Path, runs: Path, *args: str) -> Path:
    result = invoke("fit", config, "--runs-dir", runs, *args)
    assert result.exit_code in (0, 2), result.output
    return Path(next(line[5:] for line in result.output.splitlines() if line.startswith("run: ")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two completed runs that differ in batch size and name, and one that failed."""
    folder = tmp_path_factory.mktemp("runs")
    config = folder / "synth.yaml"
    config.write_text(SYNTH, encoding="utf-8")
    out = folder / "runs"
    return {"a": fit(config, out, "--smoke", "--set", "fit.epochs=2"),
            "b": fit(config, out, "--smoke", "--set", "fit.epochs=2", "--set",
                     "fit.batch_size=8", "--name", "wide"),
            # a callback path that leaves the run folder fails after the folder exists
            "failed": fit(config, out, "--smoke", "--set",
                          "fit.callbacks=[{type: CSVLogger, filename: ../../x.csv}]")}


def read(run: Path, name: str):
    return json.loads((run / name).read_text())


def listed(*args) -> list[dict]:
    result = invoke("runs", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_json_reads_every_run_from_its_files(runs):
    rows = {r["id"]: r for r in listed("--runs", runs["a"].parent)}
    assert set(rows) == {p.name for p in runs.values()}
    for key in ("a", "b"):
        row, history = rows[runs[key].name], read(runs[key], "history.json")
        assert row["status"] == "completed" and row["epochs"] == len(history["loss"]) == 2
        assert row["monitor"] == "val_loss" and row["mode"] == "min"
        assert row["best"] == min(history["val_loss"])
        assert row["best_epoch"] == history["val_loss"].index(row["best"]) + 1
        assert row["test"] == read(runs[key], "metrics.json")
        assert row["duration"] >= 0 and row["seed"] == 5
    assert rows[runs["b"].name]["name"] == "wide" and rows[runs["a"].name]["name"] == "synth"
    failed = rows[runs["failed"].name]
    assert failed["status"] == "failed" and failed["epochs"] == 0 and failed["best"] is None
    assert failed["exit_reason"] == read(runs["failed"], "run.json")["exit_reason"]
    assert failed["exit_reason"] and rows[runs["a"].name]["exit_reason"] is None


def test_list_table_has_full_ids_and_the_values(runs):
    result = invoke("runs", "list", "--runs", runs["a"].parent)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["id", "name", "status", "epochs", "monitor", "best"]
    assert "test_loss" in lines[0] and "duration" in lines[0]
    row = next(line for line in lines if line.startswith(runs["a"].name + " "))
    best = min(read(runs["a"], "history.json")["val_loss"])
    test_loss = read(runs["a"], "metrics.json")["loss"]
    assert "completed" in row and "2/2" in row and f"{best:.4f} @" in row
    assert f"{test_loss:.4f}" in row


def test_list_filters_by_name_and_status(runs):
    folder = runs["a"].parent
    assert [r["id"] for r in listed("--runs", folder, "--status", "failed")] == \
        [runs["failed"].name]
    assert [r["id"] for r in listed("--runs", folder, "--name", "WID")] == [runs["b"].name]
    # repeated: any of them (a second --status used to replace the first)
    assert sorted(r["id"] for r in listed("--runs", folder, "--status", "failed",
                                          "--status", "interrupted")) == [runs["failed"].name]
    assert len(listed("--runs", folder, "--status", "failed", "--status", "completed")) == 3
    result = invoke("runs", "list", "--runs", folder, "--status", "interrupted")
    assert result.exit_code == 0 and result.stdout == ""
    assert "none of the 3 run(s)" in result.stderr and "--status interrupted" in result.stderr
    result = invoke("runs", "list", "--runs", folder, "--status", "done")
    assert result.exit_code == 2 and "'done' is not one of" in result.stderr


@pytest.mark.parametrize("metric", ["val_loss", "test_sparse_categorical_accuracy"])
def test_list_sorts_best_first_and_runs_without_the_metric_last(runs, metric):
    result = invoke("runs", "list", "--runs", runs["a"].parent, "--sort", metric, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    higher = metric.endswith("accuracy")
    values = [r["test"][metric[5:]] if metric.startswith("test_") else r["best"]
              for r in rows[:2]]
    assert values == sorted(values, reverse=higher)
    assert rows[-1]["id"] == runs["failed"].name  # has no value: last
    assert f"sorted by {metric}" in result.stderr
    assert ("higher first" if higher else "lower first") in result.stderr


def test_list_errors_and_empty_folders(runs, tmp_path):
    result = invoke("runs", "list", "--runs", runs["a"].parent, "--sort", "val_los")
    assert result.exit_code == 2 and "did you mean 'val_loss'" in result.stderr
    result = invoke("runs", "list", "--runs", tmp_path / "nowhere")
    assert result.exit_code == 2 and f"{tmp_path / 'nowhere'}: does not exist" in result.stderr
    assert "Traceback" not in result.output
    (tmp_path / "empty").mkdir()
    result = invoke("runs", "list", "--runs", tmp_path / "empty")
    assert result.exit_code == 0 and "no runs in" in result.stderr
    assert invoke("runs", "list", "--runs", tmp_path / "empty", "--json").stdout.strip() == "[]"


def test_a_sweep_folder_lists_its_trials(runs, tmp_path):
    sweep = tmp_path / "runs" / "sweep-x"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}")
    for key in ("a", "b"):
        shutil.copytree(runs[key], sweep / runs[key].name)
    assert {r["id"] for r in listed("--runs", sweep)} == {runs["a"].name, runs["b"].name}
    result = invoke("runs", "list", "--runs", tmp_path / "runs")
    assert result.exit_code == 0 and f"trainctl runs list --runs {sweep}" in result.stderr
    # --name filters the sweep folders it points to as it filters runs
    assert f"--runs {sweep}" not in invoke("runs", "list", "--runs", tmp_path / "runs",
                                           "--name", "other").stderr
    assert f"--runs {sweep}" in invoke("runs", "list", "--runs", tmp_path / "runs",
                                       "--name", "SWEEP").stderr


def test_a_killed_run_is_told_apart_from_a_live_one(runs, tmp_path):
    from trainctl.run.lock import hold

    run = tmp_path / "runs" / runs["a"].name
    shutil.copytree(runs["a"], run)
    info = read(run, "run.json")
    (run / "run.json").write_text(json.dumps({**info, "status": "running", "end": None}))
    [row] = listed("--runs", run.parent)
    assert row["status"] == "running" and row["stale"] is True
    assert "running (no process)" in invoke("runs", "list", "--runs", run.parent).stdout
    with hold(run):  # a live fit holds the run's lock
        [row] = listed("--runs", run.parent)
    assert row["stale"] is False


def test_show_prints_status_seed_command_metrics_config_and_files(runs):
    result = invoke("runs", "show", runs["a"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    history = read(runs["a"], "history.json")
    assert "status   completed" in out and "seed     5 (config)" in out
    # (in-process, the recorded command is pytest's argv: compare with run.json's record)
    assert f"command  {' '.join(read(runs['a'], 'run.json')['command'])}\n" in out
    val = history["val_loss"]
    assert f"val_loss (lower is better): best {min(val):.4f} at epoch {val.index(min(val)) + 1}" \
        in out
    row = next(line for line in out.splitlines() if line.startswith("val_loss "))
    assert row.split()[1:3] == [f"{val[-1]:.4f}", f"{min(val):.4f}"]
    assert "optimizer: {type: Adam, learning_rate: 0.05}" in out  # config.yaml
    for name in ("model.keras", "history.json", "checkpoints/last.keras"):
        assert f"  {name} " in out
    assert ".lock" not in out
    assert "curves.png" not in out  # a smoke run draws none unless runtime.plots is set
    data = json.loads(invoke("runs", "show", runs["failed"], "--json").stdout)
    assert data["status"] == "failed" and "leaves the run folder" in data["exit_reason"]


def test_show_of_something_else_exits_2(tmp_path):
    result = invoke("runs", "show", tmp_path)
    assert result.exit_code == 2 and "not a trainctl run folder (no run.json)" in result.stderr


def test_compare_shows_only_the_differing_keys_and_metrics_side_by_side(runs):
    result = invoke("compare", runs["a"], runs["b"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    keys = [line.split()[0] for line in out.split("config (keys that differ):")[1]
            .split("metrics:")[0].strip().splitlines()[1:]]
    assert keys == ["fit.batch_size"]  # --name changes the folder, not the config
    row = next(line for line in out.splitlines() if line.strip().startswith("fit.batch_size"))
    assert row.split()[1:] == ["16", "8"]
    losses = [read(runs[k], "metrics.json")["loss"] for k in ("a", "b")]
    row = next(line for line in out.splitlines() if line.strip().startswith("test_loss"))
    assert row.split()[1:] == [f"{v:.4f}" for v in losses]
    finals = [read(runs[k], "history.json")["val_loss"][-1] for k in ("a", "b")]
    row = next(line for line in out.splitlines() if line.strip().startswith("val_loss (final)"))
    assert row.split()[2:] == [f"{v:.4f}" for v in finals]
    data = json.loads(invoke("compare", runs["a"], runs["b"], "--json").stdout)
    assert data["config"] == {"fit.batch_size": [16, 8]}


def test_files_deleted_by_hand_are_named_not_shown_as_an_empty_run(runs, tmp_path):
    edited = Path(shutil.copytree(runs["b"], tmp_path / runs["b"].name))
    (edited / "config.yaml").unlink()
    (edited / "history.json").unlink()
    shown = invoke("runs", "show", edited)
    assert shown.exit_code == 0, shown.output
    assert "warning: config.yaml is missing" in shown.output
    assert "warning: history.json is missing" in shown.output  # a completed run had one
    result = invoke("compare", runs["a"], edited)
    assert result.exit_code == 0, result.output
    assert f"warning: [2] {edited}: config.yaml is missing" in result.stdout
    data = json.loads(invoke("compare", runs["a"], edited, "--json").stdout)
    # no config to compare: no key is "different", none shown as absent
    assert data["config"] == {}


def test_compare_needs_two_runs(runs):
    result = invoke("compare", runs["a"])
    assert result.exit_code == 2 and "at least two runs" in result.stderr


def test_looking_at_runs_imports_neither_tensorflow_nor_matplotlib(runs):
    code = "\n".join([
        "import os, sys",
        "from click.testing import CliRunner",
        "from trainctl.cli import cli",
        f"a, b = {str(runs['a'])!r}, {str(runs['b'])!r}",
        "for argv in (['runs', 'list', '--runs', os.path.dirname(a)], ['runs', 'show', a],",
        "             ['compare', a, b]):",
        "    r = CliRunner().invoke(cli, argv)",
        "    assert r.exit_code == 0, r.output",
        "assert not {'tensorflow', 'keras', 'matplotlib'} & set(sys.modules), 'imported'"])
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr


def test_show_lists_the_attempts_of_a_resumed_run(runs, tmp_path):
    resumed = Path(shutil.copytree(runs["a"], tmp_path / runs["a"].name))
    info = read(resumed, "run.json")
    info["attempts"] = [{"command": "fit", "status": "interrupted"},
                        {"command": "resume", "from_epoch": 1, "overrides":
                         ["compile.optimizer=adam"], "forced": True, "status": "completed"}]
    (resumed / "run.json").write_text(json.dumps(info))
    result = invoke("runs", "show", resumed)
    assert result.exit_code == 0, result.output
    assert ("fit: interrupted; resume from epoch 2 (--force, --set compile.optimizer=adam): "
            "completed") in result.stdout
    plain = invoke("runs", "show", runs["a"]).stdout.splitlines()
    assert not [line for line in plain if line.startswith("attempts ")]  # one attempt: no line
