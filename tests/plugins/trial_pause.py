"""Test plug-in: ``PauseInTrial(trial=2, epoch=1, batch=0, marker=...)`` pauses only in
the sweep trial with that number (read from the trial's environment), once: a
resumed trial finds the marker and goes on, so the config stays the same."""

from __future__ import annotations

import json
import os

from tests.plugins.pause import PauseAt


class PauseInTrial(PauseAt):
    """:class:`PauseAt` in one trial of a sweep only."""

    def __init__(self, trial: int, epoch: int, batch: int, marker: str, seconds: float = 120.0):
        super().__init__(epoch, batch, marker, seconds)
        self.trial = trial

    def act(self) -> None:
        spec = json.loads(os.environ.get("TRAINCTL_SWEEP_TRIAL", "{}"))
        if spec.get("number") == self.trial:
            super().act()
