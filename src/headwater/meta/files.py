"""The SQLite index's files (index layer, internal): which file is in place, the
lock rebuilders share, and recognising SQLite's ways of saying the disk is full.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ..store.full import free_bytes, no_space

#: Below this many free bytes, a vague SQLite "disk I/O error" is taken to be a full disk.
_NEARLY_FULL = 1 << 20

FileId = tuple[int, int]


def file_id(path: str) -> FileId | None:
    """``(st_dev, st_ino)`` of the file at ``path``, or ``None`` if there is none: one ``stat``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def index_full(exc: BaseException, root: str) -> bool:
    """Whether ``exc``, raised while using the index in ``root``, says the disk is full.

    An ``OSError`` says so by its errno. SQLite says "database or disk is full", or
    only "disk I/O error" when it cannot grow its shared-memory file; the latter
    counts when ``root``'s file system has (almost) nothing left.
    """
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        return "disk is full" in text or ("disk I/O error" in text and free_bytes(root) < _NEARLY_FULL)
    return no_space(exc)


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@contextmanager
def file_lock(path: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if needed) for the block; no-op without fcntl."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no other process builds the index at the same moment
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
