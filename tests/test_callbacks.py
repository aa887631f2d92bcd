"""trainctl.run.callbacks: the callbacks trainctl adds to every run."""

from __future__ import annotations

import pytest

pytest.importorskip("keras")
from trainctl.artifacts import RunDir  # noqa: E402
from trainctl.run.callbacks import Checkpointer  # noqa: E402


class SavesItsEpoch:
    """A stand-in model whose saved file holds the epoch it was saved at."""

    def __init__(self):
        self.epoch = 0

    def save(self, path):
        with open(path, "w") as f:
            f.write(f"epoch {self.epoch}")


@pytest.mark.parametrize("linkable", [True, False])
def test_best_keeps_its_epoch_when_last_moves_on(tmp_path, monkeypatch, linkable):
    """best.keras is the file last.keras was at its epoch (a hard link, or a copy where
    the file system has none); the next epoch's last.keras must not change it."""
    if not linkable:
        def no_links(*args):
            raise OSError("hard links not supported")

        monkeypatch.setattr("trainctl.run.callbacks.os.link", no_links)
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
