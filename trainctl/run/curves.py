"""``curves.png``: a run's learning curves, drawn by a child process beside the training.

Importing matplotlib and a first ``savefig`` take about 0.8 s (KERAS3_NOTES.md), a
tenth of a default MNIST run. So the run never does it: :class:`CurvesCallback`
starts a child process when training begins, which imports matplotlib (at a lower
priority) while the model trains and then waits. When the run completes,
:func:`request_curves` tells it to draw history.json, while the model is saved and
evaluated (or already as soon as the last planned epoch is in history.json:
:class:`trainctl.run.callbacks.HistoryWriter` asks, before that epoch's checkpoint), and
:func:`settle_curves` collects the PNG; the run waits only for
whatever drawing is left. As for model.png (:mod:`trainctl.run.start`): the child
writes a temp file renamed once it succeeded (never half a PNG), every wait is
bounded, and a failure is a note in run.json, never a failed run. A run that does
not complete gets no curves.png (``trainctl plot RUN`` draws any run); its child is
stopped at once. ``runtime.plots: false`` turns all of this off; a smoke run draws
nothing unless ``runtime.plots`` is set explicitly (:func:`wants_curves`).

Example:
    callbacks.append(CurvesCallback(run))   # trainctl.run.assemble
    request_curves(run)                     # start of trainctl.run.fit.complete
    notes = settle_curves(run, keep=True)   # trainctl.run.fit.finish
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from trainctl.artifacts import RunDir
from trainctl.run.child import FileChild
from trainctl.run.priority import set_idle

NAME = "curves.png"
TMP = ".curves.tmp.png"
# The child: SCHED_IDLE before importing trainctl.plot, which imports matplotlib (the
# work to keep off the training's CPU time), then trainctl.plot.serve.
CHILD = ("from trainctl.run.priority import set_idle; set_idle(True); "
         "import trainctl.plot; trainctl.plot.serve()")


@dataclass
class Drawer:
    """The child process drawing one run's curves, or why there is none (``note``)."""

    child: FileChild | None = None
    requested: bool = False
    note: str | None = None

    @property
    def proc(self) -> Any:
        return self.child.proc if self.child is not None else None


# One drawer per run folder (resolved path): started by the callback, collected by
# finish(), which only knows the run.
_drawers: dict[Path, Drawer] = {}


def start_curves(run: RunDir) -> None:
    """Start the child that will draw ``run``'s curves (once per run and attempt).

    Args:
        run: the run folder; the child runs in it, and draws into its ``.curves.tmp.png``.

    Example:
        >>> start_curves(run)   # returns at once; the child imports matplotlib
    """
    import importlib.util

    key = run.path.resolve()
    if key in _drawers:
        return
    if importlib.util.find_spec("matplotlib") is None:
        _drawers[key] = Drawer(note=f"{NAME} skipped: it needs matplotlib "
                                    "(pip install matplotlib)")
        return
    import trainctl

    root = str(Path(trainctl.__file__).resolve().parents[1])
    env = {**os.environ, "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    errors = tempfile.TemporaryFile()
    # cwd: the run folder, so `python -c`'s first sys.path entry holds no user module;
    # its own session: a Ctrl-C meant for trainctl does not reach it.
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=errors, cwd=run.path, env=env,
                            start_new_session=True)
    # absolute: the child runs in the run folder, so a relative --runs-dir would miss
    _drawers[key] = Drawer(FileChild(NAME, run.file(TMP).resolve(), proc, errors,
                                     who="the drawing process", last_line=True))


def request_curves(run: RunDir) -> None:
    """Ask the child to draw ``run``'s history.json now (the run completed); returns at once.

    Args:
        run: the run folder whose drawer :func:`start_curves` started (else nothing).

    Example:
        >>> request_curves(run)
    """
    drawer = _drawers.get(run.path.resolve())
    if drawer is not None:
        _request(drawer, run)


def _request(drawer: Drawer, run: RunDir) -> None:
    if drawer.proc is None or drawer.requested:
        return
    drawer.requested = True
    set_idle(False, drawer.proc.pid)  # the run waits for it now: no more SCHED_IDLE
    job = {"run": str(run.path.resolve()), "output": str(drawer.child.tmp),
           "title": run.path.name}
    # no history (no epoch ran): an empty request, and the child ends without drawing
    _send(drawer, json.dumps(job) if run.file("history.json").is_file() else "")


def _send(drawer: Drawer, text: str) -> None:
    try:
        drawer.proc.stdin.write(text.encode())
        drawer.proc.stdin.close()
    except OSError:  # the child died already (BrokenPipeError): its exit code tells why
        pass


def settle_curves(run: RunDir, *, keep: bool, timeout: float = 30.0) -> list[str]:
    """Collect ``run``'s drawer: curves.png when ``keep`` (a completed run), else stop it.

    Waits at most ``timeout`` seconds (:meth:`trainctl.run.child.FileChild.collect`).

    Args:
        run: the run folder.
        keep: draw and keep curves.png (a completed run); else stop the child.
        timeout: the longest wait, in seconds.

    Returns:
        Notes for run.json: why curves.png was not written (none when it was).

    Example:
        >>> settle_curves(run, keep=True)
        []
    """
    drawer = _drawers.pop(run.path.resolve(), None)
    if drawer is None:
        return []
    if drawer.proc is None:
        return [drawer.note] if keep and drawer.note else []
    if not keep:
        drawer.child.stop()
        return []
    _request(drawer, run)
    # exit 0 without a file: nothing to draw (no epoch finished), and no note
    note = drawer.child.collect(run.path, timeout)
    return [note] if note is not None else []


def wants_curves(runtime: Any, *, smoke: bool) -> bool:
    """Whether a run draws curves.png: ``runtime.plots`` (default true), except in a smoke
    run, whose one epoch of two steps makes no curve, unless ``plots`` is set explicitly
    (as ``--smoke`` sets ``fit.epochs`` unless it is given).

    Args:
        runtime: the config's ``runtime`` section (a RuntimeConfig).
        smoke: whether the run is a smoke run.

    Example:
        >>> wants_curves(RuntimeConfig(), smoke=True), wants_curves(RuntimeConfig(), smoke=False)
        (False, True)
    """
    if smoke and "plots" not in runtime.model_fields_set:
        return False
    return bool(runtime.plots)


class CurvesCallback(keras.callbacks.Callback):
    """Starts the curves drawer when training begins (``runtime.plots``, default on).

    Args:
        run: the run folder.
    """

    def __init__(self, run: RunDir):
        super().__init__()
        self.run = run

    def on_train_begin(self, logs: dict | None = None) -> None:
        start_curves(self.run)
