"""A throttled progress line on stderr for large S3 transfers (internal).

Shown only for transfers of more than ``MIN_OBJECTS`` objects or ``MIN_BYTES`` bytes, at
most once per ``INTERVAL`` seconds (``\\r``-rewritten on a terminal, plain lines otherwise).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MIN_OBJECTS = 100
MIN_BYTES = 1 << 30
#: Seconds between updates on a terminal / in a log file.
INTERVAL_TTY = 0.5
INTERVAL_LOG = 10.0


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """Counts objects and bytes of one bulk operation and reports them now and then."""

    def __init__(self, verb: str, total_objects: int, total_bytes: int | None = None,
                 stream: TextIO | None = None) -> None:
        self.verb = verb
        self.total_objects = total_objects
        self.total_bytes = total_bytes
        self.objects = 0
        self.bytes = 0
        self._stream = stream or sys.stderr
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._interval = INTERVAL_TTY if self._tty else INTERVAL_LOG
        self._start = time.monotonic()
        self._last = self._start
        self._shown = False
        self._large = total_objects > MIN_OBJECTS or (total_bytes or 0) > MIN_BYTES

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        self._tick()

    def add_object(self) -> None:
        self.objects += 1
        self._tick()

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        if not self._large and self.bytes <= MIN_BYTES:
            return
        self._last = now
        self._write(now)

    def _line(self, now: float) -> str:
        rate = self.bytes / max(now - self._start, 1e-6)
        total = f" of {_size(self.total_bytes)}" if self.total_bytes else ""
        return (f"S3 {self.verb}: {self.objects}/{self.total_objects} objects, {_size(self.bytes)}{total}, "
                f"{_size(rate)}/s")

    def _write(self, now: float) -> None:
        self._shown = True
        end = "" if self._tty else "\n"
        lead = "\r" if self._tty else ""
        self._stream.write(f"{lead}{self._line(now)}{end}")
        self._stream.flush()

    def close(self) -> None:
        """Print the final line if any line was shown."""
        if self._shown:
            self._write(time.monotonic())
            if self._tty:
                self._stream.write("\n")
            self._stream.flush()


__all__ = ["MIN_BYTES", "MIN_OBJECTS", "Progress"]
