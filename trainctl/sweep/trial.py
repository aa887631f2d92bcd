"""Inside a trial process: report every epoch's objective to the study; stop when pruned.

The sweep starts each trial as ``trainctl fit`` (or ``trainctl resume``) with
:data:`ENV` set to a JSON description of the trial; :func:`trial_callbacks`
returns the reporter only then, so a plain ``fit`` imports no Optuna.

Example:
    >>> callbacks += trial_callbacks(run)   # [] outside a sweep
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV = "TRAINCTL_SWEEP_TRIAL"


def trial_env(**fields: Any) -> dict[str, str]:
    """The environment entry a trial process reads (storage, study, trial, objective).

    Example:
        >>> trial_env(number=0, trial_id=1, study="s", storage=None, folder="runs/s",
        ...           metric="val_loss", direction="minimize", pruner={}, params={})
        {'TRAINCTL_SWEEP_TRIAL': '{"number": 0, ...}'}
    """
    return {ENV: json.dumps(fields)}


def current_trial() -> dict | None:
    """This process's trial description (:func:`trial_env`), or None outside a sweep."""
    spec = os.environ.get(ENV)
    return json.loads(spec) if spec else None


def pruned_status(info: dict) -> str | None:
    """The exit reason of a run the sweep's pruner stopped (run.json ``info``), else None."""
    epoch = info.get("pruned_at_epoch")
    return f"pruned by the sweep after epoch {epoch}" if epoch else None


def trial_callbacks(run: Any) -> list:
    """``[Reporter]`` in a trial process started by a sweep, else ``[]``.

    Args:
        run: the trial's RunDir (its run.json gets the trial's number and parameters).
    """
    spec = current_trial()
    return [make_reporter(spec, run)] if spec is not None else []


def make_reporter(spec: dict, run: Any) -> Any:
    """A Keras callback reporting ``spec["metric"]`` each epoch to the trial."""
    import keras
    import optuna

    from trainctl.sweep.study import make_pruner, storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    class Reporter(keras.callbacks.Callback):
        """Report each epoch's objective; prune: record it and stop after this epoch."""

        def on_train_begin(self, logs=None):
            run.update_run(sweep={"folder": spec["folder"], "trial": spec["number"],
                                  "params": spec["params"]})
            study = optuna.load_study(study_name=spec["study"],
                                      storage=storage(spec["folder"], spec["storage"]),
                                      pruner=make_pruner(spec["pruner"]))
            self.trial = optuna.Trial(study, spec["trial_id"])

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get(spec["metric"])
            if value is None:  # e.g. validation_freq skipped this epoch
                return
            import warnings

            with warnings.catch_warnings():  # a resumed epoch may be reported twice
                warnings.simplefilter("ignore")
                self.trial.report(float(value), epoch)
            if self.trial.should_prune():
                run.update_run(pruned_at_epoch=epoch + 1)
                print(f"pruned after epoch {epoch + 1}: {spec['metric']} {float(value):.4f}",
                      flush=True)
                self.model.stop_training = True

    return Reporter()
