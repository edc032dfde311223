"""Live console output of a run: task log lines prefixed with run/step/task, and
foreach progress (done/running/failed of N) instead of a wall of lines.

The scheduler tails each running task's log files (tasks write them directly)
and hands complete lines here.

Progress on a terminal redraws one line at most every ``PROGRESS_TTY_INTERVAL_S``.
Into a log file or a pipe, where nothing is redrawn, a foreach prints its final
line always and otherwise a line only when it reached a new 10% (or
``PROGRESS_HEARTBEAT_S`` passed without one), and never two progress lines
within ``PROGRESS_LOG_INTERVAL_S``: a foreach of 2,000 tasks writes about a
dozen lines, however fast or slow it runs.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO

# A foreach with more splits than this shows one progress line, not per-task system lines.
PROGRESS_THRESHOLD = 8
#: Seconds between redraws of the progress line on a terminal.
PROGRESS_TTY_INTERVAL_S = 0.1
#: Fewest seconds between two progress lines written to a file or pipe (a foreach's last line excepted).
PROGRESS_LOG_INTERVAL_S = 5.0
#: Seconds after which a file or pipe gets a progress line even without a new 10%.
PROGRESS_HEARTBEAT_S = 60.0


def _ts() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


@dataclass
class ForeachProgress:
    label: str
    total: int
    done: int = 0
    running: int = 0
    failed: int = 0
    last_shown: float = float("-inf")
    last_decile: int = -1


@dataclass
class Console:
    """Where a run's output goes. ``quiet`` hides system lines but not task output."""

    run_id: str
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.tty = bool(getattr(self.out, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"
        self._progress_line = False
        self._last_logged = float("-inf")  # when the last progress line went to a file or pipe

    def _clear_progress(self) -> None:
        if self._progress_line:
            self.out.write("\r\033[K")
            self._progress_line = False

    def task_line(self, step: str, task_id: str, line: str, *, stream: str = "stdout", pid: int | None = None) -> None:
        self._clear_progress()
        target = self.err if stream == "stderr" else self.out
        pid_s = f" (pid {pid})" if pid and pid > 0 else ""
        target.write(f"{_ts()} [{self.run_id}/{step}/{task_id}{pid_s}] {line}\n")
        target.flush()

    def system(self, step: str, task_id: str, msg: str, pid: int | None = None) -> None:
        if not self.quiet:
            self.task_line(step, task_id, msg, pid=pid)

    def info(self, msg: str) -> None:
        if not self.quiet:
            self._clear_progress()
            self.out.write(f"{_ts()} {msg}\n")
            self.out.flush()

    def error(self, msg: str) -> None:
        self._clear_progress()
        self.err.write(msg + "\n")
        self.err.flush()

    def progress(self, p: ForeachProgress, *, final: bool = False) -> None:
        if self.quiet:
            return
        text = f"[{self.run_id}/{p.label}] foreach: {p.done}/{p.total} done, {p.running} running, {p.failed} failed"
        now = self.clock()
        if self.tty:
            if final or now - p.last_shown >= PROGRESS_TTY_INTERVAL_S:
                self.out.write("\r\033[K" + text + ("\n" if final else ""))
                self.out.flush()
                self._progress_line = not final
                p.last_shown = now
            return
        decile = (10 * p.done) // p.total
        due = decile > p.last_decile or now - p.last_shown >= PROGRESS_HEARTBEAT_S
        if final or (due and now - self._last_logged >= PROGRESS_LOG_INTERVAL_S):
            p.last_decile = decile
            p.last_shown = self._last_logged = now
            self.out.write(f"{_ts()} {text}\n")
            self.out.flush()
