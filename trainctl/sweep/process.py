"""One trial as a child process: ``trainctl fit`` (or ``resume``), its output prefixed.

The child stays in the sweep's process group (no new session), so a signal to
the group, or SIGKILL of it, reaches the trials too.

Example:
    >>> run, code = run_trial(sweep, TrialJob(0, {"seed": 1}))
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainctl.status import FINISHED
from trainctl.sweep.state import trial_folder, trial_name


@dataclass
class TrialJob:
    """A trial to run: its number, its parameters, and whether it continues a run."""

    number: int
    params: dict[str, Any]
    resume: bool = False


def yaml_value(value: Any) -> str:
    """A value as ``--set`` parses it back (YAML; ``1e-05`` would read as a string).

    Example:
        >>> yaml_value(1e-05), yaml_value("relu"), yaml_value(True)
        ('1.0e-05', 'relu', 'true')
    """
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).splitlines()[0]


def command(sweep: Any, job: TrialJob) -> list[str]:
    """The child's command line: a new trial's ``fit``, or ``resume`` of its run folder."""
    state = sweep.state
    base = [sys.executable, "-m", "trainctl"]
    verbose = ["--verbose"] if sweep.verbose else []
    run = trial_folder(sweep.folder, job.number) if job.resume else None
    if run is not None:
        return [*base, "resume", str(run), *verbose]
    sets = [*state["overrides"], *(f"{k}={yaml_value(v)}" for k, v in job.params.items())]
    return [*base, "fit", state["config_path"], *(x for s in sets for x in ("--set", s)),
            "--runs-dir", str(sweep.folder), "--name", trial_name(job.number), "--exact-name",
            *(["--smoke"] if state["smoke"] else []), *verbose]


def environment(sweep: Any, job: TrialJob) -> dict[str, str]:
    """The child's environment: ours, plus the trial's description for its reporter."""
    from trainctl.sweep.study import trial_id
    from trainctl.sweep.trial import trial_env

    state = sweep.state
    with sweep.lock:  # the study object is shared by the worker threads
        tid = trial_id(sweep.study, job.number)
    return {**os.environ, **trial_env(
        number=job.number, trial_id=tid, study=state["study"], storage=state["storage"],
        folder=str(sweep.folder), metric=state["metric"], direction=state["direction"],
        pruner=state["pruner"], params=job.params)}


def run_trial(sweep: Any, job: TrialJob) -> tuple[Path | None, int]:
    """Run one trial to its end; return its run folder (None if it made none) and exit code.

    A trial that is already complete in its folder (the sweep was killed after the
    trial ended, before the study was told) is not run again.
    """
    name = trial_name(job.number)
    run = trial_folder(sweep.folder, job.number) if job.resume else None
    if run is not None and _finished(run):
        return run, 0
    leftover = sweep.folder / name
    if run is None and leftover.is_dir() and not (leftover / "run.json").exists():
        # killed between creating its folder and writing run.json: nothing of it ran
        import shutil

        shutil.rmtree(leftover, ignore_errors=True)
    print(f"[{name}] {'resuming' if run is not None else 'starting'} "
          f"{' '.join(f'{k}={v}' for k, v in job.params.items())}", flush=True)
    proc = subprocess.Popen(command(sweep, job), env=environment(sweep, job),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    sweep.live[job.number] = proc
    try:
        for line in proc.stdout:
            print(f"[{name}] {line.rstrip()}", flush=True)
        code = proc.wait()
    finally:
        sweep.live.pop(job.number, None)
    return trial_folder(sweep.folder, job.number), code


def _finished(run: Path) -> bool:
    import json

    try:
        status = json.loads((run / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return False
    return status in FINISHED
