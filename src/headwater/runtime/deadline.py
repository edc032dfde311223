"""The in-task side of ``@timeout`` (execution layer): an interval timer raises
``TimeoutException`` inside the step, so the attempt fails like any exception
and keeps the artifacts it set, as Metaflow's SIGALRM-based timeout does.

There is one deadline per attempt: the scheduler puts it on the TaskSpec as an
absolute ``time.monotonic()`` value when it launches the task, and the task arms
its timer for what is left of it once its setup (reading inputs, hooks,
@secrets) is done. The scheduler kills the task's process group ``GRACE``
seconds past that same deadline, only if the step swallowed the exception or
is stuck below Python.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime
import time
from typing import Any, Callable

from ..exceptions import TimeoutException
from ..procinfo import proc_stat

#: Seconds the scheduler waits past a step's deadline before it kills the task.
GRACE = 2.0

#: How long an alarm that landed in headwater's own frames waits to fire again.
_DEFER = 0.001

# Frames of these files are headwater's plumbing around the step, not the step:
# a timeout raised there would fail a step that already returned.
_OWN_FILES = frozenset({__file__, os.path.join(os.path.dirname(__file__), "hooks.py")})


def timeout_message(step: str, seconds: float) -> str:
    """The one message for a step that ran past its ``@timeout``, in Metaflow's words."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"Step {step} timed out after {hours} hours, {minutes} minutes, {secs:g} seconds"


def task_deadline(seconds: float | None, *, now: float | None = None) -> float | None:
    """The absolute deadline (``time.monotonic()``) of an attempt launched ``now`` with ``@timeout(seconds)``."""
    if not seconds:
        return None
    return (time.monotonic() if now is None else now) + seconds


class StepTimer:
    """Raises ``TimeoutException`` in the step (main thread) when ``deadline`` passes.

    Parameters
    ----------
    step : str
        The step's name, for the message.
    seconds : float
        The step's ``@timeout``, for the message.
    deadline : float
        When the attempt must end, in ``time.monotonic()`` seconds.
    """

    __slots__ = ("step", "seconds", "deadline", "_done", "_previous")

    def __init__(self, step: str, seconds: float, deadline: float) -> None:
        self.step = step
        self.seconds = seconds
        self.deadline = deadline
        self._done = False
        self._previous: Any = None

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` under the timer; the previous SIGALRM handler is restored after.

        Off the main thread no timer can be set: ``fn`` runs untimed and the
        scheduler's kill is the only deadline.
        """
        try:
            self._previous = signal.signal(signal.SIGALRM, self._expired)
        except ValueError:
            fn(*args)
            return
        self._done = False
        try:
            signal.setitimer(signal.ITIMER_REAL, max(self.deadline - time.monotonic(), _DEFER))
            fn(*args)
            self._done = True  # from here on an alarm is late: the step finished in time
        finally:
            self._done = True
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous if self._previous is not None else signal.SIG_DFL)

    def _expired(self, signum: int, frame: Any) -> None:
        if self._done:
            return
        if frame is not None and frame.f_code.co_filename in _OWN_FILES:
            # Between headwater's statements (the step not yet entered, or just
            # returned): fire again in a moment, in the step, unless it is done by then.
            signal.setitimer(signal.ITIMER_REAL, _DEFER)
            return
        message = timeout_message(self.step, self.seconds)
        # Into the task's stdout with a wall-clock stamp, as Metaflow's timeout logs it.
        print(f"{datetime.now():%Y-%m-%d %H:%M:%S.%f}"[:-3], message, flush=True)
        raise TimeoutException(message)


def kill_descendants(*, dedicated: bool) -> None:
    """SIGKILL every process this one started, and theirs (Linux; elsewhere a no-op).

    A timed-out step ends in-process, so the helpers it started would outlive it;
    the scheduler's process-group kill only happens when the task itself hangs.
    Only a process ``dedicated`` to the task (a fork-pool child, a ``step``
    subprocess) may do this: in a long-lived worker that runs ``execute()`` for
    many tasks, its other children are not the step's.
    """
    if not dedicated:
        return
    me = os.getpid()
    try:
        names = os.listdir("/proc")
    except OSError:
        return
    children: dict[int, list[int]] = {}
    for name in names:
        if not name.isdigit():
            continue
        stat = proc_stat(int(name))
        if stat is not None:
            children.setdefault(stat.ppid, []).append(int(name))
    doomed: set[int] = set()
    todo = [me]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in doomed and child != me:
                doomed.add(child)
                todo.append(child)
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
