"""CPU priority of trainctl's helper processes: Linux's SCHED_IDLE and back.

A SCHED_IDLE process runs only on a core nothing else wants, so the curves drawer
(:mod:`trainctl.run.curves`) can import matplotlib without taking CPU time from the
training. Unlike ``nice``, an ordinary user may switch a process of their own back
to the normal policy (sched(7)), which is done as soon as the run waits for it:
under SCHED_IDLE on a busy machine it could otherwise wait for minutes.

Example:
    >>> set_idle(True)            # this process
    >>> set_idle(False, pid)      # a child the run now waits for
"""

from __future__ import annotations

import os


def set_idle(idle: bool, pid: int = 0) -> None:
    """SCHED_IDLE (``idle``) or the normal policy for process ``pid`` (0: this one).

    Where the policy cannot be set (not Linux, the process has ended), nothing changes.
    """
    try:
        policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
        os.sched_setscheduler(pid, policy, os.sched_param(0))
    except (AttributeError, OSError):
        pass
