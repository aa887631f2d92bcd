"""trainctl.run.callbacks: the callbacks trainctl adds to every run."""

from __future__ import annotations

import pytest

pytest.importorskip("keras")
from trainctl.artifacts import RunDir, copy_file  # noqa: E402
from trainctl.run.checkpointer import Checkpointer  # noqa: E402


class SavesItsEpoch:
    """A stand-in model whose saved file holds the epoch it was saved at."""

    def __init__(self):
        self.epoch = 0

    def save(self, path):
        with open(path, "w") as f:
            f.write(f"epoch {self.epoch}")


def test_best_keeps_its_epoch_when_last_moves_on(tmp_path):
    """best.keras is a copy of last.keras at its epoch; the next epoch's last.keras must
    not change it."""
    run = RunDir.create(tmp_path, "ck")
    model = SavesItsEpoch()
    checkpointer = Checkpointer(run, "val_loss", "min")
    checkpointer.set_model(model)
    for epoch, val_loss in enumerate([0.5, 0.3, 0.4]):
        model.epoch = epoch
        checkpointer.on_epoch_end(epoch, {"val_loss": val_loss})
    folder = run.file("checkpoints")
    assert (folder / "last.keras").read_text() == "epoch 2"
    assert (folder / "best.keras").read_text() == "epoch 1"
    assert sorted(p.name for p in folder.iterdir()) == ["best.keras", "last.keras"]


def test_keep_checkpoints_keeps_the_newest_epochs_by_number(tmp_path):
    """fit.keep_checkpoints: epoch-NNN.keras copies of last.keras, the oldest deleted;
    epoch 1000 is newer than epoch 999 although it sorts first as text."""
    run = RunDir.create(tmp_path, "ck")
    model = SavesItsEpoch()
    checkpointer = Checkpointer(run, "val_loss", "min", keep=2)
    checkpointer.set_model(model)
    for epoch in (997, 998, 999, 1000):
        model.epoch = epoch
        checkpointer.on_epoch_end(epoch, {"val_loss": 1.0})
    folder = run.file("checkpoints")
    assert sorted(p.name for p in folder.iterdir()) == \
        ["best.keras", "epoch-1000.keras", "epoch-1001.keras", "last.keras"]
    assert (folder / "epoch-1001.keras").read_text() == "epoch 1000"
    assert (folder / "best.keras").read_text() == "epoch 997"


def test_a_save_into_one_copy_leaves_the_others_alone(tmp_path):
    """Keras's model.save writes into an existing file: with hard links a user saving
    over model.keras would change the checkpoints too. Copies are independent."""
    last = tmp_path / "last.keras"
    last.write_text("epoch 1")
    copy_file(last, tmp_path / "model.keras")
    with open(tmp_path / "model.keras", "w") as f:  # in place, as model.save does
        f.write("fine-tuned")
    assert last.read_text() == "epoch 1"
    assert not list(tmp_path.glob("*.tmp"))


def test_an_ema_inside_a_loss_scale_optimizer_still_needs_its_own_save():
    """mixed_float16 wraps the optimizer: its EMA weights, swapped in after the last
    epoch, make model.keras differ from last.keras."""
    import keras

    from trainctl.run.assemble import optimizer_uses_ema

    wrapped = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(use_ema=True))
    assert optimizer_uses_ema(wrapped) and optimizer_uses_ema(keras.optimizers.SGD(use_ema=True))
    assert not optimizer_uses_ema(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam()))
    assert not optimizer_uses_ema(None)


def test_a_nan_seen_at_the_end_of_a_group_names_the_steps_it_can_be_in():
    """With steps_per_execution the loss is seen once per group: the message names the
    group's steps, not the last one as if it were exact."""
    from trainctl.run.callbacks import Diverged, DivergenceGuard

    guard = DivergenceGuard()
    guard.on_epoch_begin(0)
    guard.on_train_batch_end(9, {"loss": 0.5})  # steps 1-10 ran in one call
    with pytest.raises(Diverged, match=r"at epoch 1, one of steps 11-20 \(run in one call"):
        guard.on_train_batch_end(19, {"loss": float("nan")})
    guard.on_epoch_begin(1)
    guard.on_train_batch_end(0, {"loss": 0.5})  # one step per call: exact
    with pytest.raises(Diverged, match=r"at epoch 2, step 2$") as caught:
        guard.on_train_batch_end(1, {"loss": float("inf")})
    assert (caught.value.first, caught.value.step) == (1, 1)


def with_writer(tmp_path):
    """A run folder, a stand-in model, a BackgroundWriter and a Checkpointer using it
    over 3 planned epochs."""
    from trainctl.run.writer import BackgroundWriter

    run = RunDir.create(tmp_path, "ck")
    model = SavesItsEpoch()
    writer = BackgroundWriter()
    checkpointer = Checkpointer(run, "val_loss", "min", writer=writer)
    checkpointer.set_model(model)
    checkpointer.set_params({"epochs": 3})
    return run, model, writer, checkpointer


def test_the_last_epochs_files_go_to_the_writer_the_others_are_written_at_once(tmp_path):
    """With a writer, only the last planned epoch's checkpoint is written beside the
    test evaluation (nothing changes the weights then); earlier ones at their epoch's end."""
    import threading

    run, model, writer, checkpointer = with_writer(tmp_path)
    release = threading.Event()
    writer.submit(release.wait)  # the writer is busy: a job given to it waits
    last = run.file("checkpoints") / "last.keras"
    for epoch, val_loss in enumerate([0.5, 0.3]):
        model.epoch = epoch
        checkpointer.on_epoch_end(epoch, {"val_loss": val_loss})
        assert last.read_text() == f"epoch {epoch}"  # written on this thread
    model.epoch = 2
    checkpointer.on_epoch_end(2, {"val_loss": 0.1})
    assert last.read_text() == "epoch 1"  # handed to the busy writer
    release.set()
    writer.wait()
    assert last.read_text() == "epoch 2"
    assert (run.file("checkpoints") / "best.keras").read_text() == "epoch 2"


def test_a_validated_epoch_is_saved_beside_its_validation(tmp_path):
    """With a writer, the save starts when validation begins (the epoch's steps are over)
    into a pending file, which becomes last.keras only once the epoch's value is finite."""
    import threading

    from trainctl.run.checkpointer import PENDING, discard_pending

    run, model, writer, checkpointer = with_writer(tmp_path)
    folder = run.file("checkpoints")
    release = threading.Event()
    writer.submit(release.wait)
    checkpointer.on_test_begin()
    assert not (folder / PENDING).exists()  # queued behind the busy writer, not saved here
    release.set()
    writer.wait()
    assert (folder / PENDING).read_text() == "epoch 0"
    checkpointer.on_epoch_end(0, {"val_loss": 0.5})
    assert (folder / "last.keras").read_text() == (folder / "best.keras").read_text() == "epoch 0"
    assert not (folder / PENDING).exists()

    model.epoch = 1  # its validation loss is NaN: the save made beside it is dropped
    checkpointer.on_test_begin()
    checkpointer.on_epoch_end(1, {"val_loss": float("nan")})
    assert (folder / "last.keras").read_text() == "epoch 0"
    assert sorted(p.name for p in folder.iterdir()) == ["best.keras", "last.keras"]

    model.epoch = 2  # stopped during validation: the run's end discards the pending save
    checkpointer.on_test_begin()
    writer.wait()
    discard_pending(run)
    assert sorted(p.name for p in folder.iterdir()) == ["best.keras", "last.keras"]
