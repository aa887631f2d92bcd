"""Resume, interruption and reproducibility (trainctl.run.resume, state, lock, reproduce).

The kill tests run a real ``trainctl fit`` subprocess, hold it still mid-epoch with
the ``tests.plugins.pause:PauseAt`` callback, kill it (SIGKILL, SIGTERM), resume it
and compare with an uninterrupted run of the same seed. They use MNIST cut to 120
steps an epoch (3 epochs) so each run takes seconds, deterministic ops so the
comparison can be exact.
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

from conftest import ROOT, SHARED_DATA
from trainctl.cli import cli

SETS = ("fit.epochs=3", "fit.steps_per_epoch=60", "fit.validation_steps=10",
        "runtime.deterministic=true", "evaluate.steps=10", "fit.keep_checkpoints=2")


def pause_sets(marker: Path, epoch: int = 1, batch: int = 20) -> tuple[str, ...]:
    return (f"fit.callbacks=[{{type: 'tests.plugins.pause:PauseAt', epoch: {epoch}, "
            f"batch: {batch}, marker: '{marker}'}}]",)


def trainctl(*args: str, mnist: Path) -> subprocess.Popen:
    env = dict(os.environ, TRAINCTL_DATA_DIR=str(mnist), PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "trainctl", *map(str, args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def sets(*overrides: str) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


def run_to_end(*args: str, mnist: Path) -> tuple[int, str]:
    proc = trainctl(*args, mnist=mnist)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def kill_when_paused(proc: subprocess.Popen, marker: Path, sig: int) -> str:
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "the run never reached the pause"
        time.sleep(0.1)
    proc.send_signal(sig)
    marker.with_name(marker.name + ".release").touch()  # the pause ends; the next step stops
    out, _ = proc.communicate(timeout=120)
    return out


def only_run(runs: Path) -> Path:
    [run] = [p for p in runs.iterdir() if p.is_dir()]
    return run


def info(run: Path) -> dict:
    return json.loads((run / "run.json").read_text())


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> Path:
    """The folder with mnist.npz (module-scoped twin of conftest's ``mnist_dir``)."""
    folder = Path(os.environ.get("TRAINCTL_DATA_DIR", SHARED_DATA))
    if not (folder / "mnist.npz").is_file():
        pytest.skip("mnist.npz not available (set TRAINCTL_DATA_DIR)")
    return folder


@pytest.fixture(scope="module")
def uninterrupted(mnist, tmp_path_factory) -> Path:
    """The reference: the same config, never interrupted (the pause marker exists already)."""
    tmp = tmp_path_factory.mktemp("reference")
    marker = tmp / "marker"
    marker.write_text("no pause\n")
    code, out = run_to_end("fit", "configs/mnist.yaml", "--runs-dir", tmp / "runs",
                           *sets(*SETS, *pause_sets(marker)), mnist=mnist)
    assert code == 0, out
    return only_run(tmp / "runs")


@pytest.mark.parametrize("sig, code, status", [(signal.SIGKILL, -9, "running"),
                                               (signal.SIGTERM, 143, "interrupted")])
def test_killed_mid_epoch_then_resumed_matches_uninterrupted(uninterrupted, mnist, tmp_path,
                                                             sig, code, status):
    marker = tmp_path / "marker"
    proc = trainctl("fit", "configs/mnist.yaml", "--runs-dir", tmp_path / "runs",
                    *sets(*SETS, *pause_sets(marker)), mnist=mnist)
    out = kill_when_paused(proc, marker, sig)
    assert proc.returncode == code, out
    run = only_run(tmp_path / "runs")
    assert info(run)["status"] == status
    if sig == signal.SIGTERM:
        assert "trainctl resume" in out and "Traceback" not in out
    # epoch 0 finished, epoch 1 was cut short: only epoch 0 is in the history
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 1

    code, out = run_to_end("resume", run, mnist=mnist)
    assert code == 0, out
    assert "resuming at epoch 2 of 3" in out
    history = json.loads((run / "history.json").read_text())
    reference = json.loads((uninterrupted / "history.json").read_text())
    assert all(len(v) == 3 for v in history.values())
    csv_rows = (run / "history.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in csv_rows] == ["epoch", "0", "1", "2"]
    # deterministic ops: every epoch, the resumed ones included, equals the reference
    assert history == reference
    acc = json.loads((run / "metrics.json").read_text())["sparse_categorical_accuracy"]
    ref = json.loads((uninterrupted / "metrics.json").read_text())["sparse_categorical_accuracy"]
    assert abs(acc - ref) <= 0.01
    attempts = info(run)["attempts"]
    assert [a["command"] for a in attempts] == ["fit", "resume"]
    assert attempts[1]["from_epoch"] == 1 and info(run)["status"] == "completed"
    # fit.keep_checkpoints=2: the two newest epochs by number, across the resume
    folder = run / "checkpoints"
    assert sorted(p.name for p in folder.glob("*.keras")) == \
        ["best.keras", "epoch-002.keras", "epoch-003.keras", "last.keras"]
    assert (folder / "epoch-003.keras").read_bytes() == (folder / "last.keras").read_bytes()


def test_resume_refuses_a_changed_config_with_a_diff(uninterrupted, tmp_path):
    """Checked before anything is loaded; the stored run is left untouched."""
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(uninterrupted), str(run)], check=True)
    data = info(run)
    (run / "run.json").write_text(json.dumps({**data, "status": "interrupted"}))
    before = (run / "history.json").read_bytes()
    result = CliRunner().invoke(cli, ["resume", str(run), "--set", "fit.batch_size=32",
                                      "--set", "compile.optimizer=adam"])
    assert result.exit_code == 2, result.output
    assert "fit.batch_size" in result.output and "64 -> 32" in result.output
    assert "compile.optimizer" in result.output and "--force" in result.output
    assert (run / "history.json").read_bytes() == before


def test_resume_on_a_completed_run_changes_nothing(uninterrupted):
    before = {p.name: p.stat().st_mtime_ns for p in uninterrupted.iterdir()}
    result = CliRunner().invoke(cli, ["resume", str(uninterrupted)])
    assert result.exit_code == 0, result.output
    assert "completed already" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in uninterrupted.iterdir()} == before
    # --set is checked (a typo is exit 2) but not applied; the note says how to train on
    typo = CliRunner().invoke(cli, ["resume", str(uninterrupted), "--set", "fit.epoch=3"])
    assert typo.exit_code == 2 and "did you mean 'epochs'" in typo.output, typo.output
    more = CliRunner().invoke(cli, ["resume", str(uninterrupted), "--set", "fit.epochs=9"])
    assert more.exit_code == 0 and "--set fit.epochs=9 not applied" in more.output
    assert f"--set model.weights_from={uninterrupted.resolve()}" in more.output
    assert {p.name: p.stat().st_mtime_ns for p in uninterrupted.iterdir()} == before


def test_reproduce_matches_a_deterministic_run_byte_for_byte(uninterrupted, mnist, tmp_path):
    """`trainctl reproduce` re-runs the reference: deterministic, so history.json is
    byte-identical and the comparison is exact."""
    code, out = run_to_end("reproduce", uninterrupted, "--runs-dir", tmp_path / "runs",
                           mnist=mnist)
    assert code == 0, out
    assert "reproduced" in out and "exactly" in out
    again = Path(out.strip().splitlines()[-1])
    assert again.parent == tmp_path / "runs"
    assert (again / "history.json").read_bytes() == (uninterrupted / "history.json").read_bytes()
    record = info(uninterrupted)["reproductions"][-1]
    assert record["matched"] is True and record["tolerance"] == 0.0
    assert record["run"] == str(again)


def test_differences_table():
    from trainctl.run.reproduce import differences, format_table

    old = {"history.loss[0]": 0.5, "history.loss[1]": 0.25, "metrics.acc": 0.9}
    new = {"history.loss[0]": 0.5, "history.loss[1]": 0.75, "metrics.auc": 0.8}
    rows = differences(old, new, tolerance=0.0)
    assert rows == [("history.loss[1]", 0.25, 0.75), ("metrics.acc", 0.9, None),
                    ("metrics.auc", None, 0.8)]
    table = format_table(rows)
    assert "+0.5" in table and table.count("\n") == 3
    assert differences({"a": 1.0}, {"a": 1.01}, tolerance=0.02) == []
    assert differences({"a": float("nan")}, {"a": float("nan")}, tolerance=0.0) == []
    epochs = {f"history.loss[{i}]": float(i) for i in (3, 37, 10, 2)}
    assert [key for key, _, _ in differences(epochs, {}, tolerance=0.0)] == [
        "history.loss[2]", "history.loss[3]", "history.loss[10]", "history.loss[37]"]


@pytest.fixture
def op_determinism():
    """TF op determinism is process-wide: switch it off again for the tests after this one."""
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    yield
    if not was_on:
        tf_config.disable_op_determinism()


@pytest.mark.parametrize("loop, epoch", [("custom", 1), ("keras", 0)])
def test_sigint_then_resume_in_place(mnist, tmp_path, monkeypatch, op_determinism, loop, epoch):
    """In-process (CliRunner): Ctrl-C in an epoch (the first one too, before the optimizer
    has made a step) exits 130 with the run interrupted; resume finishes it with the
    history of an uninterrupted run."""
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist))
    monkeypatch.chdir(ROOT)
    marker = tmp_path / "sent"
    common = [f"fit.loop={loop}", "fit.epochs=3", "fit.steps_per_epoch=15",
              "fit.validation_steps=5", "evaluate.steps=5", "runtime.deterministic=true",
              f"fit.callbacks=[{{type: 'tests.plugins.pause:SignalAt', epoch: {epoch}, "
              f"batch: 4, marker: '{marker}'}}, {{type: CSVLogger, filename: keras.csv}}]"]

    def fit(runs: Path):
        return CliRunner().invoke(cli, ["fit", "configs/mnist.yaml", "--runs-dir", str(runs),
                                        *sets(*common)])

    first = fit(tmp_path / "runs")
    assert first.exit_code == 130, first.output
    run = only_run(tmp_path / "runs")
    assert info(run)["status"] == "interrupted" and "SIGINT" in info(run)["exit_reason"]
    resumed = CliRunner().invoke(cli, ["resume", str(run)])
    assert resumed.exit_code == 0, resumed.output
    reference = fit(tmp_path / "reference")  # the marker exists: no signal this time
    assert reference.exit_code == 0, reference.output
    ref_run = only_run(tmp_path / "reference")
    assert (run / "history.json").read_bytes() == (ref_run / "history.json").read_bytes()
    assert info(run)["status"] == "completed"
    # the user's CSVLogger carried on in its file rather than starting it again
    rows = [r.split(",")[0] for r in (run / "keras.csv").read_text().splitlines()]
    assert rows == ["epoch", "0", "1", "2"]


def test_resume_from_a_truncated_state_is_a_clear_error(uninterrupted, mnist, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist))
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(uninterrupted), str(run)], check=True)
    (run / "run.json").write_text(json.dumps({**info(run), "status": "interrupted"}))
    weights = run / "checkpoints" / "resume" / "model.npz"
    weights.write_bytes(weights.read_bytes()[:200])
    result = CliRunner().invoke(cli, ["resume", str(run)])
    assert result.exit_code == 2, result.output
    assert "cannot restore the saved state" in result.output
    assert str(run / "checkpoints" / "resume") in result.output
    assert "Traceback" not in result.output
    assert info(run)["status"] == "interrupted" and len(info(run)["attempts"]) == 1


def test_sigterm_after_the_last_epoch_then_resume_completes(mnist, tmp_path, monkeypatch):
    """A signal outside the training steps (here when training ends, before the model is
    saved) still ends in status interrupted and exit 143; resume then only saves and
    evaluates."""
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist))
    monkeypatch.chdir(ROOT)
    marker = tmp_path / "sent"
    result = CliRunner().invoke(cli, [
        "fit", "configs/mnist.yaml", "--smoke", "--runs-dir", str(tmp_path / "runs"),
        *sets("fit.epochs=2", f"fit.callbacks=[{{type: 'tests.plugins.pause:SignalAtEnd', "
                              f"marker: '{marker}'}}]")])
    assert result.exit_code == 143, result.output
    run = only_run(tmp_path / "runs")
    assert info(run)["status"] == "interrupted" and not (run / "model.keras").exists()
    resumed = CliRunner().invoke(cli, ["resume", str(run)])
    assert resumed.exit_code == 0, resumed.output
    assert "all 2 epochs are done" in resumed.output
    assert (run / "model.keras").is_file() and info(run)["status"] == "completed"
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 2


@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_while_the_model_is_built_is_an_interruption(tmp_path, monkeypatch,
                                                              name, code):
    """A signal that lands in code which turns exceptions into config errors (calling a
    layer while the model is built) is still an interruption: exit 130/143 and no run
    folder, not 'cannot take input of shape' with exit 2."""
    monkeypatch.chdir(ROOT)
    layers = (f"model.layers=[{{type: 'tests.plugins.pause:SignalInCall', signal: {name}}}, "
              "{type: Dense, units: 10, activation: softmax, name: predictions}]")
    result = CliRunner().invoke(cli, ["fit", "configs/mnist.yaml", "--smoke", "--runs-dir",
                                      str(tmp_path / "runs"),
                                      *sets("data.source=synthetic", layers)])
    assert result.exit_code == code, result.output
    assert f"by {name}" in result.output and "hint" not in result.output
    assert not (tmp_path / "runs").exists()


def test_a_signal_once_the_run_is_complete_keeps_it_completed(mnist, tmp_path, monkeypatch):
    """Ctrl-C after the test metrics are written (while the run waits for its pictures)
    does not turn a complete run into an interrupted one: exit 0, status completed."""
    import trainctl.run.start as start

    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist))
    monkeypatch.chdir(ROOT)
    settle = start.settle

    def settle_after_ctrl_c(run, timeout=30.0):
        os.kill(os.getpid(), signal.SIGINT)  # handled at once, by trainctl's handler
        return settle(run, timeout)

    monkeypatch.setattr(start, "settle", settle_after_ctrl_c)
    result = CliRunner().invoke(cli, ["fit", "configs/mnist.yaml", "--smoke", "--runs-dir",
                                      str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    run = only_run(tmp_path / "runs")
    assert info(run)["status"] == "completed" and (run / "model.keras").is_file()
    assert "resume" not in result.output


def test_resume_without_saved_state_keeps_finished_epochs_unless_forced(uninterrupted, tmp_path):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(uninterrupted), str(run)], check=True)
    (run / "run.json").write_text(json.dumps({**info(run), "status": "interrupted"}))
    subprocess.run(["rm", "-r", str(run / "checkpoints" / "resume")], check=True)
    result = CliRunner().invoke(cli, ["resume", str(run)])
    assert result.exit_code == 2, result.output
    assert "holds 3 finished epoch(s)" in result.output and "--force" in result.output
    assert len(json.loads((run / "history.json").read_text())["loss"]) == 3


def test_forced_changes_are_applied_not_just_recorded(uninterrupted, mnist, tmp_path,
                                                      monkeypatch):
    """resume --force with another optimizer and batch size trains with them (the
    optimizer starts afresh) and records them: config.yaml, plan and attempt."""
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist))
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(uninterrupted), str(run)], check=True)
    (run / "run.json").write_text(json.dumps({**info(run), "status": "interrupted"}))
    result = CliRunner().invoke(cli, ["resume", str(run), "--force", *sets(
        "fit.epochs=4", "fit.batch_size=128",
        "compile.optimizer={type: RMSprop, learning_rate: 0.01}")])
    assert result.exit_code == 0, result.output
    history = json.loads((run / "history.json").read_text())
    assert history["learning_rate"][2] == pytest.approx(0.001)
    assert history["learning_rate"][3] == pytest.approx(0.01)
    assert info(run)["plan"]["batch_size"] == 128 and info(run)["plan"]["epochs"] == 4
    assert info(run)["attempts"][-1]["forced"] is True
    assert "batch_size: 128" in (run / "config.yaml").read_text()


@pytest.mark.parametrize("verb", ["resume", "reproduce", "evaluate"])
def test_a_missing_run_folder_says_so(tmp_path, verb):
    result = CliRunner().invoke(cli, [verb, str(tmp_path / "nope")])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'nope'}: no such run folder" in result.output


def test_resume_removes_the_temp_files_a_killed_process_left(tmp_path):
    """A SIGKILL leaves the hidden temp files of the writes it was doing; resume (holding
    the run's lock) deletes them and nothing else."""
    from trainctl.artifacts import RunDir
    from trainctl.run.resume import remove_leftovers

    (tmp_path / "checkpoints").mkdir()
    left = [tmp_path / ".model.tmp.png", tmp_path / ".history.json.k3j9.tmp",
            tmp_path / "checkpoints" / ".last.tmp.keras"]
    kept = [tmp_path / ".lock", tmp_path / "run.json", tmp_path / "checkpoints" / "last.keras",
            tmp_path / "tmp_notes.txt"]
    for path in left + kept:
        path.write_text("x")
    assert sorted(remove_leftovers(RunDir(tmp_path))) == sorted(left)
    assert [p for p in left if p.exists()] == [] and all(p.exists() for p in kept)
