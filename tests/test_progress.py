"""Progress output of both loops: Keras's bar on a terminal, one line per epoch otherwise."""

from __future__ import annotations

import io
import re
import sys

import keras
import pytest

from conftest import tiny_config
from trainctl.config import load_config
from trainctl.run.callbacks import EpochPrinter
from trainctl.run.progress import CLEAR_LINE, is_terminal


class FakeTerminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def fit_with_stdout(stream, write_config, tmp_path, loop: str) -> str:
    """A 2-epoch run of the tiny config (4 steps an epoch) with ``stream`` as stdout."""
    from trainctl.run.fit import fit

    extra = f"  loop: {loop}\n" + ("  log_every: 3\n" if loop == "custom" else "")
    text = tiny_config(f"progress-{loop}", seed=5, epochs=2).replace(
        "fit: {epochs: 2, batch_size: 16}", "fit:\n  epochs: 2\n  batch_size: 16\n" + extra)
    cfg = load_config(write_config(text, f"{loop}.yaml"))
    saved = sys.stdout
    sys.stdout = stream
    try:
        fit(cfg, runs_dir=tmp_path / "runs")
    finally:
        sys.stdout = saved
    return stream.getvalue()


@pytest.mark.parametrize("loop", ["keras", "custom"])
def test_a_terminal_gets_keras_progress_bar(loop, write_config, tmp_path):
    out = fit_with_stdout(FakeTerminal(), write_config, tmp_path, loop)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)  # the bar's colours
    assert "Epoch 1/2" in plain and "Epoch 2/2" in plain
    # Keras's bar, redrawn in place (\r): 48 training samples in batches of 16 are 3
    # steps; each epoch's bar ends complete, with the validation metrics
    finals = re.findall(r"3/3 ━+ \S+ \S+ - loss: \d\.\d{4} .*? - val_loss: \d\.\d{4}", plain)
    assert len(finals) == 2, plain
    assert "\r" in out and "epoch 1/2 - " not in out  # no CI-style line on a terminal
    if loop == "custom":  # a log line clears the bar's line first
        assert f"{CLEAR_LINE}step 3: loss " in out


@pytest.mark.parametrize("loop", ["keras", "custom"])
def test_a_log_gets_one_line_per_epoch_and_no_per_step_hook(loop, write_config, tmp_path):
    out = fit_with_stdout(io.StringIO(), write_config, tmp_path, loop)
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line[:10] for line in lines] == ["epoch 1/2 ", "epoch 2/2 "]
    assert all(re.search(r" - \d+\.\ds - loss: \d\.\d{4} .* - val_loss: \d\.\d{4}", line)
               for line in lines), lines
    assert "\r" not in out and "\x1b" not in out and "\x08" not in out


def test_off_a_terminal_the_printer_adds_no_batch_hook():
    printer = EpochPrinter(2, stream=io.StringIO())
    base = keras.callbacks.Callback.on_train_batch_end
    assert "on_train_batch_end" not in vars(printer)
    assert type(printer).on_train_batch_end is base
    assert "on_train_batch_end" in vars(EpochPrinter(2, stream=FakeTerminal()))


def test_is_terminal_is_false_for_files_pipes_and_closed_streams(tmp_path):
    closed = io.StringIO()
    closed.close()
    with open(tmp_path / "f.txt", "w") as handle:
        assert not is_terminal(handle)
    assert not is_terminal(closed) and not is_terminal(object())
    assert is_terminal(FakeTerminal())


def test_epoch_line_puts_loss_first_then_validation():
    from trainctl.run.console import format_metrics

    # Keras 3 hands its logs sorted by name: a multi-output model's loss came mid-line
    logs = {"class_output_accuracy": 0.5, "class_output_loss": 1.0, "loss": 2.0,
            "val_class_output_accuracy": 0.25, "val_loss": 2.5, "learning_rate": 2e-4}
    assert format_metrics(logs) == (
        "loss: 2.0000 - class_output_accuracy: 0.5000 - class_output_loss: 1.0000 - "
        "learning_rate: 2.0000e-04 - val_loss: 2.5000 - val_class_output_accuracy: 0.2500")
