"""Content keys (storage layer, internal): the blake3 key of a blob's logical bytes.

A blob's logical content is a sequence of parts: the pickle stream, then each
out-of-band buffer. Each part enters the key as ``u64le(length)`` followed by
its bytes, except a *tree part*, one of at least ``TREE_MIN`` bytes, which
enters as ``u64le(length | TREE_BIT)`` followed by the blake3 digests of its
``CHUNK``-byte chunks (the last one shorter). The key is still a pure function
of the logical bytes (the same value always gets the same key, whatever its
compression or layout), and the chunk digests, kept in the blob's header, are
bound to it: a reader that checks the digests against the key can then verify
any chunk on its own, so a slice of a 10 GiB array is verified by reading only
the chunks it touches. The top bit keeps the two forms apart (no length reaches
2**63).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import blake3

#: Chunk size of a tree part: the unit of partial reads and of their verification.
CHUNK = 4 << 20
#: Parts of at least this many bytes are keyed by their chunk digests.
TREE_MIN = 64 << 20
#: Set in a tree part's length word.
TREE_BIT = 1 << 63
DIGEST = 32
#: Multithreaded hashing only pays above this (thread hand-off costs ~tens of µs).
_MT_HASH = 1 << 20
_U64 = struct.Struct("<Q")
_AUTO = blake3.blake3.AUTO


def is_tree(length: int) -> bool:
    """Whether a part of ``length`` bytes is keyed by its chunk digests."""
    return length >= TREE_MIN


def chunk_count(length: int) -> int:
    """How many chunks a tree part of ``length`` bytes has."""
    return -(-length // CHUNK)


def hasher(size: int) -> Any:
    """A blake3 hasher for ``size`` bytes (multithreaded when that pays)."""
    return blake3.blake3(max_threads=_AUTO) if size >= _MT_HASH else blake3.blake3()


def chunk_digest(data: Any) -> bytes:
    """The digest of one chunk."""
    return bytes(blake3.blake3(data, max_threads=_AUTO).digest())


def key_of_digests(parts: Iterable[tuple[int, Any, bool]]) -> str:
    """The key of a blob given, per part, ``(length, bytes, False)`` for a plain part or
    ``(length, digests, True)`` for a tree part (what a partial reader has in hand)."""
    h = blake3.blake3()
    for length, data, tree in parts:
        h.update(_U64.pack(length | TREE_BIT if tree else length))
        h.update(data)
    return str(h.hexdigest())


class KeyHasher:
    """Hashes a blob's parts, in order, into its content key.

    Call ``part(length)`` before each part's bytes, feed them with ``update`` (any
    number of pieces), and read ``hexdigest()`` at the end. ``digests[i]`` holds the
    concatenated chunk digests of part ``i`` when it is a tree part.

    A writer lets the length decide (``is_tree``); a reader passes ``tree=`` as the
    blob's header says, because blobs written before chunk keys existed (format 1)
    hash every part plainly, whatever its length.
    """

    def __init__(self, total: int) -> None:
        self._h = hasher(total)
        self.digests: dict[int, bytes] = {}
        self._index = -1
        self._tree: list[bytes] | None = None
        self._chunk: Any = None  # hasher of the current partial chunk
        self._chunk_len = 0

    def part(self, length: int, *, tree: bool | None = None) -> None:
        """Start the next part, of ``length`` bytes (a tree part if ``tree``; default: by its length)."""
        self._end_part()
        self._index += 1
        if is_tree(length) if tree is None else tree:
            self._h.update(_U64.pack(length | TREE_BIT))
            self._tree = []
            self._chunk, self._chunk_len = None, 0
        else:
            self._h.update(_U64.pack(length))
            self._tree = None

    def update(self, data: Any) -> None:
        """The next bytes of the current part."""
        if self._tree is None:
            self._h.update(data)
            return
        view = memoryview(data).cast("B")
        n = view.nbytes
        pos = 0
        if self._chunk is not None:  # finish a chunk begun by an earlier piece
            take = min(CHUNK - self._chunk_len, n)
            self._chunk.update(view[:take])
            self._chunk_len += take
            pos = take
            if self._chunk_len == CHUNK:
                self._tree.append(bytes(self._chunk.digest()))
                self._chunk, self._chunk_len = None, 0
        whole = (n - pos) // CHUNK
        if whole:
            self._tree.extend(_digests(view[pos : pos + whole * CHUNK]))
            pos += whole * CHUNK
        if pos < n:
            self._chunk = blake3.blake3()
            self._chunk.update(view[pos:])
            self._chunk_len = n - pos

    def _end_part(self) -> None:
        if self._tree is None:
            return
        if self._chunk is not None:
            self._tree.append(bytes(self._chunk.digest()))
            self._chunk, self._chunk_len = None, 0
        joined = b"".join(self._tree)
        self.digests[self._index] = joined
        self._h.update(joined)
        self._tree = None

    def hexdigest(self) -> str:
        """The key of everything hashed (ends the last part)."""
        self._end_part()
        return str(self._h.hexdigest())


def _digests(view: memoryview) -> list[bytes]:
    """Digests of the whole chunks of ``view``, hashed on all cores (blake3 releases the GIL)."""
    count = view.nbytes // CHUNK
    if count == 1:
        return [chunk_digest(view)]
    from .codec import _CPUS, _ordered_map  # the one thread pool helper of the store

    def one(i: int) -> bytes:
        return bytes(blake3.blake3(view[i * CHUNK : (i + 1) * CHUNK]).digest())

    return list(_ordered_map(one, range(count), min(_CPUS, count)))
