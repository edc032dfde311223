"""Temp files of store writers (storage layer, internal): who wrote each one, and
removing those whose writer is gone.

A writer streams into a temp file and renames it into place; one killed first
leaves its temp file behind for ever. Each temp name starts with its writer's
pid and start time (``<pid>.<start ticks>-``), so a sweep can tell a file of a
live writer (kept, whatever its age) from one whose process has exited or whose
pid now belongs to another process (removed). A local store is written from
one host: pids are only meaningful there.
"""

from __future__ import annotations

import os
import re

from .. import procinfo

# <pid>[.<start ticks>]-<random>: the start part is absent in names written before it existed.
_OWNER = re.compile(r"^\.?(\d+)(?:\.(\d+))?-")
_stem: tuple[int, str] | None = None


def _start_ticks(pid: int) -> int | None:
    """Start time of a live ``pid`` in clock ticks after boot; ``None`` when its ``/proc``
    entry cannot be read or it has exited (a zombie writes nothing more)."""
    stat = procinfo.proc_stat(pid)
    return None if stat is None or stat.exited else stat.start_ticks


def owner_stem() -> str:
    """``<pid>.<start ticks>`` of this process (``<pid>`` alone without ``/proc``); the
    prefix of every temp file it writes. Recomputed after a fork (a new pid)."""
    global _stem
    pid = os.getpid()
    if _stem is None or _stem[0] != pid:
        ticks = _start_ticks(pid)
        _stem = (pid, f"{pid}" if ticks is None else f"{pid}.{ticks}")
    return _stem[1]


def writer_gone(name: str) -> bool:
    """Whether the process that wrote temp file ``name`` is gone; ``False`` when unsure
    (a name that is not a temp name, or a pid that exists but has no known start)."""
    m = _OWNER.match(name)
    if m is None:
        return False
    pid = int(m.group(1))
    if pid == os.getpid():
        return False
    stat = procinfo.proc_stat(pid)
    if stat is not None:
        if stat.exited:
            return True
        return m.group(2) is not None and int(m.group(2)) != stat.start_ticks  # the pid was reused
    # /proc/<pid> unreadable: no such process, or one /proc hides (hidepid, another pid
    # namespace). Only the signal probe's ProcessLookupError says the writer is gone.
    return procinfo.signal_probe(pid) is procinfo.Liveness.GONE


def sweep_dir(directory: str, *, dot_only: bool = False) -> tuple[int, int]:
    """Remove the temp files in ``directory`` whose writer is gone; returns (files, bytes).

    With ``dot_only``, only ``.<pid>...tmp`` files (temp files written beside their
    target) are considered, never the directory's real entries.
    """
    removed = freed = 0
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return 0, 0
    for e in entries:
        name = e.name
        if dot_only and not (name.startswith(".") and name.endswith(".tmp")):
            continue
        if not writer_gone(name):
            continue
        try:
            size = e.stat(follow_symlinks=False).st_size
            os.unlink(e.path)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        removed += 1
        freed += size
    return removed, freed
