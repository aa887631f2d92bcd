"""``trainctl validate --build``: build the model and run one synthetic train step.

This finds what needs TensorFlow (layers whose shapes do not connect, a loss
that does not fit the outputs, a compile option Keras rejects, a callback watching
a value the model does not log) without any data file or a run folder.

Example:
    >>> build_check(load_config("configs/mnist.yaml"))
"""

from __future__ import annotations

import numpy as np

from trainctl.config import LoadedConfig
from trainctl.errors import ConfigError

CHECK_BATCH = 4


def build_check(cfg: LoadedConfig, *, verbose: bool = False) -> None:
    """Build and compile ``cfg``'s model and train it on one batch of random data."""
    from trainctl.run.runtime import import_tensorflow

    import_tensorflow(verbose)
    from trainctl.build import build_model, compile_model
    from trainctl.data.synthetic import make_split
    from trainctl.plugins import import_plugins
    from trainctl.run.plan import signature
    from trainctl.run.runtime import configure_for

    exp = cfg.experiment
    import_plugins(list(exp.imports), config_dir=cfg.config_dir, locate=cfg.locate)
    with configure_for(cfg, seed=exp.seed).scope():
        model = build_model(exp, cfg.locate)
        compile_model(model, exp, cfg.locate)
    split = make_split(signature(model, cfg), CHECK_BATCH, np.random.default_rng(0),
                       length=8, int_high=2)
    try:
        logs = model.train_on_batch(split.x, split.y, return_dict=True)
    except Exception as exc:  # the loss/metrics do not fit the outputs, or a plug-in fails
        from trainctl.diagnose import exception_text

        first = exception_text(exc, lines=3)
        raise ConfigError(f"one training step on random data failed: "
                          f"{type(exc).__name__}: {first}", key="compile",
                          where=cfg.locate("compile"),
                          hint="check that each loss and metric fits its output's shape") \
            from None
    from trainctl.run.prepare import check_watched

    # a monitor typo: found here too, without any data (validation: as the config says)
    check_watched(cfg, model, list(logs), has_validation=exp.data.validation is not None)
