"""Partial reads of S3 objects into the read cache (storage layer, internal).

An object read by range is cached as a sparse file, ``<cached path>.partial``, the size
of the object: each range asked for is fetched with ranged GETs (a few in flight) and
written at its offset, so later readers, in this process or any other, find it present
(the file system's hole map says which ranges are). The file counts against the cache's
bound by the blocks it holds and is evicted like any cached file; a reader that has it
mapped keeps its pages. Nothing here verifies the bytes: the reader checks each chunk
against the blob's digests and asks again with ``again=True`` on a mismatch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ..full import no_space
from ..ranged import RangedObject, present

#: Suffix of a partially cached object's file.
PARTIAL = ".partial"


class S3RangedObject(RangedObject):
    """An S3 object whose ranges are fetched into a sparse cache file on demand.

    Parameters
    ----------
    fd, size, where
        As ``RangedObject``: the open sparse file, the object's size, its URL.
    fetch : callable
        ``fetch(start, end)`` -> the object's bytes in ``[start, end)`` (a ranged GET).
    piece : int
        The largest range fetched by one GET.
    workers : int
        GETs in flight at once.
    account : callable
        ``account(nbytes)``: tells the cache it holds more.
    disk_full : callable
        ``disk_full(oserror)``: the error to raise when the cache's disk is full.
    whole : bool
        The file is the whole object, already cached: reads come from it.
    """

    def __init__(self, fd: int, size: int, where: str, *, fetch: Callable[[int, int], Any], piece: int,
                 workers: int, account: Callable[[int], None], disk_full: Callable[[OSError], Exception],
                 whole: bool = False) -> None:
        super().__init__(fd, size, where)
        self._fetch, self._piece, self._workers, self._account = fetch, piece, workers, account
        self._disk_full, self._whole = disk_full, whole
        self.fetched = 0  # bytes this object fetched from S3 (what the reader asked for, no more)

    def ensure(self, start: int, length: int, *, again: bool = False) -> None:
        end = min(self.size, start + length)
        if start >= end or (not again and present(self.fd, start, end - start)):
            return
        try:
            fetch_into(self.fd, start, end, self._fetch, self._piece, self._workers)
        except OSError as e:
            if no_space(e):
                raise self._disk_full(e) from None
            raise
        self.fetched += end - start
        self._account(end - start)

    def read(self, start: int, length: int) -> bytes:
        end = min(self.size, start + length)
        if start >= end:
            return b""
        if self._whole:
            data = os.pread(self.fd, end - start, start)
            if len(data) == end - start:
                return data
        return bytes(self._fetch(start, end))


def fetch_into(fd: int, start: int, end: int, fetch: Callable[[int, int], Any], piece: int, workers: int) -> None:
    """Write the object's bytes ``[start, end)`` at the same offsets of ``fd``, with ranged GETs
    (``fetch(start, end)``) of at most ``piece`` bytes, ``workers`` in flight (memory: that many pieces)."""
    def get(s: int) -> None:
        data = memoryview(fetch(s, min(end, s + piece)))
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], s + done)

    starts = range(start, end, piece)
    if len(starts) == 1:
        get(starts[0])
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(workers, len(starts)), thread_name_prefix="hw-s3-get") as pool:
        for f in [pool.submit(get, s) for s in starts]:
            f.result()


def open_partial(path: str, size: int) -> int:
    """The sparse cache file ``path`` (created at ``size`` bytes if new), open for reading
    and writing. Raises ``OSError`` (e.g. no space) as the file system does."""
    os.makedirs(path.rpartition("/")[0], exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        if os.fstat(fd).st_size != size:
            os.ftruncate(fd, size)  # two processes creating it both set the same size
    except BaseException:
        os.close(fd)
        raise
    return fd
