"""Checking a stored blob against its key without loading it (storage layer, internal).

What ``codec.read_blob`` verifies on every load, done as a stream for ``headwater
verify``: parse the part table, hash the logical bytes (raw parts straight from the
file's mapping or from ranged reads, compressed parts decoded frame by frame into a
bounded buffer, their raw frames hashed as stored) and compare with the key. Nothing is unpickled, and no blob is ever
held in memory whole. Foreach item tables (``itemtable``) are checked by their own rules.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import Any

from .codec import (_ZSTD_DAMAGE, FRAME, RAW, ZSTD, BlobCorruptionError, Frame, _corrupt, _ordered_map, _unsupported,
                    _zstd, check_digests, decode_frame_into, frame_table, parse_blob_header)
from .codec import MAGIC as BLOB_MAGIC
from .itemtable import MAGIC as TABLE_MAGIC
from .itemtable import verify_table
from .keyhash import KeyHasher
from .objects import FileId, LocalObjectStore, ObjectStore, file_id

#: Raw bytes are hashed (and, remotely, fetched) in pieces of this size.
CHUNK = 8 << 20
#: Blobs below this are read whole instead of mapped (a mapping costs more than the copy).
_MAP_MIN = 1 << 20
#: Ranged reads of one remote blob in flight at once (memory: this many + 1 chunks).
_READ_AHEAD = 2
#: Frames up to this many logical bytes are decoded whole, several at once; larger ones
#: (no writer makes them, but a header may claim one) stream through a bounded buffer.
_WHOLE_FRAME = 4 * FRAME


class Truncated(Exception):
    """A read came back short: the object ends before its header says it does."""


class BlobSource:
    """The bytes of one stored object, read by range. ``where`` names it in messages."""

    where: str
    #: The object's size, when known without reading it.
    size: int | None = None
    #: The identity of the local file read (so only that file is quarantined), if any.
    file: FileId | None = None

    def read(self, off: int, n: int) -> Any:
        """Up to ``n`` bytes from ``off`` (fewer at the end of the object)."""
        raise NotImplementedError

    def read_exact(self, off: int, n: int) -> Any:
        data = self.read(off, n)
        if len(data) != n:
            raise Truncated
        return data

    def chunks(self, off: int, n: int) -> Iterator[Any]:
        """The ``n`` bytes from ``off`` in pieces of at most ``CHUNK``; ``Truncated`` if short."""
        for start in range(off, off + n, CHUNK):
            yield self.read_exact(start, min(CHUNK, off + n - start))

    def close(self) -> None:
        """Release what the source holds open."""


class FileSource(BlobSource):
    """A local file: mapped (page cache, no copy) when large, read whole when small."""

    def __init__(self, path: str):
        self.where = path
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            self.size, self.file = st.st_size, file_id(st)
            self._map: Any = None
            if self.size >= _MAP_MIN:
                m = mmap.mmap(fd, self.size, access=mmap.ACCESS_READ)
                if hasattr(m, "madvise"):
                    m.madvise(mmap.MADV_SEQUENTIAL)
                self._map = m
                self._view = memoryview(m)
            else:
                self._view = memoryview(os.pread(fd, self.size, 0))
        finally:
            os.close(fd)

    def read(self, off: int, n: int) -> Any:
        return self._view[off : off + n]

    def chunks(self, off: int, n: int) -> Iterator[Any]:
        # One slice: blake3 hashes a large buffer on all cores, faulting the pages in as it goes.
        yield self.read_exact(off, n)

    def close(self) -> None:
        self._view.release()
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # a slice lives on in an exception's traceback: unmapped when collected
                pass


class RangeSource(BlobSource):
    """An object of a remote store, fetched by ranged reads (a few in flight)."""

    def __init__(self, objects: ObjectStore, key: str):
        self.where = f"{objects.url}/{key}"
        self._objects, self._key = objects, key

    def read(self, off: int, n: int) -> Any:
        return self._objects.get_range(self._key, off, n)

    def chunks(self, off: int, n: int) -> Iterator[Any]:
        starts = range(off, off + n, CHUNK)
        fetch = lambda start: self.read_exact(start, min(CHUNK, off + n - start))  # noqa: E731
        yield from _ordered_map(fetch, starts, min(_READ_AHEAD, len(starts)))


def open_source(objects: ObjectStore, key: str) -> BlobSource:
    """The object ``key`` of ``objects`` to check; ``KeyError`` if it does not exist.

    A local store's file is read in place; a store with real ranged reads (S3) is read
    by range from the store itself, never from a local cache, which could hide damage;
    any other store's object is fetched through ``local_path``.
    """
    if isinstance(objects, LocalObjectStore):
        try:
            return FileSource(objects.path(key))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyError(key) from None
    if type(objects).get_range is not ObjectStore.get_range:
        source = RangeSource(objects, key)
        source.read(0, 0)  # KeyError now if it is missing
        return source
    source = FileSource(objects.local_path(key))
    source.file = None  # a local copy: quarantine names the object itself, not this file
    return source


def verify_source(source: BlobSource, key: str, *, workers: int = 4) -> int:
    """Check one stored blob (an ``HWB1`` blob or an item table) against its content key.

    Returns the logical bytes hashed. Raises ``BlobCorruptionError`` (or another
    ``DataCorruptionError``) when the blob is damaged, ``UnsupportedBlobError`` when this
    version cannot decode it.
    """
    try:
        magic = source.read(0, len(TABLE_MAGIC))
        if bytes(magic) == TABLE_MAGIC:
            return verify_table(source.read, source.chunks, key, source.where)
        if bytes(magic[: len(BLOB_MAGIC)]) != BLOB_MAGIC and len(magic) >= len(BLOB_MAGIC):
            raise _corrupt(key, source.where, "it is not a headwater blob (bad magic)")
        return _verify_blob(source, key, workers)
    except Truncated:
        raise _corrupt(key, source.where, "the file is truncated") from None


def _verify_blob(source: BlobSource, key: str, workers: int) -> int:
    header = parse_blob_header(source.read, source.size, key, source.where)
    parts = header.parts
    total = 0
    for p in parts:
        total += p[2]
    h = KeyHasher(total)
    for index, part in enumerate(parts):
        off, stored, n, codec = part[0], part[1], part[2], part[3]
        h.part(n, tree=index in header.trees)
        if codec == RAW:
            if stored != n:
                raise _corrupt(key, source.where, "a raw part's sizes disagree")
            _hash_raw(h, source, off, n)
        elif codec == ZSTD:
            _hash_zstd(h, source, part, key, workers)
        else:
            raise _unsupported(key, source.where, f"unknown codec {codec!r}")
    if h.hexdigest() != key:
        raise _corrupt(key, source.where)
    check_digests(header.trees, h.digests, key, source.where)
    return total


def _hash_raw(h: Any, source: BlobSource, off: int, n: int) -> None:
    """Hash ``n`` stored bytes from ``off`` (no slice of a mapping outlives the call)."""
    for piece in source.chunks(off, n):
        h.update(piece)


def _hash_zstd(h: Any, source: BlobSource, part: list[Any], key: str, workers: int) -> None:
    """Hash the logical bytes of a zstd part, frame by frame, as ``codec._decompress`` decodes
    them (raw frames, format version 2, are hashed as they are stored)."""
    table = frame_table(part, key, source.where)
    zstandard = _zstd()

    # A raw frame of a local file is a slice of its mapping: hashed in place by this thread
    # (no slice may outlive the source's mapping); a remote one is fetched ahead in the pool.
    in_place = isinstance(source, FileSource)

    def decode_whole(f: Frame) -> Any:
        if f.raw:
            return None if in_place else source.read_exact(f.offset, f.stored)
        out = bytearray(f.length)
        decode_frame_into(zstandard, source.read_exact(f.offset, f.stored), memoryview(out), key, source.where)
        return out

    try:
        if all(f.length <= _WHOLE_FRAME for f in table):
            # zstd releases the GIL: frames decode in parallel, hashed in order (bounded in flight).
            for f, out in zip(table, _ordered_map(decode_whole, table, min(workers, len(table))), strict=True):
                h.update(out if out is not None else source.read_exact(f.offset, f.stored))
            return
        buf = memoryview(bytearray(CHUNK))
        for f in table:
            if f.raw:
                _hash_raw(h, source, f.offset, f.stored)
                continue
            reader = zstandard.ZstdDecompressor().stream_reader(
                _RangeFile(source, f.offset, f.stored), read_across_frames=False)
            with reader as r:
                left = f.length
                while left:
                    got = r.readinto(buf[: min(CHUNK, left)])
                    if not got:
                        raise _corrupt(key, source.where, "a compressed part ends early")
                    h.update(buf[:got])
                    left -= got
    except zstandard.ZstdError as e:
        if any(text in str(e) for text in _ZSTD_DAMAGE):
            raise _corrupt(key, source.where, f"a compressed part does not decode ({e})") from None
        raise _unsupported(key, source.where, f"zstd cannot decode a compressed part ({e})") from None


class _RangeFile:
    """``stored`` bytes of a source from ``off`` as a readable file (for zstd's stream reader)."""

    def __init__(self, source: BlobSource, off: int, stored: int):
        self._source, self._pos, self._end = source, off, off + stored

    def read(self, n: int = -1) -> bytes:
        n = self._end - self._pos if n < 0 else min(n, self._end - self._pos)
        if n <= 0:
            return b""
        data = bytes(self._source.read_exact(self._pos, n))
        self._pos += n
        return data


__all__ = ["BlobCorruptionError", "BlobSource", "open_source", "verify_source"]
