"""Objects read by byte range (storage layer, internal): what a partial read of a large
blob stands on.

A ``RangedObject`` is a stored object seen through a local file descriptor whose byte
ranges hold the object's bytes once ``ensure`` made them present. For a local store the
file is the object itself and every range is present; a remote store (S3) fetches the
ranges asked for into a sparse file in its read cache, so reading 1% of a 10 GiB blob
transfers and stores about 1% of it. Nothing here verifies: the reader checks what it
reads against the blob's chunk digests and, on a mismatch, asks for the range again with
``again=True`` (a damaged cached copy is fetched anew; a local file has no other copy).
"""

from __future__ import annotations

import os
import weakref
from typing import Any


class RangedObject:
    """A local file holding a stored object's bytes where ``ensure`` made them present.

    Parameters
    ----------
    fd : int
        An open descriptor of the local file (owned: ``close`` closes it).
    size : int
        The object's size in bytes (the file's size).
    where : str
        The object's name in messages (its path or URL).
    """

    def __init__(self, fd: int, size: int, where: str) -> None:
        self.fd, self.size, self.where = fd, size, where
        # A view dropped without close() (``headwater.view(self, "x")[:10]``) must not leak it.
        self._closer = weakref.finalize(self, os.close, fd)

    @classmethod
    def of_file(cls, path: str) -> RangedObject:
        """The whole local file ``path`` (``FileNotFoundError`` if it is not there)."""
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        return cls(fd, os.fstat(fd).st_size, path)

    def ensure(self, start: int, length: int, *, again: bool = False) -> None:
        """Make bytes ``[start, start + length)`` present in the file (here: always are)."""

    def read(self, start: int, length: int) -> bytes:
        """Up to ``length`` bytes of the object from ``start`` (fewer at its end), as bytes."""
        return os.pread(self.fd, length, start)

    def identity(self) -> Any:
        """The identity of the local file when it is the stored object itself (for quarantine), else None."""
        return None

    def close(self) -> None:
        """Release the file."""
        if self.fd >= 0:
            self._closer()
            self.fd = -1

    def __enter__(self) -> RangedObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreFile(RangedObject):
    """The object is this local file itself (a local store's blob): its identity is what
    a quarantine must move."""

    def identity(self) -> Any:
        from .objects import file_id

        return file_id(os.fstat(self.fd))


def present(fd: int, start: int, length: int) -> bool:
    """Whether ``[start, start + length)`` of a sparse file holds written data (no hole in it).

    A file system without hole reporting says every range is present; readers verify what
    they read, so that costs only a second fetch of a range that was never written.
    """
    if length <= 0:
        return True
    try:
        if os.lseek(fd, start, os.SEEK_DATA) != start:
            return False
        return os.lseek(fd, start, os.SEEK_HOLE) >= start + length
    except OSError:  # ENXIO: no data at or after start
        return False
