"""Which logged value a run watches (its checkpoint monitor) and which way is better.

No Keras import: ``trainctl runs list`` ranks runs with the same rules the
training used (:class:`trainctl.run.callbacks.Checkpointer`).

Example:
    >>> monitor_mode(default_monitor(None, has_validation=True))
    'min'
"""

from __future__ import annotations


def default_monitor(configured: str | None, *, has_validation: bool) -> str:
    """``fit.monitor`` when set, else ``val_loss`` with validation data, else ``loss``.

    Example:
        >>> default_monitor(None, has_validation=False)
        'loss'
    """
    return configured or ("val_loss" if has_validation else "loss")


def monitor_mode(monitor: str) -> str:
    """Keras's ``auto`` rule, stated: accuracy-like metrics go up, everything else down.

    Example:
        >>> monitor_mode("val_sparse_categorical_accuracy"), monitor_mode("val_loss")
        ('max', 'min')
    """
    name = monitor.lower()
    return "max" if any(t in name for t in ("acc", "auc", "precision", "recall", "f1")) else "min"
