"""Task log files (storage layer, internal): the per-line timestamp prefix that
task processes write, and reading it back as plain text or (time, line) pairs.

A task writes each line of ``<attempt>.stdout``/``.stderr`` as
``\\x1e<epoch seconds, 6 decimals>\\x1f<text>\\n``. Lines written below Python
(C extensions, subprocesses sharing the fd) carry no prefix; readers give them
no timestamp. The two control characters (ASCII record/unit separator) do not
occur in ordinary output, so a prefix is recognised anywhere in a line: a C-level
write without a newline followed by a Python line still strips cleanly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Starts a timestamp prefix (ASCII "record separator").
PREFIX_START = b"\x1e"
#: Ends a timestamp prefix (ASCII "unit separator").
PREFIX_END = b"\x1f"

# Compiled once: a prefix is RS, a decimal epoch, US.
_PREFIX = re.compile(rb"\x1e(\d{1,12}(?:\.\d{0,9})?)\x1f")


def stamp(ts: float) -> bytes:
    """The prefix a task writes before a line it emitted at ``ts`` (epoch seconds)."""
    return b"\x1e%.6f\x1f" % ts


def parse_line(line: bytes) -> tuple[float | None, bytes]:
    """One log line (without its newline) → (timestamp or ``None``, text without prefixes).

    The timestamp is that of the first prefix in the line.
    """
    if PREFIX_START not in line:
        return None, line
    m = _PREFIX.search(line)
    if m is None:
        return None, line
    return float(m.group(1)), _PREFIX.sub(b"", line)


def iter_log(data: bytes) -> Iterator[tuple[float | None, bytes]]:
    """The lines of a log as (timestamp or ``None``, text bytes), newlines removed.

    A final line without a newline (still being written) is included.
    """
    if not data:
        return
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for line in lines:
        yield parse_line(line)


def parse_log(data: bytes) -> list[tuple[float | None, str]]:
    """A log's lines as (epoch seconds or ``None``, text), prefixes removed.

    Parameters
    ----------
    data : bytes
        The log file's contents.

    Returns
    -------
    list of (float or None, str)
        One pair per line; a line without a prefix has ``None``. Text is
        decoded as UTF-8 (invalid bytes replaced) and has no trailing newline.

    Examples
    --------
    >>> parse_log(b"\\x1e1763841234.123456\\x1fhello\\nraw\\n")
    [(1763841234.123456, 'hello'), (None, 'raw')]
    """
    return [(ts, text.decode("utf-8", "replace")) for ts, text in iter_log(data)]


def strip_log_bytes(data: bytes) -> bytes:
    """A log's bytes without timestamp prefixes (line structure unchanged)."""
    if PREFIX_START not in data:
        return data
    return _PREFIX.sub(b"", data)


def strip_log(data: bytes) -> str:
    """A log as plain text: prefixes removed, decoded as UTF-8 (invalid bytes replaced).

    Examples
    --------
    >>> strip_log(b"\\x1e1763841234.123456\\x1fhello\\n")
    'hello\\n'
    """
    return strip_log_bytes(data).decode("utf-8", "replace")
