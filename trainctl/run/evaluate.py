"""``trainctl evaluate RUN_DIR``: re-evaluate a run's model on its test split.

Example:
    >>> metrics = evaluate(Path("runs/mnist-mlp-..."))
    >>> metrics["sparse_categorical_accuracy"]
    0.9585
"""

from __future__ import annotations

from pathlib import Path

from trainctl.errors import DataError


def evaluate(path: Path, *, verbose: bool = False, unsafe: bool = False,
             checkpoint: str = "final") -> dict[str, float]:
    """Evaluate the run's model on the test split; write metrics.json and record it.

    ``unsafe``: load model.keras with Keras's safe mode off (see :func:`reload.reopen`).
    ``checkpoint``: ``best`` or ``last`` evaluates that checkpoint instead; metrics.json
    (the final model's) is left as it is and the record names the checkpoint.
    The test split is checked against the model first (shapes, labels, NaN/inf), as
    ``fit`` checks it: the data file may have changed since the run.
    """
    from trainctl.data import load_splits, make_dataset
    from trainctl.data.checks import check_split
    from trainctl.run.plan import signature
    from trainctl.run.reload import reopen, warn_changed

    run, cfg, model = reopen(path, verbose=verbose, unsafe=unsafe, checkpoint=checkpoint)
    exp = cfg.experiment
    sig = signature(model, cfg)
    splits = load_splits(exp.data, config_dir=cfg.config_dir, signature=sig,
                         seed=exp.seed, locate=cfg.locate)
    if splits.test is None:
        raise DataError(f"{cfg.locate('data')}: data: the dataset has no test split to "
                        "evaluate on")
    check_split(splits.test, sig, what="test", locate=cfg.locate)
    info = run.read_json("run.json")
    warn_changed(info, data_files=splits.files)
    smoke = bool(info.get("smoke"))
    batch = exp.evaluate.batch_size or exp.fit.batch_size
    ds = make_dataset(splits.test, batch_size=batch, shuffle=False, seed=exp.seed,
                      take_batches=2 if smoke else None, prefetch=exp.runtime.prefetch)
    result = model.evaluate(ds, steps=None if smoke else exp.evaluate.steps,
                            return_dict=True, verbose=0)
    metrics = {k: float(v) for k, v in result.items()}
    if checkpoint == "final":
        run.write_json("metrics.json", metrics)
        run.add_record("evaluate", {"metrics": metrics})
    else:
        run.add_record("evaluate", {"checkpoint": checkpoint, "metrics": metrics})
    return metrics
