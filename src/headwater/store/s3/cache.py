"""The local read cache of the S3 object store (storage layer, internal): whole objects
as files under ``$HEADWATER_HOME/cache/s3/``, so the content store mmaps a blob fetched
from S3 exactly as it mmaps a local one.

Safe for concurrent readers in many processes without locks: a file is downloaded
to a temp name in its own directory and renamed into place, so a cached path holds
a whole object or nothing, and two processes fetching one object both end with the
same bytes. Objects are written create-only, so a cached file never goes stale.
The cache is bounded by size: whole files are evicted least recently used first
(a hit touches the file's mtime; atime is unreliable under ``relatime``). A file
that is mapped survives its eviction (Linux keeps an unlinked file's pages), and
files used in the last ``GRACE_S`` seconds are never evicted, so a path just
handed to a reader is still there when the reader opens it.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from typing import BinaryIO

from ..tempfiles import owner_stem, sweep_dir

#: Files used this recently (seconds) are never evicted.
GRACE_S = 60.0
#: Eviction trims the cache to this fraction of its bound, so it does not run on every fill.
_LOW_WATER = 0.85
#: Name of the file whose mtime says when the cache was last measured.
_SCANNED = ".scanned"
#: Directory of the cache's temp files (spooled uploads); not part of the cached objects.
TMP_DIR = "tmp"


class ReadCache:
    """Whole S3 objects as local files, bounded by size.

    Parameters
    ----------
    root : str
        The cache directory (``$HEADWATER_HOME/cache/s3``); created when first filled.
    max_bytes : int
        The size bound. The cache measures itself (one walk of its files) once a
        process has added an eighth of it, or on a process's first fill if no
        process has measured it in the last ``GRACE_S`` seconds, and then evicts
        the least recently used files down to 85% of the bound.
    """

    def __init__(self, root: str, max_bytes: int):
        self.root = os.path.abspath(root)
        self.max_bytes = max(0, int(max_bytes))
        self._added = 0
        self._filled_pid: int | None = None

    # -- paths ---------------------------------------------------------------

    def path(self, *parts: str) -> str:
        """Where the object named by ``parts`` (e.g. endpoint tag, bucket, key) is cached."""
        return "/".join((self.root, *parts))

    def lookup(self, path: str) -> str | None:
        """``path`` if it is cached (its use recorded for LRU), else None."""
        try:
            os.utime(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError:  # a read-only cache still serves its files
            if not os.path.isfile(path):
                return None
        return path

    def temp(self) -> tuple[str, BinaryIO]:
        """A new temp file in the cache (for spooling an upload); adopt it or unlink it."""
        tmp_dir = self.path(TMP_DIR)
        os.makedirs(tmp_dir, exist_ok=True)
        tmp = f"{tmp_dir}/{owner_stem()}-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        return tmp, os.fdopen(fd, "w+b", buffering=1 << 20)

    # -- filling -------------------------------------------------------------

    def fill(self, path: str, write: Callable[[BinaryIO], None]) -> str:
        """Cache the bytes ``write`` writes to the file it gets, as ``path``; returns ``path``.

        Nothing is cached if ``write`` raises. ``OSError`` (e.g. ENOSPC) propagates.
        """
        parent = path.rpartition("/")[0]
        os.makedirs(parent, exist_ok=True)
        # A dot name beside the target: one directory (the rename is atomic), never listed as cached.
        tmp = f"{parent}/.{owner_stem()}-{secrets.token_hex(6)}.tmp"
        try:
            with open(tmp, "xb", buffering=0) as f:
                write(f)
                size = os.fstat(f.fileno()).st_size
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise
        self._account(size)
        return path

    def adopt(self, tmp: str, path: str) -> None:
        """Move the finished temp file ``tmp`` (from ``temp``) into the cache as ``path``."""
        try:
            size = os.stat(tmp).st_size
            os.makedirs(path.rpartition("/")[0], exist_ok=True)
            os.replace(tmp, path)
        except OSError:
            _unlink(tmp)  # a cache that cannot take it only costs a download later
            return
        self._account(size)

    def discard(self, path: str) -> None:
        """Forget ``path`` (the object was deleted, or its cached copy is damaged)."""
        _unlink(path)

    # -- bounding ------------------------------------------------------------

    def account(self, size: int) -> None:
        """Note that the cache holds ``size`` more bytes (evicting when it has grown enough)."""
        self._account(size)

    def _account(self, size: int) -> None:
        self._added += size
        pid = os.getpid()
        first = self._filled_pid != pid
        if first:  # a forked child starts counting afresh
            self._filled_pid, self._added = pid, size
        if self._added >= self.max_bytes // 8 or (first and self._stale_measure()):
            self.evict()

    def _stale_measure(self) -> bool:
        try:
            return time.time() - os.stat(self.path(_SCANNED)).st_mtime > GRACE_S
        except OSError:
            return True

    def usage(self) -> int:
        """Bytes held by cached objects (temp files excluded)."""
        return sum(size for _, size, _ in self._files())

    def evict(self) -> int:
        """Remove least recently used files until the cache is under its low-water mark;
        returns the bytes freed. Files used within ``GRACE_S`` seconds stay."""
        self._added = 0
        try:
            with open(self.path(_SCANNED), "ab"):
                pass
            os.utime(self.path(_SCANNED))
        except OSError:
            pass
        sweep_dir(self.path(TMP_DIR))  # spooled uploads of processes that are gone
        files = self._files()
        total = sum(size for _, size, _ in files)
        if total <= self.max_bytes:
            return 0
        target = int(self.max_bytes * _LOW_WATER)
        recent = time.time() - GRACE_S
        freed = 0
        for mtime, size, path in sorted(files):
            if total - freed <= target or mtime > recent:
                break
            try:
                os.unlink(path)  # a reader that has it mapped keeps its pages
            except FileNotFoundError:
                continue  # another process evicted it first
            freed += size
        return freed

    def _files(self) -> list[tuple[float, int, str]]:
        out: list[tuple[float, int, str]] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath == self.root:
                dirnames[:] = [d for d in dirnames if d != TMP_DIR]
            for name in filenames:
                if name.startswith("."):
                    continue  # in-flight downloads and the measure stamp
                p = f"{dirpath}/{name}"
                try:
                    st = os.stat(p)
                except FileNotFoundError:
                    continue
                # A partially cached object (a sparse file) holds only the blocks it was given.
                out.append((st.st_mtime, min(st.st_size, st.st_blocks * 512), p))
        return out


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["GRACE_S", "ReadCache", "TMP_DIR"]
