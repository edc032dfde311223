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
import os
import socket
from collections.abc import Mapping
from typing import Any

# A run record's created_at is taken after its process started; a process that
# started this much later than the run is not the run's (its pid was reused).
# Generous: /proc's boot time has whole-second resolution and clocks drift.
_PID_REUSE_SLACK_S = 5.0


@functools.lru_cache(maxsize=1)
def this_host() -> str:
    """This machine's host name, as run records store it."""
    return socket.gethostname()


@functools.lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _proc_stat(pid: int) -> tuple[str, float | None] | None:
    """(state letter, start time in epoch seconds) from ``/proc/<pid>/stat``; ``None`` if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) is parenthesised and may hold spaces or ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        state = fields[0].decode()
        ticks = int(fields[19])  # field 22 of proc(5): starttime, in clock ticks after boot
    except (IndexError, ValueError):
        return None
    boot = _boot_time()
    try:
        hz = os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        hz = 0
    started = boot + ticks / hz if boot is not None and hz > 0 else None
    return state, started


def pid_alive(pid: int, *, started_by: float | None = None) -> bool:
    """Whether process ``pid`` of this host is alive (and, if ``started_by`` is
    given, was already running at that time, so it is not a reuse of the pid).

    A zombie (exited, not yet reaped) is not alive.
    """
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return True  # cannot tell: do not call a live run dead
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):
        return False
    if started_by is not None and started is not None and started > started_by + _PID_REUSE_SLACK_S:
        return False
    return True


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
