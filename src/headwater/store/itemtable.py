"""Foreach item tables (storage layer, internal): a split's items, each readable alone.

A foreach child needs one item of its parent's list. Loading the whole list in
every child reads and hashes O(n) bytes per child, O(n²) over the fan-out. The
split task therefore also stores an item table: every item's pickle on its own,
behind an offset table, so item ``i`` costs three small reads and the hash of
that item only.

An item's large buffers (numpy arrays, bytearrays: pickle 5 out-of-band) are
never written twice: the table holds only the item's in-band pickle plus where
its buffers lie in the list artifact's blob, which the child maps (copy-on-write,
zero copy) and verifies against the item's own content key. A table pays only
for small items: a split with an item whose in-band pickle exceeds
``MAX_INBAND_ITEM`` stores none, and its children take their item from the list.

Layout (little-endian): ``MAGIC``, the item count (u64), then one entry per item
(offset u64, length u64, blake3 digest of the item's record, 32 bytes), then the
item records. A record is ``b"P"`` + the item's pickle, or ``b"B"`` + u32 length
+ a JSON header ``{"blob", "key", "parts"}`` + the in-band pickle, where
``parts`` are the list blob's ``HWB1`` part entries of the item's buffers and
``key`` is the item's content key (``codec.encode``). The table's key is the
blake3 of its head and entries, which hold every record's digest. A damaged
table or buffer is reported as corrupt, never returned as data, and moved out of
``blobs/`` (``ObjectStore.quarantine``) so that re-running the split writes it again.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import blake3

from ..exceptions import DataCorruptionError
from .codec import _MMAP_MIN, RAW, ZSTD, _decompress, _key, _map_blob, _read_header, encode, legacy_key
from .content import ContentStore, blob_key
from .keyhash import is_tree
from .objects import FileId, file_id

MAGIC = b"HWITEMS2"
#: Largest in-band pickle of one item (bytes) for which a table is built; an item
#: above it would be a second copy of bytes the list blob already holds.
MAX_INBAND_ITEM = 1 << 20
#: Tables whose item records total at most this are built in memory and written
#: with one put(); larger ones are streamed, pickling each item a second time.
_IN_MEMORY = 8 << 20
_COUNT = struct.Struct("<Q")
_ENTRY = struct.Struct("<QQ32s")
_HEAD = len(MAGIC) + _COUNT.size
_META_LEN = struct.Struct("<I")
_READ_CHUNK = 1 << 20
_PLAIN, _BUFFERED = b"P", b"B"
_LIST = "The foreach list blob"


class _NoTable(Exception):
    """The items do not fit a table (raised and caught inside this module)."""


class _ListParts:
    """The buffer parts of the list artifact's blob, handed out to items in pickling order."""

    def __init__(self, content: ContentStore, list_key: str | None):
        self._content, self._key = content, list_key
        self._parts: list[list[Any]] | None = None
        self._next = 1  # part 0 is the list's pickle stream

    @property
    def key(self) -> str | None:
        return self._key

    def take(self, lengths: list[int]) -> list[list[Any]]:
        if self._key is None:
            raise _NoTable
        if self._parts is None:
            path = self._content.objects.local_path(blob_key(self._key))
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                self._parts = _read_header(fd, path, self._key)[0]
            finally:
                os.close(fd)
        got = self._parts[self._next : self._next + len(lengths)]
        # An object shared by two items is pickled once in the list: its buffers no longer line up.
        if [p[2] for p in got] != lengths:
            raise _NoTable
        self._next += len(lengths)
        return got

    def all_taken(self) -> bool:
        return self._parts is None or self._next == len(self._parts)


def _record(item: Any, parts: _ListParts) -> bytes:
    enc = encode(item)
    if len(enc.pickled) > MAX_INBAND_ITEM:
        raise _NoTable
    if not enc.buffers:
        return _PLAIN + enc.pickled
    meta = json.dumps({"blob": parts.key, "key": enc.key, "parts": parts.take([b.nbytes for b in enc.buffers])},
                      separators=(",", ":")).encode()
    return _BUFFERED + _META_LEN.pack(len(meta)) + meta + enc.pickled


def save_item_table(content: ContentStore, items: Iterable[Any], *, list_key: str | None = None) -> dict[str, Any] | None:
    """Store ``items`` (in iteration order) as an item table and return its ref ``{"key", "size", "count"}``.

    Parameters
    ----------
    content : ContentStore
        The store the table is written to.
    items : Iterable
        The foreach items; iterated twice when the table is streamed.
    list_key : str, optional
        Content key of the blob that holds ``items`` (a list or tuple) as one
        artifact; items with out-of-band buffers point into it. Without it such
        items get no table.

    Returns
    -------
    dict or None
        None when a table would not pay or cannot be built (an item too large in
        band, an item picklable only as part of the list, buffers that do not line
        up with the list blob's); the children then take their item from the list.
    """
    # Only a list or tuple pickles exactly its items' buffers, in order; in a dict or a Series
    # they are interleaved with others, so there an item with buffers gets no table.
    parts = _ListParts(content, list_key if isinstance(items, (list, tuple)) else None)
    entries = bytearray()
    kept: list[bytes] | None = []
    buffered: dict[int, bytes] = {}  # small (in-band pickle and part list): kept for a second pass
    total = 0
    body = blake3.blake3()  # over every record: checks an existing table without keeping them
    try:
        for j, item in enumerate(items):
            data = _record(item, parts)
            body.update(data)
            entries += _ENTRY.pack(0, len(data), blake3.blake3(data).digest())
            total += len(data)
            if data[:1] == _BUFFERED:
                buffered[j] = data
            if kept is not None:
                kept.append(data)
                if total > _IN_MEMORY:
                    kept = None  # stream instead: never every item's pickle in memory at once
        if not parts.all_taken():
            raise _NoTable
    except Exception:  # an item too large or picklable only inside the list: children load the list
        return None
    n = len(entries) // _ENTRY.size
    head = MAGIC + _COUNT.pack(n)
    offset = _HEAD + len(entries)
    for j in range(n):  # fill in the offsets now that every length is known
        _, length, digest = _ENTRY.unpack_from(entries, j * _ENTRY.size)
        _ENTRY.pack_into(entries, j * _ENTRY.size, offset, length, digest)
        offset += length
    key = blake3.blake3(head + entries).hexdigest()
    bkey = blob_key(key)
    ref = {"key": key, "size": offset, "count": n}
    objects = content.objects
    content.pin((key,))  # before the exists() check (store.pins)
    if objects.exists(bkey):
        if _verifies(content, bkey, head + entries, body.digest(), offset):
            return ref  # dedup hit
        objects.quarantine(bkey)  # damaged: re-running the split repairs it
    if kept is not None:
        objects.put(bkey, [head, bytes(entries), *kept])
        return ref
    try:
        with objects.open_writer(bkey) as f:
            f.write(head)
            f.write(entries)
            written = 0
            for j, item in enumerate(items):
                written += 1
                if written > n:
                    raise _NoTable  # the second iteration yields more items than the first
                data = buffered[j] if j in buffered else _record(item, _ListParts(content, None))
                _, length, digest = _ENTRY.unpack_from(entries, j * _ENTRY.size)
                if len(data) != length or blake3.blake3(data).digest() != digest:
                    raise _NoTable  # pickled differently the second time: publish nothing
                f.write(data)
            if written != n:
                raise _NoTable
    except _NoTable:
        return None
    return ref


def _verifies(content: ContentStore, bkey: str, index: bytes, body: bytes, size: int) -> bool:
    """Whether the stored table ``bkey`` is exactly ``index`` (head and entries) then records hashing to ``body``."""
    try:
        path = content.objects.local_path(bkey)
    except KeyError:
        return False
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size != size or f.read(len(index)) != index:
            return False
        h = blake3.blake3()
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
    return h.digest() == body


def load_item(content: ContentStore, ref: dict[str, Any], i: int) -> Any:
    """Item ``i`` of the item table ``ref`` names, reading and verifying that item only.

    Raises ``DataMissingError`` if the table (or the list blob it points into) is
    gone and ``DataCorruptionError`` if it is damaged; a damaged blob is
    quarantined first, so re-running the foreach step stores it again.
    """
    key = ref["key"]
    bkey = blob_key(key)
    try:
        path = content.objects.local_path(bkey)
    except KeyError:
        raise content._missing(key) from None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    fid = file_id(os.fstat(fd))  # quarantine moves only this file, never a good copy stored since
    try:
        head = os.pread(fd, _HEAD, 0)
        if len(head) < _HEAD or head[: len(MAGIC)] != MAGIC:
            raise _quarantined(content, bkey, fid, _corrupt(key, path, "it is not a foreach item table (bad magic)"))
        (n,) = _COUNT.unpack_from(head, len(MAGIC))
        if not 0 <= i < n:
            raise _corrupt(key, path, f"it holds {n} items, not item {i}")
        entry = os.pread(fd, _ENTRY.size, _HEAD + i * _ENTRY.size)
        if len(entry) < _ENTRY.size:
            raise _quarantined(content, bkey, fid, _corrupt(key, path, "the file is truncated"))
        offset, length, digest = _ENTRY.unpack(entry)
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length or blake3.blake3(data).digest() != digest or data[:1] not in (_PLAIN, _BUFFERED):
        raise _quarantined(content, bkey, fid, _corrupt(key, path, f"item {i} does not match its digest"))
    if data[:1] == _PLAIN:
        return pickle.loads(memoryview(data)[1:])
    (mlen,) = _META_LEN.unpack_from(data, 1)
    start = 1 + _META_LEN.size
    meta = json.loads(data[start : start + mlen])
    pickled = memoryview(data)[start + mlen :]
    buffers = _load_buffers(content, meta["blob"], meta["parts"], meta["key"], pickled, i)
    return pickle.loads(pickled, buffers=buffers)


def _load_buffers(content: ContentStore, list_key: str, parts: list[list[Any]], item_key: str,
                  pickled: memoryview, i: int) -> list[Any]:
    """Item ``i``'s buffers from the list blob: raw parts mapped copy-on-write, compressed ones
    decoded; verified together with ``pickled`` against the item's content key."""
    bkey = blob_key(list_key)
    try:
        path = content.objects.local_path(bkey)
    except KeyError:
        raise content._missing(list_key) from None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    fid = file_id(os.fstat(fd))
    try:
        fsize = os.fstat(fd).st_size
        if any(p[0] + p[1] > fsize for p in parts):
            raise _quarantined(content, bkey, fid, _corrupt(list_key, path, "the file is truncated", what=_LIST))
        raw = sum(p[2] for p in parts if p[3] == RAW)
        mm = memoryview(_map_blob(fd, fsize)) if raw >= _MMAP_MIN else None
        buffers: list[Any] = []
        for p in parts:
            if p[3] == ZSTD:
                buffers.append(_decompress(fd, p, list_key, path))
            elif p[3] == RAW and mm is not None:
                buffers.append(mm[p[0] : p[0] + p[2]])
            elif p[3] == RAW:  # small: a private copy costs less than a mapping
                buf = bytearray(p[2])
                os.preadv(fd, [buf], p[0])
                buffers.append(buf)
            else:
                raise _corrupt(list_key, path, f"unknown codec {p[3]!r}", what=_LIST)
    finally:
        os.close(fd)
    size = len(pickled) + sum(memoryview(b).nbytes for b in buffers)
    if _key(pickled, buffers, size) != item_key and (
            # Tables written before chunk keys named a large item by its plain key.
            not any(is_tree(memoryview(b).nbytes) for b in (pickled, *buffers)) or legacy_key(pickled, buffers, size) != item_key):
        raise _quarantined(content, bkey, fid, _corrupt(list_key, path, f"the buffers of item {i} do not match their key",
                                                     what=_LIST))
    return buffers


def verify_table(read: Callable[[int, int], Any], chunks: Callable[[int, int], Iterator[Any]],
                 key: str, where: str) -> int:
    """Check a stored item table against its key without loading it; returns the bytes hashed.

    The key covers the head and the entries, and each entry holds its record's digest:
    the entries are hashed as a stream, then the records, read in the order they were
    written (back to back after the entries), are checked one by one. ``read(offset, n)``
    may return fewer bytes at the end; ``chunks(offset, n)`` yields exactly ``n`` bytes in
    pieces. Raises ``DataCorruptionError`` naming ``where`` when the table is damaged.
    """
    head = bytes(read(0, _HEAD))
    if len(head) < _HEAD or head[: len(MAGIC)] != MAGIC:
        raise _corrupt(key, where, "it is not a foreach item table (bad magic)")
    (n,) = _COUNT.unpack_from(head, len(MAGIC))
    h = blake3.blake3(head)
    pending = b""
    expected = _HEAD + n * _ENTRY.size
    records: list[tuple[int, bytes]] = []  # (length, digest) of the items not checked yet
    batch = 0
    total = expected

    def check_records(items: list[tuple[int, bytes]], at: int) -> int:
        if not items:
            return at
        length = sum(i[0] for i in items)
        data = memoryview(b"".join(bytes(c) for c in chunks(at, length)))
        pos = 0
        for size, digest in items:
            if blake3.blake3(data[pos : pos + size]).digest() != digest or data[pos : pos + 1] not in (_PLAIN, _BUFFERED):
                raise _corrupt(key, where, "an item does not match its digest")
            pos += size
        return at + length

    at = expected
    for piece in chunks(_HEAD, n * _ENTRY.size):
        h.update(piece)
        buf = pending + bytes(piece)
        whole = len(buf) - len(buf) % _ENTRY.size
        pending = buf[whole:]
        for j in range(0, whole, _ENTRY.size):
            offset, length, digest = _ENTRY.unpack_from(buf, j)
            # Items are written back to back, none larger than MAX_INBAND_ITEM plus its header.
            if offset != expected or length > 2 * MAX_INBAND_ITEM:
                raise _corrupt(key, where, "its entries do not match its items")
            expected += length
            total += length
            records.append((length, digest))
            batch += length
            if batch >= _READ_CHUNK * 8:
                at = check_records(records, at)
                records, batch = [], 0
    if h.hexdigest() != key:
        raise _corrupt(key, where, "its content does not match its key")
    check_records(records, at)
    return total


def _quarantined(content: ContentStore, bkey: str, fid: FileId, error: DataCorruptionError) -> DataCorruptionError:
    """Move the damaged blob (the file ``fid``, not a good copy stored since) out of ``blobs/``, so a
    re-run writes it again."""
    content.objects.quarantine(bkey, only=fid)
    error.hint = (f"{error.hint} The damaged blob has been moved to the store's quarantine/ directory, "
                  "so the re-run writes it again.")
    return error


def _corrupt(key: str, path: str, why: str, *, what: str = "Foreach item table") -> DataCorruptionError:
    return DataCorruptionError(
        f"{what} {key} ({path}) is corrupt: {why}.",
        hint="Re-run the foreach step that produced it (run the flow again, or resume from that step).",
    )
