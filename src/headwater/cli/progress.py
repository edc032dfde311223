"""Progress on stderr for long ``headwater`` commands (interface layer): gc, delete, verify, reindex.

Drawn the way pip and rich do it: on a terminal, one line redrawn in place at most every
``REDRAW_EVERY`` seconds and erased at the end, so the command's output stays clean; when
stderr is not a terminal (a log file, CI, a pipe), a plain line at most every
``PLAIN_EVERY`` seconds, so a long job shows it is alive without flooding the log; nothing at
all for a quick one. ``TERM=dumb`` counts as not a terminal.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

#: Seconds between two redraws on a terminal.
REDRAW_EVERY = 0.2
#: Seconds between two plain lines when stderr is not a terminal (the first after as long).
PLAIN_EVERY = 30.0
#: Width of the bar drawn on a terminal, in characters.
BAR_WIDTH = 24


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal that can redraw a line."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM") != "dumb"


def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """``[#########...............]`` for ``done`` of ``total``."""
    filled = width if total <= 0 else min(width, width * done // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


class ProgressLine:
    """A progress display on stderr for one command.

    Parameters
    ----------
    stream : TextIO, optional
        Where to draw (default ``sys.stderr``).
    terminal : bool, optional
        Whether to redraw in place (default: whether ``stream`` is a terminal).
    enabled : bool
        False shows nothing (``--json`` output, or ``--quiet``).
    clock : callable
        Monotonic seconds (a test may drive it).

    Examples
    --------
    >>> show = ProgressLine(enabled=False)
    >>> show.update("gc: deleting blobs", 3, 10)
    >>> show.close()
    """

    def __init__(self, stream: TextIO | None = None, *, terminal: bool | None = None, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.enabled = enabled
        self.clock = clock
        self._started = clock()
        self._last = self._started if not self.terminal else float("-inf")
        self._shown = False

    def update(self, text: str, done: int | None = None, total: int | None = None) -> None:
        """Show ``text`` (with a bar and ``done/total`` when both are given, ``done`` alone when
        the total is not known), if it is time to."""
        if not self.enabled:
            return
        now = self.clock()
        final = done is not None and total is not None and done >= total
        if self.terminal:
            if now - self._last < REDRAW_EVERY and not final:
                return
        elif now - self._last < PLAIN_EVERY:
            return
        self._last = now
        if done is None:
            line = text
        elif total is None:
            line = f"{text} {done}"
        else:
            line = f"{text} {bar(done, total)} {done}/{total}"
        if self.terminal:
            self.stream.write(f"\r{line}\x1b[K")
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Erase the line on a terminal (the command's own output follows)."""
        if self.enabled and self.terminal and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._shown = False


__all__ = ["PLAIN_EVERY", "REDRAW_EVERY", "ProgressLine", "bar", "is_terminal"]
