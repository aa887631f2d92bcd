"""Reopen a finished run: its config (as resolved when it ran), plug-ins and model.

Example:
    >>> run, cfg, model = reopen(Path("runs/mnist-mlp-20261124-101500-3f9a2c"))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainctl.artifacts import RunDir
from trainctl.config import LoadedConfig, load_config
from trainctl.errors import UsageError


def reopen(path: Path, *, verbose: bool = False) -> tuple[RunDir, LoadedConfig, Any]:
    """Load a run's config.yaml and model.keras; paths resolve as when it was trained."""
    from trainctl.plugins import import_plugins
    from trainctl.run.runtime import import_tensorflow

    run = RunDir.open(path)
    info = run.read_json("run.json")
    base_dir = Path(info["config_path"]).parent if info.get("config_path") else run.path
    cfg = load_config(run.file("config.yaml"), base_dir=base_dir)
    import_tensorflow(verbose)
    import keras

    import_plugins(list(cfg.experiment.imports), config_dir=cfg.config_dir, locate=cfg.locate)
    model_path = run.file("model.keras")
    if not model_path.is_file():
        raise UsageError(f"{run.path}: no model.keras (the run's status is "
                         f"{info.get('status')!r}); only a completed run can be reused")
    try:
        model = keras.saving.load_model(model_path)
    except Exception as exc:
        # the real cause is at the end of Keras's message (KERAS3_NOTES)
        cause = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{model_path}: cannot load the model: {cause}") from None
    return run, cfg, model
