"""Is a run that never ended still running? (index layer, internal)

A run process writes ``_run_end.json`` when it ends; one killed with SIGKILL (or
a crashed machine) never does, and its run would look "running" forever. The
run record names the process (``pid``, ``host``): on the same host, a pid that
no longer exists, or exists only as a zombie, or now belongs to a process
started after the run, means the run is dead. Runs of other hosts cannot be
checked and keep their recorded status.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Mapping
from typing import Any

from ..procinfo import pid_alive

__all__ = ["attempt_status", "pid_alive", "run_is_dead", "run_status", "this_host"]


@functools.lru_cache(maxsize=1)
def this_host() -> str:
    """This machine's host name, as run records store it."""
    return socket.gethostname()


def _fields(run: Any) -> tuple[str | None, int | None, str | None, float | None]:
    if isinstance(run, Mapping):
        return run.get("status"), run.get("pid"), run.get("host"), run.get("created_at")
    return (getattr(run, "status", None), getattr(run, "pid", None), getattr(run, "host", None),
            getattr(run, "created_at", None))  # fmt: skip


def run_is_dead(run: Any, *, ended: bool | None = None) -> bool:
    """Whether a run that has not ended has lost its process.

    Parameters
    ----------
    run : RunRow or dict
        An index row, or a run record (``pid``, ``host``, ``created_at``). A
        ``status`` other than ``"running"`` means the run ended.
    ended : bool, optional
        Whether the run has an end record, for callers holding a bare run
        record (which has no ``status``).

    Returns
    -------
    bool
        ``True`` when the run has no end, ran on this host, and its process is
        gone. ``False`` for ended runs, runs of other hosts, and runs whose
        process is alive.
    """
    status, pid, host, created = _fields(run)
    if ended is None:
        ended = status is not None and status != "running"
    if ended or not pid or not host or host != this_host():
        return False
    return not pid_alive(int(pid), started_by=created)


def run_status(run: Any) -> str:
    """A run row's status as users see it: ``running``, ``successful``,
    ``failed`` or ``killed`` (no end record and its process is gone)."""
    status = getattr(run, "status", None) if not isinstance(run, Mapping) else run.get("status")
    if status in ("successful", "failed"):
        return str(status)
    return "killed" if run_is_dead(run) else "running"


def attempt_status(status: str, run: Any) -> str:
    """An attempt's index status as users see it: an attempt still ``"running"``
    in a run that is no longer running (killed, or ended without it) is ``"killed"``:
    it will never commit.

    Parameters
    ----------
    status : str
        The attempt's status in the index (``"running"``, ``"ok"``, ``"failed"``).
    run : RunRow or dict
        Its run's row, read after the attempt's (a run row read earlier may be stale).
    """
    if status == "running" and run_status(run) != "running":
        return "killed"
    return status
