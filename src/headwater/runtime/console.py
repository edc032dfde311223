"""Live console output of a run: task log lines prefixed with run/step/task, and
foreach progress (done/running/failed of N) instead of a wall of lines.

The scheduler tails each running task's log files (tasks write them directly)
and hands complete lines here.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

# A foreach with more splits than this shows one progress line, not per-task system lines.
PROGRESS_THRESHOLD = 8


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
    last_shown: float = 0.0
    last_decile: int = -1


@dataclass
class Console:
    """Where a run's output goes. ``quiet`` hides system lines but not task output."""

    run_id: str
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False

    def __post_init__(self) -> None:
        self.tty = bool(getattr(self.out, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"
        self._progress_line = False

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
        now = time.monotonic()
        if self.tty:
            if final or now - p.last_shown >= 0.1:
                self.out.write("\r\033[K" + text + ("\n" if final else ""))
                self.out.flush()
                self._progress_line = not final
                p.last_shown = now
            return
        decile = (10 * p.done) // p.total
        if final or decile > p.last_decile:
            p.last_decile = decile
            self.out.write(f"{_ts()} {text}\n")
            self.out.flush()
