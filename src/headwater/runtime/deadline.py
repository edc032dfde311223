"""The in-task side of ``@timeout`` (execution layer): an interval timer raises
``TimeoutException`` inside the step, so the attempt fails like any exception
and keeps the artifacts it set, as Metaflow's SIGALRM-based timeout does. The
scheduler still kills the task's process group a little later (``GRACE``) if
the step swallowed the exception or is stuck below Python.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from ..exceptions import TimeoutException

#: Seconds the scheduler waits past a step's @timeout before it kills the task.
GRACE = 2.0


def timeout_message(step: str, seconds: float) -> str:
    """The one message for a step that ran past its ``@timeout``."""
    return f"Step {step!r} timed out after {seconds:g} seconds (@timeout)."


def arm(step: str, seconds: float | None) -> bool:
    """Raise ``TimeoutException`` in this (main) thread after ``seconds``; ``False`` if it cannot."""
    if not seconds:
        return False

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutException(timeout_message(step, seconds))

    try:
        signal.signal(signal.SIGALRM, expired)
    except ValueError:  # not the main thread: the scheduler's kill is the only deadline
        return False
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return True


def disarm() -> None:
    """Stop the timer before headwater's own work (persisting) begins."""
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)


def kill_descendants() -> None:
    """SIGKILL every process this one started, and theirs (Linux; elsewhere a no-op).

    A timed-out step ends in-process, so the helpers it started would outlive it;
    the scheduler's process-group kill only happens when the task itself hangs.
    """
    me = os.getpid()
    try:
        names = os.listdir("/proc")
    except OSError:
        return
    parent_of: dict[int, int] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "<pid> (<comm>) <state> <ppid> ...": comm may hold spaces, so split after ')'.
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1:
            parent_of[int(name)] = int(fields[1])
    doomed, todo = set(), [me]
    while todo:
        p = todo.pop()
        for child, ppid in parent_of.items():
            if ppid == p and child not in doomed and child != me:
                doomed.add(child)
                todo.append(child)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
