"""``trainctl resume RUN_DIR``: continue an interrupted or crashed run in its own folder.

The run carries on at its last finished epoch (the interrupted one runs again):
weights, optimizers (iteration counter, so the learning-rate schedule too),
callback state and RNG state come from ``checkpoints/resume/``
(:mod:`trainctl.run.state`), the data order is a function of the run's seed and
the epoch (:func:`trainctl.data.pipeline.make_stream`), and history rows already
written stay as they are. The config is the run's own ``config.yaml``: raising
``fit.epochs`` with ``--set`` is allowed, any other change (or a plug-in module
that changed since) is refused with a key-by-key diff unless ``--force``.

Example:
    >>> resume(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainctl.artifacts import RunDir, keep_csv_rows, now
from trainctl.config import LoadedConfig, load_config
from trainctl.errors import UsageError
from trainctl.run.lock import hold

# The keys a resume may change without --force.
FREE_KEYS = ("fit.epochs",)


def flatten(value: Any, key: str = "") -> dict[str, Any]:
    """``{"fit.epochs": 2, "model.layers[0].units": 64, ...}`` for a config mapping.

    Example:
        >>> flatten({"fit": {"epochs": 2}, "imports": ["a"]})
        {'fit.epochs': 2, 'imports[0]': 'a'}
    """
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{key}.{k}" if key else str(k)))
        return out
    if isinstance(value, list) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(flatten(v, f"{key}[{i}]"))
        return out
    return {key: value}


def config_diff(old: dict, new: dict) -> list[tuple[str, Any, Any]]:
    """``(key, run's value, new value)`` for every key that differs (missing = ``<absent>``)."""
    a, b = flatten(old), flatten(new)
    absent = "<absent>"
    return [(k, a.get(k, absent), b.get(k, absent)) for k in sorted(a.keys() | b.keys())
            if a.get(k, absent) != b.get(k, absent)]


def format_diff(rows: list[tuple[str, Any, Any]]) -> str:
    """The diff as aligned lines: ``  fit.batch_size: 64 -> 128``."""
    width = max(len(k) for k, _, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {a!r} -> {b!r}" for k, a, b in rows)


def check_changes(stored: LoadedConfig, cfg: LoadedConfig, *, force: bool) -> list[str]:
    """Refuse config changes beyond :data:`FREE_KEYS` unless ``force``; return the changed keys.

    Raises:
        UsageError: with the key-by-key diff.
    """
    rows = config_diff(stored.raw, cfg.raw)
    refused = [r for r in rows if r[0] not in FREE_KEYS]
    epochs = [r for r in rows if r[0] == "fit.epochs"]
    if epochs and isinstance(epochs[0][2], int) and epochs[0][2] < epochs[0][1]:
        refused += epochs  # fewer epochs than the run was started with: not a continuation
    if refused and not force:
        raise UsageError("the config differs from the run's config.yaml:\n"
                         f"{format_diff(refused)}\n"
                         "  hint: resuming with another config mixes two experiments in one "
                         "run; start a new run, or pass --force to resume anyway "
                         "(only raising fit.epochs needs no --force)")
    return [r[0] for r in rows]


def check_plugins(recorded: dict[str, str], now_hashes: dict[str, str], *, force: bool) -> bool:
    """Refuse a plug-in module whose source changed since the run started, unless ``force``;
    return whether one changed."""
    changed = sorted(m for m in recorded.keys() | now_hashes.keys()
                     if recorded.get(m) != now_hashes.get(m))
    if changed and not force:
        raise UsageError("plug-in modules changed since the run started: "
                         f"{', '.join(changed)}\n  hint: the saved weights and state may not "
                         "fit the new code; pass --force to resume anyway")
    return bool(changed)


def cut_history(run: RunDir, epochs_done: int) -> None:
    """Keep the first ``epochs_done`` rows of history.json and history.csv (byte for byte);
    with none finished, the files go (the resumed run starts them again)."""
    json_path, csv_path = run.file("history.json"), run.file("history.csv")
    if epochs_done == 0:
        json_path.unlink(missing_ok=True)
        csv_path.unlink(missing_ok=True)
        return
    if json_path.is_file():
        run.write_json("history.json",
                       {k: v[:epochs_done] for k, v in run.read_json("history.json").items()})
    keep_csv_rows(csv_path, epochs_done)


def resume(path: Path, *, overrides: tuple[str, ...] = (), force: bool = False,
           verbose: bool = False) -> RunDir:
    """Continue the run in ``path`` where it stopped; return it.

    Args:
        path: the run folder.
        overrides: ``--set`` options applied to the run's config (``fit.epochs=5``).
        force: resume even though the config or a plug-in changed.
        verbose: TensorFlow's start-up messages.

    Raises:
        UsageError: not a run, another process trains it, or a refused change.
    """
    from trainctl.run.workers import remove_scratch

    run = RunDir.open(path)
    info = run.read_json("run.json")
    if info.get("status") == "completed":
        print(f"{run.path}: the run completed already; nothing to resume", flush=True)
        if overrides:  # a typo is still an error; a valid change is not applied
            from trainctl.run.reload import config_base

            load_config(run.file("config.yaml"), overrides, base_dir=config_base(run, info))
            print(f"note: --set {' '.join(overrides)} not applied: a completed run stays as it "
                  "is\n  hint: to train on from its weights, start a new run: "
                  f"trainctl fit CONFIG --set model.weights_from={run.path.resolve()}", flush=True)
        return run
    run = worker_copy(run)
    try:
        resume_in(run, info, overrides=overrides, force=force, verbose=verbose)
    finally:
        if run.path != run.shown:
            remove_scratch(run.path.parent)
    return RunDir(run.shown)


def worker_copy(run: RunDir) -> RunDir:
    """The run folder this process resumes: the run's own, or, on a multi-worker run's
    workers other than the chief, a scratch copy (they run what the chief runs, but
    only the chief writes the run; see trainctl.run.workers).

    The copy is complete before the chief can change anything: the chief changes the
    run only after its strategy has started, which waits for every worker's.
    """
    import shutil

    from trainctl.run.workers import role, scratch_folder

    me = role()
    if me.is_chief:
        return run
    copy = scratch_folder(me) / run.path.name
    shutil.copytree(run.path, copy, ignore=shutil.ignore_patterns(".lock"))
    scratch = RunDir(copy)
    scratch.shown = run.path
    return scratch


def resume_in(run: RunDir, info: dict, *, overrides: tuple[str, ...], force: bool,
              verbose: bool) -> None:
    """:func:`resume` in the folder ``run`` (a worker's scratch copy: see worker_copy)."""
    from trainctl.plugins import module_hashes
    from trainctl.run.fit import run_to_end
    from trainctl.run.prepare import draw_seed, prepare
    from trainctl.run.interrupt import new_stop, stop_on_signals
    from trainctl.run.reload import config_base, run_config
    from trainctl.run.runtime import import_tensorflow

    with hold(run.path):
        remove_leftovers(run)
        stored = run_config(run, info)
        cfg = load_config(run.file("config.yaml"), overrides,
                          base_dir=config_base(run, info)) if overrides else stored
        changed = check_changes(stored, cfg, force=force)
        done = finished_epochs(run, force=force)
        plan = resume_plan(info, cfg, changed, done)
        import_tensorflow(verbose)
        stop = new_stop()
        with stop_on_signals(stop):
            prep = prepare(cfg, smoke=plan.smoke, seed=info.get("seed", draw_seed(None)),
                           plan=plan, initial_epoch=done or 0, verbose=verbose)
            hashes = module_hashes(prep.plugins)
            plugins_changed = check_plugins(info.get("plugins") or {}, hashes, force=force)
            # a changed optimizer (--force) starts afresh: its old state would overwrite it
            # (any optimizer of compile:, a GAN's d_optimizer/g_optimizer too)
            fresh_optimizer = any(k.startswith("compile.") and "optimizer" in k.split(".")[1]
                                  for k in changed)
            if done is not None:
                try_restore(run, prep.model, restore_optimizers=not fresh_optimizer)
            start_attempt(run, cfg, plan, done or 0, overrides=overrides,
                          forced=bool(force and (plugins_changed or
                                                 any(k not in FREE_KEYS for k in changed))),
                          plugins=hashes if plugins_changed else None)
            print(f"run: {run.shown}", flush=True)
            print(f"resuming at epoch {(done or 0) + 1} of {plan.epochs}"
                  if (done or 0) < plan.epochs else
                  f"all {plan.epochs} epochs are done; saving the model and evaluating",
                  flush=True)
            run_to_end(cfg, prep, run, stop, resume=done is not None,
                       restore_optimizers=not fresh_optimizer)


def remove_leftovers(run: RunDir) -> list[Path]:
    """Delete the temp files a killed process left in the run folder and checkpoints/
    (``.model.tmp.png``, ``.last.tmp.keras``, ``.history.json.x1y2.tmp``: every run file
    is written as a hidden temp file and renamed); return them.

    Called with the run's lock held, so no other trainctl process is writing them.
    """
    left = [path for folder in (run.path, run.file("checkpoints")) if folder.is_dir()
            for path in folder.glob(".*tmp*") if path.is_file()]
    for path in left:
        path.unlink(missing_ok=True)
    return left


def finished_epochs(run: RunDir, *, force: bool) -> int | None:
    """The epochs in the run's saved state; None when there is none to continue from.

    Raises:
        UsageError: the state is unreadable, or missing while history.json holds
            finished epochs (resuming would start again and drop them) without ``force``.
    """
    from trainctl.run.state import saved_epochs, state_dir

    try:
        done = saved_epochs(run.path)
    except ValueError as exc:
        raise UsageError(f"cannot resume: {exc}") from None
    if done is None and not force and run.file("history.json").is_file():
        rows = max((len(v) for v in run.read_json("history.json").values()), default=0)
        if rows:
            raise UsageError(f"{state_dir(run.path)} is missing, but history.json holds {rows} "
                             "finished epoch(s): resuming would start again from epoch 1 and "
                             "drop them\n  hint: pass --force to start the run over in its "
                             "folder, or start a new run with trainctl fit")
    return done


def resume_plan(info: dict, cfg: LoadedConfig, changed: list[str], done: int | None) -> Any:
    """The sizes to continue with: the run's own, with the changes the resume makes.

    Raising ``fit.epochs`` only changes the epochs; other forced changes (batch size,
    steps) recompute the plan from the new config, as ``fit`` would.

    Raises:
        UsageError: fewer epochs than the run has finished already.
    """
    from trainctl.run.plan import Plan, make_plan

    smoke = bool(info.get("smoke"))
    plan = Plan(**info["plan"]) if info.get("plan") else make_plan(cfg, smoke=smoke)
    if any(k.startswith(("fit.", "evaluate.")) and k != "fit.epochs" for k in changed):
        plan = Plan(**{**vars(make_plan(cfg, smoke=smoke)), "epochs": plan.epochs})
    if "fit.epochs" in changed:
        plan = Plan(**{**vars(plan), "epochs": cfg.experiment.fit.epochs})
    if done is not None and plan.epochs < done:
        raise UsageError(f"the run has finished {done} epochs already; fit.epochs "
                         f"{plan.epochs} would undo them\n  hint: give fit.epochs >= {done}")
    return plan


def try_restore(run: RunDir, model: Any, *, restore_optimizers: bool = True) -> None:
    """Restore the saved state once before the attempt is recorded, so a damaged or
    mismatched state is a clear error (exit 2) and the run stays as it was.

    Raises:
        UsageError: naming the state folder and what failed.
    """
    from trainctl.run.state import load_state, state_dir

    try:
        load_state(run.path, model, [], restore_optimizers=restore_optimizers)
    except Exception as exc:  # truncated h5/npz, wrong shapes, unreadable JSON, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UsageError(f"{state_dir(run.path)}: cannot restore the saved state: "
                         f"{type(exc).__name__}: {first}\n  hint: the state is damaged or "
                         "belongs to another model; this run cannot be resumed: start a new "
                         "one with trainctl fit") from None


def start_attempt(run: RunDir, cfg: LoadedConfig, plan: Any, epochs_done: int, *,
                  overrides: tuple[str, ...], forced: bool,
                  plugins: dict[str, str] | None = None) -> None:
    """Record the attempt in run.json, cut the history to the saved epochs, store the
    config when ``--set`` changed it and the plug-ins' new hashes when they changed."""
    from dataclasses import asdict

    from trainctl.run.start import attempt

    cut_history(run, epochs_done)
    if overrides:
        run.write_config(cfg.raw)
    info = run.read_json("run.json")
    entry = attempt("resume", now(), from_epoch=epochs_done, overrides=list(overrides))
    if forced:
        entry["forced"] = True
    extra = {"plugins": plugins} if plugins is not None else {}
    run.update_run(status="running", exit_reason=None, end=None, plan=asdict(plan),
                   attempts=[*info.get("attempts", []), entry], **extra)
