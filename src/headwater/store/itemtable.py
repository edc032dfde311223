"""Foreach item tables (storage layer): a split's items in one blob, each readable alone.

A foreach child needs one item of its parent's list. Loading the whole list in
every child reads and hashes O(n) bytes per child, O(n²) over the fan-out. The
split task therefore also stores an item table: every item pickled on its own,
behind an offset table, so item ``i`` costs three small reads and the hash of
that item only.

Layout (little-endian): ``MAGIC``, the item count (u64), then one entry per item
(offset u64, length u64, blake3 digest of the item's bytes, 32 bytes), then the
items' pickles. The file is a blob like any other: written once under
``blobs/<2 hex>/<blake3 of the whole file>``. A reader checks the one item it
takes against its digest, so a damaged item or entry is reported as corrupt,
never returned as data.
"""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Iterable
from typing import Any

import blake3

from ..exceptions import DataCorruptionError, DataMissingError
from .codec_plugins import dumps
from .content import blob_key
from .objects import ObjectStore

MAGIC = b"HWITEMS1"
_COUNT = struct.Struct("<Q")
_ENTRY = struct.Struct("<QQ32s")
_HEAD = len(MAGIC) + _COUNT.size


def save_item_table(objects: ObjectStore, items: Iterable[Any]) -> dict[str, Any] | None:
    """Store ``items`` (in iteration order) as an item table; its ref, or None if an item cannot be pickled alone.

    The ref is ``{"key", "size", "count"}``; ``size`` is the file's size in bytes.
    """
    pickles: list[bytes] = []
    try:
        for item in items:
            pickles.append(dumps(item))
    except Exception:  # picklable only as part of the whole list: children load the list instead
        return None
    n = len(pickles)
    offset = _HEAD + n * _ENTRY.size
    table = bytearray(MAGIC + _COUNT.pack(n))
    for data in pickles:
        table += _ENTRY.pack(offset, len(data), blake3.blake3(data).digest())
        offset += len(data)
    h = blake3.blake3(table)
    for data in pickles:
        h.update(data)
    key = h.hexdigest()
    bkey = blob_key(key)
    if not objects.exists(bkey):
        objects.put(bkey, [bytes(table), *pickles])
    return {"key": key, "size": offset, "count": n}


def load_item(objects: ObjectStore, ref: dict[str, Any], i: int) -> Any:
    """Item ``i`` of the item table ``ref`` names, reading and verifying that item only."""
    key = ref["key"]
    try:
        path = objects.local_path(blob_key(key))
    except KeyError:
        raise DataMissingError(
            f"The foreach item table {key} is missing from the store {objects.url}.",
            hint="The blob was deleted (garbage collection or a partial copy of the store); "
            "re-run the foreach step that produced it.",
        ) from None
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        head = os.pread(fd, _HEAD, 0)
        if len(head) < _HEAD or head[: len(MAGIC)] != MAGIC:
            raise _corrupt(key, path, "it is not a foreach item table (bad magic)")
        (n,) = _COUNT.unpack_from(head, len(MAGIC))
        if not 0 <= i < n:
            raise _corrupt(key, path, f"it holds {n} items, not item {i}")
        entry = os.pread(fd, _ENTRY.size, _HEAD + i * _ENTRY.size)
        if len(entry) < _ENTRY.size:
            raise _corrupt(key, path, "the file is truncated")
        offset, length, digest = _ENTRY.unpack(entry)
        data = os.pread(fd, length, offset)
    finally:
        os.close(fd)
    if len(data) != length or blake3.blake3(data).digest() != digest:
        raise _corrupt(key, path, f"item {i} does not match its digest")
    return pickle.loads(data)


def _corrupt(key: str, path: str, why: str) -> DataCorruptionError:
    return DataCorruptionError(
        f"Foreach item table {key} ({path}) is corrupt: {why}.",
        hint="Re-run the foreach step that produced it; if the blob file itself is damaged, "
        "delete it so that the next run writes it again.",
    )
