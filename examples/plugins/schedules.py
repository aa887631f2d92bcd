"""Learning-rate functions for ``keras.callbacks.LearningRateScheduler`` (seed S13).

Named from a config as the scheduler's ``schedule`` component; extra keys are
the function's keyword arguments::

    fit:
      callbacks:
        - type: LearningRateScheduler
          schedule: {type: "examples.plugins.schedules:step_decay", drop: 0.5, every: 1}
"""

from __future__ import annotations


def step_decay(epoch: int, lr: float, *, initial: float = 0.001, drop: float = 0.5,
               every: int = 2) -> float:
    """``initial * drop ** (epoch // every)``: the rate for ``epoch`` (0-based).

    Args:
        epoch: the epoch about to start, as Keras passes it.
        lr: the optimizer's current rate (unused: the rate is a function of the epoch,
            so a resumed run gets the same rate as an uninterrupted one).
        initial: the rate of the first ``every`` epochs.
        drop: the factor applied every ``every`` epochs.
        every: epochs between drops.

    Example:
        >>> [step_decay(e, 0.0, initial=0.1, drop=0.5, every=1) for e in range(3)]
        [0.1, 0.05, 0.025]
    """
    return float(initial * drop ** (epoch // every))
