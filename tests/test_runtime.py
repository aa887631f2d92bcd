"""trainctl.run.runtime and the performance knobs: they change speed, never results."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from test_cli import SYNTH
from trainctl.cli import cli

pytest.importorskip("tensorflow")


def fit(tmp_path, cfg, *sets: str):
    argv = ["fit", str(cfg), "--runs-dir", str(tmp_path / "runs")]
    for item in sets:
        argv += ["--set", item]
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def history(result) -> dict:
    assert result.exit_code == 0, result.output
    run = result.output.strip().splitlines()[-1]
    with open(f"{run}/history.json") as f:
        return json.load(f)


def test_knobs_leave_the_computation_alone(tmp_path, write_config):
    """No prefetch, cached validation batches and one step per call train exactly
    what the defaults train (float noise at most)."""
    cfg = write_config(SYNTH.replace("epochs: 2", "epochs: 3"))
    default = history(fit(tmp_path, cfg))
    knobs = history(fit(tmp_path, cfg, "runtime.prefetch=0", "runtime.cache=true",
                        "compile.steps_per_execution=1"))
    assert set(knobs) == set(default)
    for key, values in default.items():
        assert knobs[key] == pytest.approx(values, rel=1e-5, abs=1e-6), key


def test_thread_pools_cannot_change_once_tensorflow_runs(tmp_path, write_config):
    import tensorflow as tf

    tf.constant(1.0) + 1  # TensorFlow is running in this process now
    have = tf.config.threading.get_intra_op_parallelism_threads()
    result = fit(tmp_path, write_config(SYNTH), f"runtime.threads.intra_op={have + 3}")
    assert result.exit_code == 2
    assert "runtime.threads.intra_op" in result.output and "own process" in result.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_knob_values_are_config_errors(tmp_path, write_config):
    result = fit(tmp_path, write_config(SYNTH), "runtime.prefetch=-1")
    assert result.exit_code == 2 and "runtime.prefetch" in result.output
