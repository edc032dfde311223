"""Run one command; report its wall time and its process tree's resource usage.

Used by ``benchmarks/run.py``; one fresh helper process per measured run, so that
``getrusage(RUSAGE_CHILDREN)`` covers exactly that run and nothing else.

    python benchmarks/_measure.py '<spec json>'   ->   one JSON line on stdout

spec: {"cmd": [...], "cwd": str, "env": {...}, "stdout": path, "stderr": path,
       "timeout": seconds}

Reported:
  wall_s        time.perf_counter() around the command (spawn to exit), seconds
  rc            exit status (None on timeout)
  maxrss_kib    ru_maxrss of RUSAGE_CHILDREN: the peak RSS of the LARGEST SINGLE
                descendant process (the kernel keeps the max, not the sum, over
                reaped children) - not the sum over processes alive at once
  cpu_s         user + system CPU seconds of all reaped descendants
                (also split: user_s, sys_s)

The helper makes itself a child subreaper (Linux prctl), so grandchildren that
outlive their parent are re-parented to it, reaped here and counted too.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import time


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:
        return False


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main() -> int:
    spec = json.loads(sys.argv[1])
    subreaper = _become_subreaper()
    timed_out = False
    with open(spec["stdout"], "wb") as out, open(spec["stderr"], "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            spec["cmd"],
            cwd=spec["cwd"],
            env=spec["env"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so a timeout kills the tree
        )
        try:
            rc = proc.wait(timeout=spec.get("timeout"))
        except subprocess.TimeoutExpired:
            timed_out = True
            _killpg(proc.pid)
            proc.wait()
            rc = None
        wall = time.perf_counter() - t0

    # Reap orphans adopted as subreaper (they count towards RUSAGE_CHILDREN only
    # once reaped). Anything still alive after a grace period is killed.
    leftovers = 0
    grace_end = time.monotonic() + 5.0
    give_up = grace_end + 5.0
    killed = False
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            now = time.monotonic()
            if now > give_up:
                break  # something escaped the process group; stop waiting for it
            if now > grace_end and not killed:
                _killpg(proc.pid)
                killed = True
            time.sleep(0.01)
            continue
        leftovers += 1
    _killpg(proc.pid)  # stray members of the run's process group, if any

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "wall_s": wall,
                "rc": rc,
                "timed_out": timed_out,
                "maxrss_kib": ru.ru_maxrss,
                "cpu_s": ru.ru_utime + ru.ru_stime,
                "user_s": ru.ru_utime,
                "sys_s": ru.ru_stime,
                "subreaper": subreaper,
                "orphans_reaped": leftovers,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
