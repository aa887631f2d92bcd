"""The values of run.json's ``status``, in one place.

A run is ``running`` until it ends ``completed``, ``failed`` or ``interrupted`` (a
signal, or a crash found later); a sweep's trial that its pruner stopped at an
epoch's end is ``pruned``.

Example:
    >>> from trainctl.status import FINISHED
    >>> "pruned" in FINISHED
    True
"""

STATUSES = ("running", "completed", "failed", "interrupted", "pruned")

# Trained and saved to its last epoch: its files are whole (a pruned trial's too).
FINISHED = ("completed", "pruned")
