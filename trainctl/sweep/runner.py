"""``trainctl sweep`` and ``trainctl resume SWEEP_DIR``: trial processes, in parallel.

Each trial is a child ``trainctl fit CONFIG --set key=value ... --runs-dir SWEEP
--name trial-NNN`` (a killed one continues as ``trainctl resume TRIAL_DIR``), in
the sweep's process group, so stopping the sweep stops them; the Optuna study is
asked and told only here, the trial process reports each epoch itself
(:mod:`trainctl.sweep.trial`). sweep.json records which trials this sweep started,
so a resumed sweep continues exactly those that did not finish and never starts
one twice.

Example:
    >>> folder = sweep(load_config("configs/examples/sweep_mnist.yaml"), runs_dir=Path("runs"))
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from trainctl.artifacts import command_line, now
from trainctl.config import LoadedConfig
from trainctl.errors import ExitCode, Interrupted, RunFailed, UsageError
from trainctl.sweep import state as sweep_state
from trainctl.sweep.process import TrialJob, run_trial


class Sweep:
    """One sweep folder being worked on: its state, its study and its live trials."""

    def __init__(self, folder: Path, state: dict, study, *, verbose: bool = False):
        self.folder, self.state, self.study, self.verbose = folder, state, study, verbose
        self.lock = threading.Lock()
        self.pending: list[TrialJob] = []  # interrupted trials to continue first
        self.live: dict[int, object] = {}  # trial number -> its Popen
        self.stopping: int | None = None  # exit code once a signal stops the sweep
        self.refused: int | None = None  # a trial whose config was refused (see finish)

    def save(self) -> None:
        """sweep.json as it stands (callers hold the lock)."""
        sweep_state.save(self.folder, self.state)

    def next_job(self) -> TrialJob | None:
        """The next trial to run: an interrupted one first, then a new one while the
        budget lasts (counted over the whole study: other workers' trials too)."""
        from trainctl.sweep.study import ask, started

        with self.lock:
            if self.stopping is not None or self.refused is not None:
                return None
            if self.pending:
                return self.pending.pop(0)
            if started(self.study) >= self.state["trials_target"]:
                return None
            number, params = ask(self.study, self.state["sweep"]["params"])
            self.state["trials"][str(number)] = {"number": number, "params": params,
                                                 "state": "running", "run": None}
            self.save()
            return TrialJob(number, params)

    def finish(self, job: TrialJob, code: int, run: Path | None) -> None:
        """Tell the study how trial ``job`` ended and record it in sweep.json."""
        from trainctl.sweep.study import tell

        with self.lock:
            entry = self.state["trials"][str(job.number)]
            entry["run"] = run.name if run is not None else None
            if code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED) or code < 0:
                self.stopping = self.stopping or (code if code > 0 else ExitCode.TERMINATED)
                self.save()  # the trial stays running: resume continues it
                return
            outcome, value = judge(run, code, self.state)
            tell(self.study, job.number, value=value, state=outcome)
            entry.update(state=outcome, value=value, exit_code=code)
            self.save()
            # Bad input (exit 2) before any trial got through is the config's, not this
            # point's: every further trial would be refused the same way.
            if code == ExitCode.USAGE and not any(
                    e["state"] in ("complete", "pruned") for e in self.state["trials"].values()):
                self.refused = job.number

    def worker(self) -> None:
        """Run trials until none is left (one thread per ``--parallel``)."""
        while (job := self.next_job()) is not None:
            run, code = run_trial(self, job)
            self.finish(job, code, run)

    def run(self, parallel: int) -> None:
        """Run ``parallel`` workers; SIGTERM is passed on to the live trials."""
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(parallel)]
        with forward_sigterm(self):
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)  # short joins: the main thread handles signals


def judge(run: Path | None, code: int, state: dict) -> tuple[str, float | None]:
    """``(complete | pruned | fail, objective value)`` of a trial that ended with ``code``.

    A pruned trial stopped itself after its epoch (its run.json has ``pruned_at_epoch``
    and, written by the trial's ``fit`` itself, status ``pruned``; set here too for a
    trial process that ended before its final write).
    """
    if code != 0 or run is None:
        return "fail", None
    from trainctl.artifacts import RunDir

    from trainctl.sweep.trial import pruned_status

    info = RunDir(run).read_json("run.json")
    pruned = pruned_status(info)
    if pruned:
        if info.get("status") != "pruned":
            RunDir(run).update_run(status="pruned", exit_reason=pruned)
        return "pruned", None
    value = sweep_state.objective_value(run, state["metric"], state["direction"])
    if value is None:
        print(f"note: {run.name}: no {state['metric']!r} in history.json; trial marked failed "
              "(set sweep.objective.metric to a history key)", flush=True)
        return "fail", None
    return "complete", value


class forward_sigterm:
    """While a sweep runs, SIGTERM (``kill PID``) stops it: passed on to every live trial
    (each stops cleanly, status interrupted), and no new trial starts. SIGINT needs no
    forwarding: Ctrl-C reaches the whole process group."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep
        self.old = {}

    def handle(self, signum, frame) -> None:
        with_code = ExitCode.TERMINATED if signum == signal.SIGTERM else ExitCode.INTERRUPTED
        self.sweep.stopping = self.sweep.stopping or with_code
        if signum == signal.SIGTERM:
            for proc in list(self.sweep.live.values()):
                proc.send_signal(signum)

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.old[sig] = signal.signal(sig, self.handle)
            except ValueError:  # not the main thread (a test runner's thread)
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old)


def sweep(cfg: LoadedConfig, *, runs_dir: Path, trials: int | None = None, parallel: int = 1,
          storage: str | None = None, smoke: bool = False, verbose: bool = False) -> Path:
    """Run the search of ``cfg``'s ``sweep:`` section; return the sweep folder.

    Args:
        cfg: the config (with its ``--set`` options, passed on to every trial).
        runs_dir: where the sweep folder goes.
        trials: how many trials (default: ``sweep.trials``; a grid: all its points).
        parallel: trial processes at once.
        storage: an Optuna storage URL (default: a journal file in the sweep folder).
        smoke: every trial at smoke size.

    Raises:
        UsageError: no ``sweep:`` section, or no trial count for a random or tpe search.
    """
    from trainctl.sweep.space import objective, pruner_args
    from trainctl.sweep.study import grid_points, open_study, require

    require()
    exp = cfg.experiment
    if exp.sweep is None:
        raise UsageError(f"{cfg.path}: the config has no sweep: section\n  hint: add one "
                         "(README, Sweeps): sweep: {sampler: grid, params: {...}}")
    section = cfg.raw["sweep"]
    target = trials or exp.sweep.trials
    if exp.sweep.sampler == "grid":
        size = len(grid_points(section["params"]))
        target = min(target or size, size)
    if target is None:
        raise UsageError(f"{cfg.path}: sampler {exp.sweep.sampler} needs a number of trials\n"
                         "  hint: set sweep.trials in the config or pass --trials N")
    metric, direction = objective(exp)
    folder = sweep_state.create_folder(runs_dir, cfg.run_name)
    state = {"status": "running", "config_path": str(Path(cfg.path).resolve()),
             "overrides": list(cfg.overrides), "smoke": smoke, "command": command_line(),
             "study": storage and cfg.run_name or folder.name, "storage": storage,
             "sweep": section, "pruner": pruner_args(exp.sweep.pruner), "metric": metric,
             "direction": direction, "seed": exp.seed, "trials_target": target,
             "parallel": parallel, "start": now(), "end": None, "trials": {}}
    sweep_state.save(folder, state)
    print(f"sweep: {folder}", flush=True)
    study = open_study(state, folder, create=True)
    return run_sweep(Sweep(folder, state, study, verbose=verbose), parallel)


def resume_sweep(folder: Path, *, verbose: bool = False) -> Path:
    """Continue an interrupted sweep in place: finished trials stay as they are, each
    trial this sweep started and did not finish continues from its last checkpoint
    (``trainctl resume``), then new trials run while the budget lasts.

    Example:
        >>> resume_sweep(Path("runs/mnist-mlp-sweep-20261124-101500-3f9a2c"))
    """
    from trainctl.sweep.study import open_study, require

    require()
    folder = Path(folder)
    state = sweep_state.load(folder)
    if state.get("status") == "completed":
        print(f"{folder}: the sweep completed already; nothing to resume", flush=True)
        return folder
    study = open_study(state, folder)
    job = Sweep(folder, state, study, verbose=verbose)
    for entry in sorted(state["trials"].values(), key=lambda e: e["number"]):
        if entry["state"] == "running":
            job.pending.append(TrialJob(entry["number"], entry["params"], resume=True))
    state.update(status="running", end=None)
    state.setdefault("resumed", []).append(now())
    sweep_state.save(folder, state)
    print(f"sweep: {folder}\nresuming: {len(job.pending)} unfinished trial(s), "
          f"{sum(e['state'] != 'running' for e in state['trials'].values())} finished",
          flush=True)
    return run_sweep(job, state.get("parallel", 1))


def run_sweep(job: Sweep, parallel: int) -> Path:
    """Run the trials, then record the end and write the report.

    Raises:
        Interrupted: a signal stopped the sweep (exit 130/143), with how to resume.
        RunFailed: every trial failed.
    """
    from trainctl.sweep.report import write_report

    started = time.perf_counter()
    job.run(parallel)
    state = job.state
    if job.refused is not None:
        state.update(status="failed", end=now())
        sweep_state.save(job.folder, state)
        raise UsageError(f"trial {job.refused} was refused as bad input (exit 2; its message "
                         f"is above) before any trial completed: the sweep stopped, as every "
                         f"trial would be\n  hint: fix the config (`trainctl validate` "
                         f"checks most of it) and start the sweep again; {job.folder} holds "
                         f"what ran")
    if job.stopping is not None:
        state.update(status="interrupted", end=now())
        sweep_state.save(job.folder, state)
        raise Interrupted(f"the sweep stopped; continue it with `trainctl resume "
                          f"{job.folder}`", ExitCode(job.stopping))
    ok = [e for e in state["trials"].values() if e["state"] == "complete"]
    state.update(status="completed" if ok else "failed", end=now(),
                 seconds=round(time.perf_counter() - started, 1))
    sweep_state.save(job.folder, state)
    print(write_report(job.folder, job.study), flush=True)
    if not ok:
        raise RunFailed(f"every trial of the sweep failed or was pruned; see {job.folder}")
    return job.folder

