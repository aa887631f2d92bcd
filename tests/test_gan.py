"""S27: a GAN whose own ``compile(d_optimizer, g_optimizer, loss_fn)`` gets its arguments
from YAML (configs/examples/s27_gan.yaml, examples/plugins/gan.py).

One smoke-size run is interrupted (SIGINT, in process) after its first epoch and
resumed; along the way it shows both losses in history, both optimizers' step
counters in the resumable state, the sample grids, predict (the generator's samples)
and evaluate (both losses on the test images). With labels (the config's ``mnist``
source) the discriminator's loss has the AC-GAN's real-label term; without them, none.
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


def small_gan():
    """A compiled smoke-size AC-GAN (eager: each step is cheap, nothing to trace)."""
    import keras

    from examples.plugins.gan import GAN

    gan = GAN(latent_dim=16, filters=4, codes=10)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5),
                keras.losses.BinaryCrossentropy(from_logits=True), run_eagerly=True)
    return gan


def test_real_labels_add_the_class_cross_entropy_to_d_loss_only():
    import keras

    gan = small_gan()
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(8, 28, 28, 1)).astype("float32")
    labels = rng.integers(0, 10, size=8)
    state = keras.ops.convert_to_numpy(gan.seed_generator.state)

    def losses(data):
        """test_step's losses, from the same fakes each time (the latents' seed reset)."""
        gan.seed_generator.state.assign(state)
        for metric in gan.metrics:
            metric.reset_state()
        logs = gan.test_step(data)
        return float(logs["d_loss"]), float(logs["g_loss"])

    class_logits = gan.discriminator(images, training=False)[:, 1:]
    expected = float(keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        labels, class_logits, from_logits=True)))
    assert expected > 1.0  # an untrained head: about log(10), far from 0

    d_plain, g_plain = losses((images,))
    assert losses(images) == (d_plain, g_plain)  # a bare batch is unlabelled too
    for data in ((images, labels), (images, labels.reshape(-1, 1).astype("uint8"))):
        d_labelled, g_labelled = losses(data)
        # the real-label term: in the discriminator's loss, not in the generator's
        assert d_labelled - d_plain == pytest.approx(expected, rel=1e-4)
        assert g_labelled == pytest.approx(g_plain, rel=1e-6)
    # other labels, another loss: the term reads the labels
    assert losses((images, (labels + 1) % 10))[0] != pytest.approx(losses((images, labels))[0])

    # one-hot targets are refused with a message, not an obscure shape error
    with pytest.raises(ValueError, match=r"targets must be class ids .*\(one-hot labels\?"):
        gan.test_step((images, np.eye(10, dtype="float32")[labels]))

