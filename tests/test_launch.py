"""Multi-worker runs: TF_CONFIG roles, ``trainctl launch`` on loopback, a killed worker, resume.

The launches start real worker processes (each imports TensorFlow): about 20 s each.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import ROOT, run_python
from trainctl.cli import cli
from trainctl.errors import UsageError
from trainctl.run.launch import tf_config
from trainctl.run.workers import Role, role

MNIST = str(ROOT / "configs" / "mnist.yaml")
# The launches train configs/mnist.yaml on synthetic data shaped like MNIST: what the
# workers learn does not matter here, and reading and scaling all of MNIST cost each
# worker ~1.5 s (and a full test pass another 1.5 s). 2048 samples leave 512 for
# validation: the 5 validation steps of start_launch never run out.
SYNTHETIC = "data.source={type: synthetic, samples: 2048, test_samples: 128}"
METRIC = re.compile(r"(\w+): (-?[0-9.]+(?:e-?\d+)?)")


def test_role_is_read_from_tf_config():
    assert role({}) == Role(0, 1) and role({}).is_chief
    assert role({"TF_CONFIG": tf_config([1, 2, 3], 2)}) == Role(2, 3)
    assert not role({"TF_CONFIG": tf_config([1, 2], 1)}).is_chief
    # a chief task comes first; workers follow it
    spec = {"cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]}}
    assert role({"TF_CONFIG": json.dumps({**spec, "task": {"type": "chief", "index": 0}})}) \
        == Role(0, 3)
    assert role({"TF_CONFIG": json.dumps({**spec, "task": {"type": "worker", "index": 0}})}) \
        == Role(1, 3)


@pytest.mark.parametrize("text, expected", [
    ("{not json", "expected JSON"),
    (json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
     "task worker:3 is not in its cluster"),
    (json.dumps({"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}),
     "'chief' and 'worker' tasks only"),
])
def test_a_bad_tf_config_is_a_usage_error(text, expected):
    with pytest.raises(UsageError, match=expected):
        role({"TF_CONFIG": text})


@pytest.mark.parametrize("setting, key", [
    ("{strategy: multi_worker, logical_cpus: 2}", "runtime.distribution.logical_cpus"),
    ("{strategy: multi_worker, device: /cpu:0}", "runtime.distribution.device"),
])
def test_distribution_settings_that_do_not_go_together_are_refused(setting, key):
    result = CliRunner().invoke(cli, ["validate", MNIST, "--set",
                                      f"runtime.distribution={setting}"])
    assert result.exit_code == 2, result.output
    assert f"{key}:" in result.output


def test_launch_checks_the_config_before_starting_workers(tmp_path):
    result = CliRunner().invoke(cli, ["launch", "--workers", "2", MNIST, "--runs-dir",
                                      str(tmp_path), "--set", "fit.epochs=-1"])
    assert result.exit_code == 2, result.output
    assert "fit.epochs" in result.output and "[launch]" not in result.output
    assert not any(tmp_path.iterdir())


def worker_lines(output: str, prefix: str) -> dict[int, list[str]]:
    """Each worker's lines that start with ``prefix`` (after its ``[i] ``)."""
    found: dict[int, list[str]] = {}
    for line in output.splitlines():
        match = re.match(r"\[(\d+)\] (.*)", line)
        if match and match.group(2).startswith(prefix):
            found.setdefault(int(match.group(1)), []).append(match.group(2))
    return found


def test_two_workers_train_in_step_into_one_run_folder(tmp_path):
    """configs/mnist.yaml at smoke size on 2 loopback workers: both finish with the same
    weights, one complete run folder exists, and its history is what the workers printed."""
    runs = tmp_path / "runs"
    result = CliRunner().invoke(
        cli, ["launch", "--workers", "2", MNIST, "--smoke", "--runs-dir", str(runs),
              "--set", SYNTHETIC, "--set", "fit.epochs=2", "--set", "fit.loop=custom",
              "--set", "fit.log_every=1"])
    assert result.exit_code == 0, result.output
    out = result.stdout

    digests = worker_lines(out, "worker ")
    assert sorted(digests) == [0, 1]
    sha = {lines[-1].split("sha256 ")[1] for lines in digests.values()}
    assert len(sha) == 1, digests

    folders = list(runs.iterdir())
    assert len(folders) == 1 and out.strip().splitlines()[-1] == str(folders[0])
    run = folders[0]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and info["weights_sha256"] == sha.pop()
    assert info["distribution"] == {"strategy": "MultiWorkerMirroredStrategy", "replicas": 2,
                                    "workers": 2, "global_batch_size": 64,
                                    "per_replica_batch_size": 32, "auto_shard": "DATA"}
    for name in ("model.keras", "metrics.json", "history.csv", "checkpoints/last.keras"):
        assert (run / name).is_file(), name

    history = json.loads((run / "history.json").read_text())
    epochs = worker_lines(out, "epoch ")
    assert sorted(epochs) == [0, 1]
    for lines in epochs.values():
        assert len(lines) == 2
        for number, line in enumerate(lines):
            printed = {k: float(v) for k, v in METRIC.findall(line.split(" - ", 2)[2])}
            assert printed, line
            for key, value in printed.items():
                assert value == pytest.approx(history[key][number], abs=6e-5), (key, line)
    # the per-step loss is the whole global batch's on every worker, not each one's share
    steps = worker_lines(out, "step ")
    assert len(steps[0]) == 4 and steps[0] == steps[1]


def start_launch(runs: Path) -> subprocess.Popen:
    """`trainctl launch --workers 2` of 3 short epochs (100 steps), its output in a pipe."""
    return subprocess.Popen(
        [sys.executable, "-m", "trainctl", "launch", "--workers", "2", MNIST,
         "--runs-dir", str(runs), "--set", SYNTHETIC, "--set", "fit.epochs=3",
         "--set", "fit.steps_per_epoch=100", "--set", "fit.validation_steps=5"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_killed_worker_fails_the_launch_and_the_run_resumes(tmp_path):
    """kill -9 of worker 1 in epoch 2: the launch exits non-zero well within 60 s; then
    the run is continued on one worker (another count than it started with)."""
    runs = tmp_path / "runs"
    proc = start_launch(runs)
    pids, killed, lines = {}, None, []
    for line in proc.stdout:
        lines.append(line)
        match = re.match(r"\[launch\] worker (\d): pid (\d+)", line)
        if match:
            pids[int(match.group(1))] = int(match.group(2))
        if line.startswith("[1] epoch 1/3") and killed is None:
            os.kill(pids[1], signal.SIGKILL)
            killed = time.monotonic()
    proc.wait(timeout=120)
    output = "".join(lines)
    assert killed is not None, output
    assert proc.returncode != 0 and time.monotonic() - killed < 60, output
    assert "another worker of this multi-worker run stopped" in output, output
    run = Path(output.strip().splitlines()[-1])
    assert json.loads((run / "run.json").read_text())["status"] == "failed"
    first_row = (run / "history.csv").read_text().splitlines()[1]

    resumed = subprocess.run([sys.executable, "-m", "trainctl", "resume", str(run)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming at epoch 2 of 3" in resumed.stdout
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed"
    rows = (run / "history.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[1] == first_row
    assert list(runs.iterdir()) == [run]


def test_resume_with_workers_needs_a_multi_worker_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(Path(MNIST).read_text())
    (run / "run.json").write_text(json.dumps({"status": "failed",
                                              "config_path": str(run / "config.yaml")}))
    result = CliRunner().invoke(cli, ["resume", str(run), "--workers", "2"])
    assert result.exit_code == 2, result.output
    assert "--workers continues a multi_worker run" in result.output


def test_sigterm_to_the_launch_stops_every_worker_cleanly(tmp_path):
    """SIGTERM reaches trainctl's handler in every worker (MultiWorkerMirroredStrategy
    installs TensorFlow's own over it): the run stops at a step boundary, status
    interrupted, exit 143, no worker left. (Resuming is the killed-worker test's; on
    the same number of workers it was checked by hand: docs/multi_worker.md.)"""
    runs = tmp_path / "runs"
    proc = start_launch(runs)
    pids, lines = [], []
    for line in proc.stdout:
        lines.append(line)
        match = re.match(r"\[launch\] worker \d: pid (\d+)", line)
        if match:
            pids.append(int(match.group(1)))
        if line.startswith("[0] epoch 1/3") and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    output = "".join(lines)
    assert proc.returncode == 143, output
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids), output
    run = Path(output.strip().splitlines()[-1])
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted", output
    assert f"continue it with `trainctl resume {run}`" in output  # every worker names the run


def test_a_signal_to_one_worker_stops_every_worker_at_the_same_step(tmp_path):
    """SIGTERM to worker 2 only (a preempted machine): the workers agree at their next
    step boundary, so the chief stops cleanly too (interrupted, exit 143) instead of
    failing in a collective its peer left."""
    proc = start_launch(tmp_path / "runs")
    pids, lines = {}, []
    for line in proc.stdout:
        lines.append(line)
        match = re.match(r"\[launch\] worker (\d): pid (\d+)", line)
        if match:
            pids[int(match.group(1))] = int(match.group(2))
        if line.startswith("[1] epoch 1/3") and proc.poll() is None:
            os.kill(pids[1], signal.SIGTERM)
    proc.wait(timeout=120)
    output = "".join(lines)
    assert proc.returncode == 143, output
    assert "terminated by SIGTERM (received by another worker)" in output, output
    run = Path(output.strip().splitlines()[-1])
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted", output
    assert "another worker" in info["exit_reason"]


def test_worker_collectives_count_each_worker_once_with_several_local_replicas():
    """share_name and signal_agreement on 2 local replicas (a worker with 2 GPUs, here 2
    logical CPUs): each replica adds the worker's data, so the name is decoded per copy."""
    code = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
from trainctl.run.workers import Role, share_name, signal_agreement
print(share_name(strategy, "mnist-mlp-20261130-044354-4a6ea8", Role(0, 2)))
print(share_name(strategy, None, Role(0, 2)))
agree = signal_agreement(strategy)
print(agree(None), agree("SIGINT"), agree("SIGTERM"))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["mnist-mlp-20261130-044354-4a6ea8", "None",
                                             "None SIGINT SIGTERM"], proc.stdout
