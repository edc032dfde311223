"""The run process that owns a task attempt: named by a token, checked before the attempt commits.

Runtime layer. A local launcher stamps each TaskSpec with a token naming its own
process; the executor refuses to commit once that process is gone, so no task of
a killed run commits behind its back, whatever the launcher did or failed to do.
"""

from __future__ import annotations

import os
import time

from ..exceptions import HeadwaterException
from ..procinfo import pid_alive


class RunGoneError(HeadwaterException):
    """The run process that launched an attempt died before the attempt committed."""

    headline = "Run process gone"


def process_token() -> str:
    """``"<pid>:<epoch seconds>"``: this process, and a time by which it had started (against pid reuse)."""
    return f"{os.getpid()}:{time.time():.3f}"


def alive(token: str) -> bool:
    """Whether the process named by ``token`` (from ``process_token``) still runs; a zombie does not."""
    pid, _, started_by = token.partition(":")
    return pid_alive(int(pid), started_by=float(started_by) if started_by else None)


def check_owner(token: str | None, pathspec: str, attempt: int) -> None:
    """Raise ``RunGoneError`` when the run that launched ``pathspec``'s attempt is gone (the commit check)."""
    if token is not None and not alive(token):
        pid = token.partition(":")[0]
        raise RunGoneError(
            f"Attempt {attempt} of task {pathspec} was not committed: its run process ({pid}) is gone.",
            hint="The run was killed or crashed. Resume it with `resume`; this task runs again.",
        )
