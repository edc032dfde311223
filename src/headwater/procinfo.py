"""Process identity and liveness on this host (bottom layer: imports nothing of headwater).

A pid alone does not name a process for long: once it exits, the kernel may
hand the pid to another one. A process is named here by its pid and its start
time (``/proc/<pid>/stat`` field 22, clock ticks after boot), read in one place
for every caller: temp file owners (store), run liveness (index) and the run
process that owns a task attempt (runtime).

Where ``/proc/<pid>`` cannot be read (no ``/proc``, ``hidepid``, another pid
namespace), ``os.kill(pid, 0)`` decides: only ``ProcessLookupError`` means gone.
"""

from __future__ import annotations

import enum
import functools
import os
from dataclasses import dataclass

# A ``started_by`` time is taken after its process started; a process that started
# this much later is not that one (its pid was reused). Generous: ``btime`` has
# whole-second resolution and clocks drift.
PID_REUSE_SLACK_S = 5.0


class Liveness(enum.Enum):
    """What this host can tell about a pid."""

    ALIVE = "alive"  # a running (or stopped) process
    GONE = "gone"  # no such process, or a zombie (exited, not yet reaped)
    UNKNOWN = "unknown"  # cannot tell: the probe failed for another reason


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` that identify a process."""

    state: str  # proc(5) state letter: R, S, D, Z, X, T, ...
    start_ticks: int  # start time, clock ticks after boot
    ppid: int = 0  # the parent's pid

    @property
    def exited(self) -> bool:
        """Whether the process has exited (a zombie or dead entry), so it writes nothing more."""
        return self.state in ("Z", "X")


def proc_stat(pid: int) -> ProcStat | None:
    """``pid``'s state, start time and parent from ``/proc/<pid>/stat``; ``None`` when unreadable
    (no such process, no ``/proc``, or ``/proc`` hides it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()  # the command name may hold spaces or ')'
    try:
        return ProcStat(state=fields[0].decode(), start_ticks=int(fields[19]), ppid=int(fields[1]))
    except (IndexError, ValueError, UnicodeDecodeError):
        return None


def signal_probe(pid: int) -> Liveness:
    """``os.kill(pid, 0)``: only ``ProcessLookupError`` means gone; ``EPERM`` (another user's
    process) means alive; any other failure means unknown."""
    if pid <= 0:
        return Liveness.GONE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return Liveness.GONE
    except PermissionError:
        return Liveness.ALIVE
    except OSError:
        return Liveness.UNKNOWN
    return Liveness.ALIVE


@functools.lru_cache(maxsize=1)
def boot_time() -> float | None:
    """This host's boot time in epoch seconds (``/proc/stat`` ``btime``); ``None`` without ``/proc``."""
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def start_epoch(stat: ProcStat) -> float | None:
    """When the process of ``stat`` started, in epoch seconds (whole-second precision of ``btime``);
    ``None`` when the boot time or clock rate is unknown."""
    boot = boot_time()
    try:
        hz = os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError, AttributeError):
        hz = 0
    return boot + stat.start_ticks / hz if boot is not None and hz > 0 else None


def pid_alive(pid: int, *, started_by: float | None = None) -> bool:
    """Whether process ``pid`` of this host is alive (and, if ``started_by`` is
    given, was already running at that time, so it is not a reuse of the pid).

    A zombie (exited, not yet reaped) is not alive. A pid whose ``/proc`` entry
    cannot be read is alive unless the signal probe says it is gone (a live
    process is never called dead).
    """
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    stat = proc_stat(pid)
    if stat is None:
        return signal_probe(pid) is not Liveness.GONE
    if stat.exited:
        return False
    started = start_epoch(stat)
    return started_by is None or started is None or started <= started_by + PID_REUSE_SLACK_S
