"""The run process that owns a task attempt: named by a token, checked before the attempt commits.

Runtime layer. A local launcher stamps each TaskSpec with its own token; the
executor refuses to commit once that process is gone, so no task of a killed run
commits behind its back (whatever the launcher did or failed to do).
"""

from __future__ import annotations

import os

from ..exceptions import HeadwaterException

_DEAD_STATES = frozenset("ZXx")  # zombie, dead: exited even if not reaped yet


class RunGoneError(HeadwaterException):
    """The run process that launched an attempt died before the attempt committed."""

    headline = "Run process gone"


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a live pid from /proc, None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except FileNotFoundError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], fields[19]


def process_token(pid: int | None = None) -> str:
    """``"<pid>:<start time>"`` naming this (or ``pid``'s) process on this host, immune to pid reuse."""
    pid = os.getpid() if pid is None else pid
    try:
        st = _stat(pid)
    except OSError:  # no /proc (macOS): the pid alone
        st = None
    return f"{pid}:{st[1] if st else ''}"


def alive(token: str) -> bool:
    """Whether the process named by ``token`` (from ``process_token``) still runs."""
    pid_text, _, started = token.partition(":")
    pid = int(pid_text)
    if started:
        st = _stat(pid)
        return st is not None and st[1] == started and st[0] not in _DEAD_STATES
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_owner(token: str | None, pathspec: str, attempt: int) -> None:
    """Raise ``RunGoneError`` when the run that launched ``pathspec``'s attempt is gone (the commit check)."""
    if token is not None and not alive(token):
        pid = token.partition(":")[0]
        raise RunGoneError(
            f"Attempt {attempt} of task {pathspec} was not committed: its run process ({pid}) is gone.",
            hint="The run was killed or crashed. Resume it with `resume`; this task runs again.",
        )
