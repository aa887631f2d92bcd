"""The start of a run: its folder, config.yaml, run.json, summary.txt and model.png.

Example:
    >>> run = start_run(cfg, prep, runs_dir=Path("runs"), name=None)
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

from trainctl.artifacts import RunDir, command_line, git_state, now, versions
from trainctl.config import LoadedConfig


def start_shared_run(cfg: LoadedConfig, prep: Any, *, runs_dir: Path,
                     name: str | None, exact: bool = False) -> RunDir:
    """:func:`start_run`, for one worker or several: the folder this process writes,
    whose ``shown`` is the run's folder (another one on a multi-worker run's workers
    other than the chief).

    On several workers the chief creates the run folder and every worker learns its
    name (:func:`trainctl.run.workers.share_name`); the others write the same files
    into a scratch folder of their own (the caller removes it), so they run exactly
    what the chief runs.

    Raises:
        UsageError: (a worker other than the chief) the chief could not create the folder.
    """
    from trainctl.errors import UsageError
    from trainctl.run.workers import scratch_folder, share_name

    me = prep.worker
    if me is None or me.count == 1:
        return start_run(cfg, prep, runs_dir=runs_dir, name=name, exact=exact)
    if me.is_chief:
        try:
            run = start_run(cfg, prep, runs_dir=runs_dir, name=name, exact=exact)
        except BaseException:
            share_name(prep.strategy, None, me)  # the others must not wait for a name
            raise
        try:
            share_name(prep.strategy, run.path.name, me)
        except BaseException:
            stop_background(run)
            run.discard()  # a worker died before training: nothing of the run happened
            raise
        return run
    agreed = share_name(prep.strategy, None, me)
    if agreed is None:
        raise UsageError(f"{me}: the chief (worker 0) could not create the run folder; "
                         "its output says why")
    run = start_run(cfg, prep, runs_dir=scratch_folder(me), name=name, plot=False, exact=exact)
    run.shown = Path(runs_dir) / agreed
    return run


def start_run(cfg: LoadedConfig, prep: Any, *, runs_dir: Path, name: str | None,
              plot: bool = True, exact: bool = False) -> RunDir:
    """Create the run folder and write config.yaml, run.json and summary.txt.

    ``prep`` is the :class:`trainctl.run.prepare.Prepared` model and data: nothing is
    created before everything that can be checked has been. ``plot``: draw model.png;
    ``exact``: the folder is named ``name`` exactly (:meth:`RunDir.create`).
    """
    from trainctl.plugins import module_hashes
    from trainctl.run.input_range import input_ranges
    from trainctl.run.predict import input_names

    run = RunDir.create(runs_dir, name or cfg.run_name, exact=exact)
    try:
        run.write_config(cfg.raw)
        started = now()
        run.write_json("run.json", {
            "status": "running", "exit_reason": None, "command": command_line(),
            "config_path": str(cfg.path.resolve()), "overrides": list(cfg.overrides),
            "seed": prep.seed,
            "seed_from": "config" if cfg.experiment.seed is not None else "drawn",
            "smoke": prep.plan.smoke, "plan": asdict(prep.plan), "start": started, "end": None,
            "versions": versions(), "git": git_state(cfg.config_dir),
            "data_files": prep.splits.files, "plugins": module_hashes(prep.plugins),
            "input_ranges": input_ranges(prep.splits.train, input_names(prep.model)),
            "distribution": prep.distribution, "steps_per_execution": prep.steps_per_execution,
            "weights_from": getattr(prep, "weights_from", None),
            "attempts": [attempt("fit", started)],
        })
        lines: list[str] = []
        prep.model.summary(print_fn=lambda line, *a, **k: lines.append(line))
        run.write_text("summary.txt", "\n".join(lines) + "\n")
        note = plot_model(prep.model, run) if plot else None
        if note:
            run.update_run(notes=[note])
            print(f"note: {note}", flush=True)
    except BaseException:
        stop_background(run)
        run.discard()  # e.g. the disk filled up: leave no half-written run folder
        raise
    return run


def plot_model(model: Any, run: RunDir) -> str | None:
    """Start drawing ``model.png`` (``plot_model(show_shapes=True)``); a note saying
    how to get it when it can't be drawn.

    Graphviz's ``dot`` takes about 0.1 s, all of it start-up: it runs beside the
    training instead of before it, and :func:`settle` collects it when the run ends.
    """
    import shutil
    import subprocess

    import keras

    if shutil.which("dot") is None:
        return ("model.png skipped: plot_model needs Graphviz's 'dot' program "
                "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)")
    try:
        graph = keras.utils.model_to_dot(model, show_shapes=True, show_layer_names=True)
    except ImportError as exc:  # pydot missing
        return f"model.png skipped: {exc}"
    import tempfile

    from trainctl.run.child import FileChild

    # dot writes a temp file, renamed by settle() once dot succeeded: never a half PNG
    errors = tempfile.TemporaryFile()
    tmp = run.file(".model.tmp.png")
    proc = subprocess.Popen(["dot", "-Tpng", "-o", str(tmp)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors,
                            start_new_session=True)
    run.background.append(FileChild("model.png", tmp, proc, errors, who="Graphviz's dot"))
    try:
        proc.stdin.write(graph.to_string().encode())
        proc.stdin.close()
    except BrokenPipeError:  # dot died at once: settle() reports its exit code
        pass
    return None


def settle(run: RunDir, timeout: float = 30.0) -> list[str]:
    """Collect the files other processes write into the run (:func:`plot_model`); a
    note for each that failed (:meth:`trainctl.run.child.FileChild.collect`).

    ``start_new_session`` keeps a Ctrl-C meant for trainctl from reaching Graphviz;
    an interrupted run waits a short ``timeout`` instead.
    """
    notes = []
    while run.background:
        note = run.background.pop().collect(run.path, timeout)
        if note is not None:
            notes.append(note)
    return notes


def stop_background(run: RunDir) -> None:
    """Kill and reap what :func:`plot_model` started (a run that is being discarded)."""
    while run.background:
        run.background.pop().stop()


def attempt(command: str, started: str, **fields: Any) -> dict:
    """One entry of run.json's ``attempts``: which command, when, which process."""
    return {"command": command, "start": started, "pid": os.getpid(),
            "host": socket.gethostname(), **fields}
