"""S27: a GAN whose own ``compile(d_optimizer, g_optimizer, loss_fn)`` gets its arguments
from YAML (configs/examples/s27_gan.yaml, examples/plugins/gan.py).

One smoke-size run is interrupted (SIGINT, in process) after its first epoch and
resumed; along the way it shows both losses in history, both optimizers' step
counters in the resumable state, the sample grids, predict (the generator's samples)
and evaluate (both losses on the test images).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import ROOT
from trainctl.cli import cli

CONFIG = "configs/examples/s27_gan.yaml"
SMOKE_STEPS = 2  # --smoke caps every epoch at 2 training steps


def iterations(run: Path) -> list[int]:
    """Each optimizer's iteration counter in the run's resumable state (``<i>/0``)."""
    with np.load(run / "checkpoints" / "resume" / "optimizers.npz") as saved:
        return [int(saved[k]) for k in sorted(saved.files) if k.endswith("/0")]


def finite_history(run: Path, epochs: int) -> dict:
    history = json.loads((run / "history.json").read_text())
    for key in ("d_loss", "g_loss", "loss"):
        assert len(history[key]) == epochs, history
        assert all(math.isfinite(v) for v in history[key]), history
    return history


def test_gan_interrupted_after_an_epoch_resumes_both_optimizers(mnist_dir, tmp_path,
                                                                monkeypatch):
    monkeypatch.setenv("TRAINCTL_DATA_DIR", str(mnist_dir))
    monkeypatch.chdir(ROOT)
    marker = tmp_path / "sent"
    runs = tmp_path / "runs"
    sigint = ("fit.callbacks=[{type: SampleGrid, log_dir: samples}, "
              f"{{type: 'tests.plugins.pause:SignalAt', epoch: 1, batch: 0, marker: '{marker}'}}]")
    first = CliRunner().invoke(cli, ["fit", CONFIG, "--smoke", "--runs-dir", str(runs),
                                     "--set", "fit.epochs=2", "--set", sigint])
    assert first.exit_code == 130, first.output
    run = next(runs.iterdir())
    finite_history(run, epochs=1)
    # the state after epoch 0: each optimizer made exactly that epoch's steps
    assert iterations(run) == [SMOKE_STEPS, SMOKE_STEPS]

    resumed = CliRunner().invoke(cli, ["resume", str(run)])
    assert resumed.exit_code == 0, resumed.output
    finite_history(run, epochs=2)
    # restored, not restarted: the counters went on from the first attempt's
    assert iterations(run) == [2 * SMOKE_STEPS, 2 * SMOKE_STEPS]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_000.png",
                                                                   "epoch_001.png"]

    predicted = CliRunner().invoke(cli, ["predict", str(run)])
    assert predicted.exit_code == 0, predicted.output
    samples = np.load(run / "predictions.npy")
    assert samples.shape == (64, 28, 28, 1) and 0 <= samples.min() <= samples.max() <= 1
    evaluated = CliRunner().invoke(cli, ["evaluate", str(run)])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert sorted(metrics) == ["d_loss", "g_loss", "loss"]
    assert all(math.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("edit, expected", [
    # a typo in an argument of GAN.compile: named, with the nearest parameter
    (("  d_optimizer: {type: Adam,", "  d_optimiser: {type: Adam,"),
     ["compile.d_optimiser: unknown key 'd_optimiser' (did you mean 'd_optimizer'",
      "GAN.compile takes: d_optimizer, g_optimizer, loss_fn",
      "missing argument(s) of GAN.compile: d_optimizer"]),
    # each optimizer is an optimizer component, its schedule checked too
    (("initial_learning_rate: 0.0002", "initial_learning_rate: fast"),
     ["compile.g_optimizer.learning_rate.initial_learning_rate: expected a number"]),
    (("  loss_fn: {type: BinaryCrossentropy,", "  loss_fn: {type: BinaryCrossEntropy,"),
     ["compile.loss_fn.type:", "(did you mean 'BinaryCrossentropy'?)"]),
])
def test_gan_compile_section_is_checked_against_its_signature(tmp_path, monkeypatch, edit,
                                                              expected):
    monkeypatch.chdir(ROOT)  # `imports: [examples.plugins.gan]` is found from here
    text = (ROOT / CONFIG).read_text()
    assert edit[0] in text
    path = tmp_path / "gan.yaml"
    path.write_text(text.replace(edit[0], edit[1]))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    for part in expected:
        assert part in result.output
    assert f"{path}:" in result.output and "Traceback" not in result.output


def test_an_ordinary_model_still_rejects_unknown_compile_keys(write_config):
    text = (ROOT / "configs" / "mnist.yaml").read_text().replace(
        "  optimizer: rmsprop", "  optimizer: rmsprop\n  d_optimizer: adam")
    result = CliRunner().invoke(cli, ["validate", str(write_config(text))])
    assert result.exit_code == 2, result.output
    assert "compile.d_optimizer: unknown key 'd_optimizer' (did you mean 'optimizer'?); " \
           "valid keys:" in result.output
