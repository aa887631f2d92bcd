"""Sweeps (trainctl.sweep): the search space's checks, a grid killed and resumed,
--parallel, pruning, and the report (table, best.yaml, plots, runs show).

Each trial is a real ``trainctl fit`` child process (TensorFlow start-up is most of
its cost), so the sweeps are as small as the behaviour allows: 3 trials of a 2x2 grid
killed and resumed (also the "ends with 3 trials and the right best trial" check), a
3-point grid with --parallel 2, and a 2-trial grid for the pruner.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli

GRID = """\
sweep:
  sampler: grid
  params:
    compile.optimizer.learning_rate: {grid: [0.0, 0.1]}
    model.layers[0].units: {grid: [4, 8]}
"""


def config(write_config, sweep: str = GRID, regularizer: str = "") -> Path:
    """A 4-feature, 3-class MLP on 64 synthetic samples, with a ``sweep:`` section."""
    return write_config(f"""\
name: tiny
seed: 1
data:
  source: {{type: synthetic, samples: 64, test_samples: 16}}
  validation: {{holdout: 16}}
model:
  inputs: {{x: {{shape: [4]}}}}
  layers:
    - {{type: Dense, units: 8, activation: relu, name: hidden{regularizer}}}
    - {{type: Dense, units: 3, activation: softmax, name: out}}
compile:
  optimizer: {{type: Adam, learning_rate: 0.05}}
  loss: sparse_categorical_crossentropy
fit: {{epochs: 1, batch_size: 16}}
runtime: {{plots: false}}
{sweep}""")


def trainctl(*args, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "trainctl", *map(str, args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=400)
    return proc.returncode, out


def sweep_folder(runs: Path) -> Path:
    [folder] = [p for p in runs.iterdir() if (p / "sweep.json").is_file()]
    return folder


def trial_folders(folder: Path) -> dict[str, list[Path]]:
    """Trial name (``trial-002``) -> its run folders (exactly one when no trial ran twice)."""
    out: dict[str, list[Path]] = {}
    for run in sorted(folder.glob("trial-*")):
        out.setdefault("-".join(run.name.split("-")[:2]), []).append(run)
    return out


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def snapshot(run: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of a run folder: its mtime and bytes."""
    return {str(p.relative_to(run)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(run.rglob("*")) if p.is_file()}


def assert_best_is_right(folder: Path) -> None:
    """The best trial in sweep.json, best.yaml, the table and `runs show` is the trial whose
    own history.json has the lowest val_loss."""
    state = read(folder / "sweep.json")
    lows = {int(name.split("-")[1]): min(read(runs[0] / "history.json")["val_loss"])
            for name, runs in trial_folders(folder).items()
            if read(runs[0] / "run.json")["status"] == "completed"}
    best = min(lows, key=lows.get)
    assert state["trials"][str(best)]["value"] == pytest.approx(lows[best])
    import yaml

    config_yaml = yaml.safe_load((folder / "best.yaml").read_text())
    assert "sweep" not in config_yaml
    params = state["trials"][str(best)]["params"]
    assert config_yaml["compile"]["optimizer"]["learning_rate"] == \
        params["compile.optimizer.learning_rate"]
    assert config_yaml["model"]["layers"][0]["units"] == params["model.layers[0].units"]
    result = CliRunner().invoke(cli, ["runs", "show", str(folder)])
    assert result.exit_code == 0, result.output
    table = result.output.splitlines()
    assert table[1].split()[:2] == ["trial", "state"]
    assert table[2].split()[0] == f"trial-{best:03d}"  # sorted by the objective
    assert f"best: trial-{best:03d}" in result.output
    for png in ("optimization_history.png", "param_importances.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"


def test_a_bad_search_space_is_a_config_error_before_any_trial(write_config, tmp_path):
    path = config(write_config, """\
sweep:
  sampler: tpe
  trials: 2
  params:
    fit.epoch: {int: [1, 3]}
    compile.optimizer.learning_rate: {loguniform: [1.0e-2, 1.0e-4]}
    model.layers[0].units: {int: [8, 8]}
    seed: {grid: [1, 2]}
""")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:20:5: sweep.params.fit.epoch: the config has no key fit.epoch " \
           "(did you mean 'epochs'?)" in result.output
    assert f"{path}:21:5: sweep.params.compile.optimizer.learning_rate: the range " \
           "[0.01, 0.0001] is reversed" in result.output
    assert f"{path}:22:5: sweep.params.model.layers[0].units: the range [8, 8] is empty" \
        in result.output
    assert f"{path}:23:5: sweep.params.seed: sampler tpe takes no grid parameter" in result.output
    result = CliRunner().invoke(cli, ["sweep", str(path), "--runs-dir", tmp_path / "runs"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_a_grid_killed_mid_trial_resumes_without_running_a_trial_twice(write_config, tmp_path):
    """3 of the 2x2 grid's points (--trials 3; each trial is a process): killed in trial 1's
    second epoch, the resumed sweep keeps trial 0, continues trial 1 from its checkpoint,
    starts trial 2, and keeps to the budget of 3."""
    path = config(write_config)
    marker = tmp_path / "paused"
    pause = (f"fit.callbacks=[{{type: 'tests.plugins.trial_pause:PauseInTrial', trial: 1, "
             f"epoch: 1, batch: 0, marker: '{marker}'}}]")
    proc = trainctl("sweep", path, "--smoke", "--trials", "3", "--set", "fit.epochs=3",
                    "--set", pause, "--runs-dir", tmp_path / "runs", start_new_session=True)
    deadline = time.monotonic() + 300
    while not marker.exists():  # the second trial, in its second epoch
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the sweep never reached the pause"
        time.sleep(0.1)
    folder = sweep_folder(tmp_path / "runs")
    trials = trial_folders(folder)
    before = {"trial-000": snapshot(trials["trial-000"][0])}
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its trial processes
    proc.communicate(timeout=60)
    state = read(folder / "sweep.json")
    assert {n: e["state"] for n, e in state["trials"].items()} == \
        {"0": "complete", "1": "running"}  # trial 2 not started yet
    second = trials["trial-001"][0]
    first_row = (second / "history.csv").read_text().splitlines()[:2]
    assert len(first_row) == 2 and read(second / "history.json")["loss"].__len__() == 1

    code, out = finish(trainctl("resume", folder))
    assert code == 0, out
    assert "resuming: 1 unfinished trial(s), 1 finished" in out
    assert out.strip().splitlines()[-1] == str(folder)
    trials = trial_folders(folder)
    assert {name: len(runs) for name, runs in trials.items()} == \
        {f"trial-00{i}": 1 for i in range(3)}  # no trial ran twice; the 4th point never
    assert {name: snapshot(trials[name][0]) for name in before} == before
    info = read(second / "run.json")
    assert [a["command"] for a in info["attempts"]] == ["fit", "resume"]
    assert info["attempts"][1]["from_epoch"] == 1 and info["status"] == "completed"
    assert info["sweep"]["trial"] == 1 and info["sweep"]["params"] == \
        state["trials"]["1"]["params"]
    rows = (second / "history.csv").read_text().splitlines()
    assert rows[:2] == first_row and [r.split(",")[0] for r in rows] == ["epoch", "0", "1", "2"]
    assert [a["command"] for a in read(trials["trial-002"][0] / "run.json")["attempts"]] == \
        ["fit"]  # started by the resumed sweep, as a new trial
    state = read(folder / "sweep.json")
    assert state["status"] == "completed"
    assert all(e["state"] == "complete" for e in state["trials"].values())
    assert len(state["trials"]) == 3 and not (folder / "run.json").exists()
    assert_best_is_right(folder)


def test_parallel_workers_finish_the_grid_each_trial_once(write_config, tmp_path):
    """Three grid points, two workers: the second wave asks the queue again."""
    path = config(write_config, GRID.replace("[0.0, 0.1]", "[0.0, 0.05, 0.1]")
                  .replace("[4, 8]", "[8]"))
    code, out = finish(trainctl("sweep", path, "--smoke", "--parallel", "2",
                                "--runs-dir", tmp_path / "runs"))
    assert code == 0, out
    folder = sweep_folder(tmp_path / "runs")
    trials = trial_folders(folder)
    assert {name: len(runs) for name, runs in trials.items()} == \
        {f"trial-00{i}": 1 for i in range(3)}
    points = set()
    for [run] in trials.values():
        info = read(run / "run.json")
        assert [a["command"] for a in info["attempts"]] == ["fit"]
        points.add(tuple(sorted(info["sweep"]["params"].items())))
    assert points == {(("compile.optimizer.learning_rate", lr), ("model.layers[0].units", u))
                      for lr in (0.0, 0.05, 0.1) for u in (8,)}  # the whole grid, once each
    assert_best_is_right(folder)


def test_a_median_pruner_prunes_a_bad_trial(write_config, tmp_path):
    """A heavy L2 penalty makes trial 1's val_loss far above trial 0's at epoch 1."""
    path = config(write_config, """\
sweep:
  sampler: grid
  pruner: {type: median, n_startup_trials: 1}
  params:
    model.layers[0].kernel_regularizer.l2: {grid: [0.0, 100.0]}
""", regularizer=", kernel_regularizer: {type: L2, l2: 0.0}")
    db = f"sqlite:///{tmp_path / 'optuna.db'}"  # --storage: an Optuna URL, not the journal
    code, out = finish(trainctl("sweep", path, "--smoke", "--set", "fit.epochs=3",
                                "--storage", db, "--runs-dir", tmp_path / "runs"))
    assert code == 0, out
    folder = sweep_folder(tmp_path / "runs")
    assert not (folder / "study.journal").exists()
    import optuna

    [summary] = optuna.get_all_study_summaries(db)
    study = optuna.load_study(study_name=summary.study_name, storage=db)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED"]
    trials = trial_folders(folder)
    pruned = read(trials["trial-001"][0] / "run.json")
    assert pruned["status"] == "pruned" and pruned["pruned_at_epoch"] == 1
    # the trial's own final write says pruned (not completed, corrected later by the sweep)
    assert pruned["attempts"][-1]["status"] == "pruned"
    assert len(read(trials["trial-001"][0] / "history.json")["val_loss"]) == 1  # of 3
    assert read(trials["trial-000"][0] / "run.json")["status"] == "completed"
    state = read(folder / "sweep.json")
    assert [state["trials"][n]["state"] for n in "01"] == ["complete", "pruned"]
    listed = CliRunner().invoke(cli, ["runs", "list", "--runs", str(folder), "--status",
                                      "pruned", "--json"])
    assert listed.exit_code == 0 and [r["id"] for r in json.loads(listed.stdout)] == \
        [trials["trial-001"][0].name]


def test_a_value_the_config_refuses_is_a_config_error_at_its_place(write_config, tmp_path):
    """Each choice/grid value is applied to the config and validated before any trial."""
    path = config(write_config, """\
sweep:
  sampler: grid
  params:
    model.layers[0].units: {grid: [4, "wide"]}
""")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:19:39: sweep.params.model.layers[0].units: grid value 'wide' does not " \
           "fit the config: model.layers[0].units: expected a positive integer" in result.output
    result = CliRunner().invoke(cli, ["sweep", str(path), "--runs-dir", tmp_path / "runs"])
    assert result.exit_code == 2 and not (tmp_path / "runs").exists()


def test_an_objective_the_runs_do_not_log_stops_the_sweep_at_its_first_trial(write_config,
                                                                            tmp_path):
    """A typo in sweep.objective.metric is refused by the first trial before it trains
    (exit 2), and the sweep stops there instead of training every trial for nothing."""
    path = config(write_config, GRID.replace("  params:", "  objective: {metric: val_los}\n"
                                                           "  params:"))
    code, out = finish(trainctl("sweep", path, "--smoke", "--runs-dir", tmp_path / "runs"))
    assert code == 2, out
    assert "sweep.objective.metric: 'val_los' is not a value this run logs (did you mean " \
           "'val_loss'?)" in out
    assert "trial 0 was refused as bad input" in out and "[trial-001]" not in out
    state = read(sweep_folder(tmp_path / "runs") / "sweep.json")
    assert state["status"] == "failed" and list(state["trials"]) == ["0"]
