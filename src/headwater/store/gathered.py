"""Gathered out-of-band buffers (storage layer, internal): one logical buffer a codec
hands over as pieces, stored back to back as one blob part without being joined.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class Gathered:
    """One logical out-of-band buffer made of pieces that are written back to back.

    A codec whose format interleaves small headers with large data it does not own
    (an Arrow IPC stream: message headers, then each column's buffers) hands the
    pieces over instead of joining them: the large ones stay the value's own
    memory, so saving copies nothing, and the stored part is contiguous, so it
    loads as one mapped buffer. Its logical bytes (for the key) are the pieces'
    concatenation.
    """

    __slots__ = ("pieces", "nbytes")

    def __init__(self, pieces: Sequence[Any]):
        self.pieces = [memoryview(p).cast("B") for p in pieces]
        self.nbytes = sum(p.nbytes for p in self.pieces)

    def window(self, start: int, n: int) -> bytes:
        """``n`` logical bytes from ``start`` (a copy: for sampling)."""
        out = bytearray()
        pos = 0
        for p in self.pieces:
            end = pos + p.nbytes
            if end > start and pos < start + n:
                out += p[max(0, start - pos) : min(p.nbytes, start + n - pos)]
            pos = end
        return bytes(out)

    def join(self) -> memoryview:
        """The logical bytes in one new buffer (a copy)."""
        buf = bytearray(self.nbytes)
        pos = 0
        for p in self.pieces:
            buf[pos : pos + p.nbytes] = p
            pos += p.nbytes
        return memoryview(buf)


_gathering = threading.local()


@contextmanager
def gathering(pending: dict[int, tuple[bytearray, Gathered]]) -> Iterator[None]:
    """While ``codec.encode`` pickles: ``gather`` registers its pieces in ``pending``,
    keyed by the token its ``PickleBuffer`` wraps, for the buffer callback to take."""
    _gathering.pending = pending
    try:
        yield
    finally:
        _gathering.pending = None


def gather(pieces: Sequence[Any]) -> pickle.PickleBuffer:
    """A ``PickleBuffer`` a codec puts in its state for the concatenation of ``pieces``.

    While ``encode`` pickles, the pieces travel as one out-of-band buffer without
    being joined (see ``Gathered``); anywhere else (an in-band pickle) they are
    joined into one buffer. Either way ``decode`` receives one contiguous buffer.
    """
    pending = getattr(_gathering, "pending", None)
    if pending is None:
        return pickle.PickleBuffer(Gathered(pieces).join())
    token = bytearray(1)  # stands for the pieces in the pickle stream until encode's callback
    pending[id(token)] = (token, Gathered(pieces))
    return pickle.PickleBuffer(token)
