"""The run process that owns a task attempt: named by a token, checked before the attempt commits.

Runtime layer. A local launcher stamps each TaskSpec with a token naming its own
process; the executor refuses to commit once that process is gone, so no task of
a killed run commits behind its back, whatever the launcher did or failed to do.
A remote launcher uses a token ``<scheme>:<id>`` whose scheme it registered with
``register_owner_scheme`` where its tasks run (e.g. ``ray-job:<job id>``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..exceptions import HeadwaterException
from ..procinfo import pid_alive


class RunGoneError(HeadwaterException):
    """The run process that launched an attempt died before the attempt committed."""

    headline = "Run process gone"


_SCHEMES: dict[str, Callable[[str], bool]] = {}


def register_owner_scheme(scheme: str, alive_check: Callable[[str], bool]) -> None:
    """Make tokens ``<scheme>:<id>`` checked by ``alive_check(id)`` (in the process that commits)."""
    _SCHEMES[scheme] = alive_check


def process_token() -> str:
    """``"<pid>:<epoch seconds>"``: this process, and a time by which it had started (against pid reuse)."""
    return f"{os.getpid()}:{time.time():.3f}"


def alive(token: str) -> bool:
    """Whether the process named by ``token`` (from ``process_token``) still runs; a zombie does not."""
    pid, _, started_by = token.partition(":")
    check = _SCHEMES.get(pid)
    if check is not None:
        return check(started_by)
    return pid_alive(int(pid), started_by=float(started_by) if started_by else None)


def check_owner(token: str | None, pathspec: str, attempt: int) -> None:
    """Raise ``RunGoneError`` when the run that launched ``pathspec``'s attempt is gone (the commit check)."""
    if token is not None and not alive(token):
        owner = token.partition(":")[0] if token.partition(":")[0] not in _SCHEMES else token
        raise RunGoneError(
            f"Attempt {attempt} of task {pathspec} was not committed: its run process ({owner}) is gone.",
            hint="The run was killed or crashed. Resume it with `resume`; this task runs again.",
        )
