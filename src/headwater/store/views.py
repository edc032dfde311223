"""Views of stored artifacts (storage layer): a slice of a large array without loading it.

``ContentStore.view(ref)`` returns an ``ArtifactView``. For a numpy array stored as a
blob whose buffer is a tree part (at least ``keyhash.TREE_MIN`` bytes), the view reads
the blob's header and pickle stream only; indexing it (``view[1000:2000]``) fetches,
verifies and returns just the chunks the result covers: from the file itself on a
local store, by ranged GETs into a sparse cache file on S3, or by decoding only the
zstd frames involved. The chunk digests come from the blob's header and are first
checked against the content key, so every byte a view returns is verified. Any other
artifact (not an array, small, inline, an older blob without digests) is loaded whole
on first use, and the view behaves like its value.

Arrays a view returns are read-only views of the mapped blob (zero copy); ``.copy()``
one to modify it. Basic indexing (slices, integers, ``...``, ``None``) reads the chunks
between the result's first and last byte; rows picked by an integer list or array over
the first axis read only their rows' chunks; anything else (a mask) first makes the whole
array present.
"""

from __future__ import annotations

import bisect
import mmap
import pickle
import threading
from collections.abc import Callable
from typing import Any

from ..exceptions import DataMissingError
from .codec import (_CPUS, _ZSTD_DAMAGE, RAW, ZSTD, BlobCorruptionError, Frame, _corrupt, _ordered_map, _unpickle,
                    _unsupported, _zstd, decode_frame_into, frame_table, parse_blob_header)
from .keyhash import CHUNK, DIGEST, chunk_count, chunk_digest, is_tree, key_of_digests
from .ranged import RangedObject

_ARRAY_TYPE = "numpy.ndarray"
_NOT_LOADED = object()


class ArtifactView:
    """A stored artifact that is read only as far as it is used.

    Index it like the array it holds (``view[:1000]``, ``view[5, 2:4]``): only the
    bytes the result covers are fetched and verified. ``load()`` (or
    ``numpy.asarray(view)``) gives the whole value; any other attribute is the
    value's (``view.mean()`` loads it). Build one with ``headwater.view(self, "name")``
    in a step, or ``DataArtifact.view()`` in the client.

    Attributes
    ----------
    lazy : bool
        True when the view reads by chunk (a large numpy array stored with chunk
        digests); False when the value is loaded whole on first use.
    bytes_read : int
        Bytes of the array's buffer made present and verified so far (lazy views).
    """

    def __init__(self, *, load: Callable[[], Any] | None = None, value: Any = _NOT_LOADED,
                 lazy: _LazyArray | None = None) -> None:
        self._load_fn, self._value, self._lazy = load, value, lazy

    @property
    def lazy(self) -> bool:
        return self._lazy is not None

    @property
    def bytes_read(self) -> int:
        return self._lazy.bytes_read if self._lazy is not None else 0

    def load(self) -> Any:
        """The whole value (for a lazy view: the whole array, read-only, every chunk verified)."""
        if self._lazy is not None:
            return self._lazy.whole()
        if self._value is _NOT_LOADED:
            assert self._load_fn is not None
            self._value = self._load_fn()
        return self._value

    def __getitem__(self, index: Any) -> Any:
        if self._lazy is not None:
            return self._lazy.getitem(index)
        return self.load()[index]

    def __len__(self) -> int:
        if self._lazy is not None:
            return len(self._lazy.array)
        return len(self.load())

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        value = self.load()
        if copy:
            return np.array(value, dtype=dtype, copy=True)
        return np.asarray(value, dtype=dtype)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        lazy = self.__dict__.get("_lazy")
        if lazy is not None and name in ("shape", "dtype", "ndim", "size", "nbytes", "itemsize", "strides"):
            return getattr(lazy.array, name)  # metadata: nothing is read
        return getattr(self.load(), name)

    def close(self) -> None:
        """Release the mapping and file a lazy view holds (arrays it returned stay valid)."""
        if self._lazy is not None:
            self._lazy.close()

    def __enter__(self) -> ArtifactView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._lazy is not None:
            a = self._lazy.array
            return (f"<ArtifactView lazy numpy.ndarray shape={a.shape} dtype={a.dtype}, "
                    f"{self._lazy.bytes_read} of {a.nbytes} bytes read>")
        return "<ArtifactView (loaded whole on first use)>"


def viewable(ref: dict[str, Any]) -> bool:
    """Whether a ref may be read lazily: a numpy array in a blob large enough to have chunk digests."""
    return ref.get("type") == _ARRAY_TYPE and "inline" not in ref and is_tree(int(ref.get("size", 0)))


def open_view(objects: Any, bkey: str, ref: dict[str, Any], load: Callable[[], Any]) -> ArtifactView:
    """The view of ``ref`` (blob ``bkey`` of ``objects``); ``load`` loads it whole (and
    quarantines a damaged blob). ``KeyError`` if the blob is missing."""
    if not viewable(ref):
        return ArtifactView(load=load)
    ranged = objects.open_ranged(bkey)
    try:
        lazy = _LazyArray.open(objects, bkey, ref["key"], ranged)
    except BlobCorruptionError:
        ranged.close()
        return ArtifactView(value=load())  # the full read names (and quarantines) the damage
    except BaseException:
        ranged.close()
        raise
    if lazy is None:
        ranged.close()
        return ArtifactView(load=load)
    return ArtifactView(lazy=lazy)


class _LazyArray:
    """A numpy array over a blob's buffer part whose chunks are made present and verified on demand."""

    def __init__(self, objects: Any, bkey: str, key: str, ranged: RangedObject, part: list[Any],
                 digests: bytes, backing: Any, array: Any, mapping: mmap.mmap) -> None:
        self._objects, self._bkey, self.key, self._ranged = objects, bkey, key, ranged
        self._part, self._digests, self._backing, self._map = part, digests, backing, mapping
        self.array = array
        self._n = part[2]
        self._ok = bytearray(chunk_count(self._n))
        self.bytes_read = 0
        self._frames: list[Frame] = frame_table(part, key, ranged.where) if part[3] == ZSTD else []
        self._frame_starts = [f.start for f in self._frames]
        self._decoded: set[int] = set()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, objects: Any, bkey: str, key: str, ranged: RangedObject) -> _LazyArray | None:
        """The lazy array of blob ``key``, or None when the blob cannot be read by chunk."""
        where = ranged.where
        header = parse_blob_header(ranged.read, ranged.size, key, where)
        parts = header.parts
        if len(parts) != 2 or 1 not in header.trees or 0 in header.trees:
            return None
        p_off, p_stored, p_len, p_codec = parts[0][:4]
        part = parts[1]
        if p_codec != RAW or part[3] not in (RAW, ZSTD) or len(header.trees[1]) != DIGEST * chunk_count(part[2]):
            return None
        pickled = header.head[p_off : p_off + p_len] if p_off + p_len <= len(header.head) else ranged.read(p_off, p_len)
        if len(pickled) != p_len:
            raise _corrupt(key, where, "the file is truncated")
        digests = header.trees[1]
        if key_of_digests([(p_len, pickled, False), (part[2], digests, True)]) != key:
            raise _corrupt(key, where)
        if part[3] == RAW:
            mapping = mmap.mmap(ranged.fd, ranged.size, access=mmap.ACCESS_READ)
            backing = memoryview(mapping)[part[0] : part[0] + part[2]]
            readonly = backing
        else:
            mapping = mmap.mmap(-1, part[2])
            backing = memoryview(mapping)
            readonly = backing.toreadonly()
        try:
            array = _unpickle(pickle.loads, pickled, buffers=[readonly])
        except BaseException:
            _close_quietly(mapping, readonly, backing)
            raise
        import numpy as np

        if type(array) is not np.ndarray:  # a subclass: its own code may read any byte
            del array
            _close_quietly(mapping, readonly, backing)
            return None
        return cls(objects, bkey, key, ranged, part, digests, backing, array, mapping)

    # -- reading -------------------------------------------------------------

    def getitem(self, index: Any) -> Any:
        import numpy as np

        items = index if isinstance(index, tuple) else (index,)
        basic = all(
            x is None or x is Ellipsis or isinstance(x, slice)
            or (isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)))
            for x in items
        )
        if not basic:
            rows = self._rows_of(items)
            if rows is None:
                self.need(0, self._n)
            else:
                self.need_rows(rows)
            return self.array[index]
        # A trailing ``...`` makes numpy return a view even where the result is a scalar,
        # so its bounds are known before any byte is read.
        probe = self.array[items if Ellipsis in items else (*items, Ellipsis)]
        if probe.size:
            lo, hi = _byte_bounds(probe)
            base = self.array.__array_interface__["data"][0]
            self.need(lo - base, hi - base)
        return self.array[index]

    def _rows_of(self, items: tuple[Any, ...]) -> Any:
        """The rows picked when the index is an integer array (or list) over the first axis
        followed by basic indices, else None (none at all when a row is out of range: numpy
        refuses the index, and nothing needs reading first)."""
        import numpy as np

        first, rest = items[0], items[1:]
        if isinstance(first, (bool, np.bool_)) or not isinstance(first, (list, np.ndarray)) or self.array.ndim == 0:
            return None
        rows = np.asarray(first)
        if rows.dtype.kind not in "iu" or any(
                not (x is None or x is Ellipsis or isinstance(x, slice)
                     or (isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)))) for x in rest):
            return None
        n = self.array.shape[0]
        rows = rows.ravel().astype(np.int64)
        if rows.size and (rows.min() < -n or rows.max() >= n):
            return rows[:0]  # numpy refuses the index: nothing needs reading first
        return np.where(rows < 0, rows + n, rows)

    def need_rows(self, rows: Any) -> None:
        """Make present and verify the chunks that hold the given rows (first-axis indices)."""
        import numpy as np

        if not rows.size:
            return
        lo0, hi0 = _byte_bounds(self.array[0])
        base = self.array.__array_interface__["data"][0]
        stride = self.array.strides[0]
        starts = lo0 - base + rows * stride
        ends = hi0 - base + rows * stride
        first, last = starts // CHUNK, (ends - 1) // CHUNK
        chunks = np.unique(np.concatenate([np.arange(a, b + 1) for a, b in zip(first.tolist(), last.tolist())]))
        with self._lock:
            for a, b in _runs([int(c) for c in chunks]):
                self._need(a * CHUNK, min(self._n, (b + 1) * CHUNK))

    def whole(self) -> Any:
        self.need(0, self._n)
        return self.array

    def need(self, lo: int, hi: int) -> None:
        """Make buffer bytes ``[lo, hi)`` present and verified (one thread at a time: a chunk
        must not be checked while another thread is still writing it)."""
        if hi <= lo:
            return
        with self._lock:
            self._need(lo, hi)

    def _need(self, lo: int, hi: int) -> None:
        todo = [i for i in range(lo // CHUNK, (hi - 1) // CHUNK + 1) if not self._ok[i]]
        if not todo:
            return
        self._fill(todo, again=False)
        bad = self._check(todo)
        if bad:
            self._fill(bad, again=True)
            still = self._check(bad)
            if still:
                self._damaged(still[0])
        for i in todo:
            self._ok[i] = 1
            self.bytes_read += self._span(i)[1]

    def _span(self, i: int) -> tuple[int, int]:
        start = i * CHUNK
        return start, min(CHUNK, self._n - start)

    def _fill(self, chunks: list[int], *, again: bool) -> None:
        try:
            self._fetch(chunks, again=again)
        except KeyError:
            raise DataMissingError(
                f"Blob {self.key} was deleted from the store {self._objects.url} while it was being read.",
                hint="It was removed (headwater gc or delete, or by hand) after the view was opened; "
                "re-run the step that produced this artifact.") from None

    def _fetch(self, chunks: list[int], *, again: bool) -> None:
        if self._part[3] == RAW:
            for first, last in _runs(chunks):
                start = first * CHUNK
                end = min(self._n, (last + 1) * CHUNK)
                self._ranged.ensure(self._part[0] + start, end - start, again=again)
            return
        frames: set[int] = set()
        for i in chunks:
            start, length = self._span(i)
            a = bisect.bisect_right(self._frame_starts, start) - 1
            b = bisect.bisect_right(self._frame_starts, start + length - 1) - 1
            frames.update(range(a, b + 1))
        todo = sorted(f for f in frames if again or f not in self._decoded)
        zstandard = _zstd()

        def decode(f: int) -> None:
            frame = self._frames[f]
            data = self._ranged.read(frame.offset, frame.stored)
            target = self._backing[frame.start : frame.start + frame.length]
            if frame.raw:
                if len(data) != frame.length:
                    raise _corrupt(self.key, self._ranged.where, "a raw frame is truncated")
                target[:] = data
            else:
                decode_frame_into(zstandard, data, target, self.key, self._ranged.where)

        try:
            for _ in _ordered_map(decode, todo, min(_CPUS, len(todo))):
                pass
        except zstandard.ZstdError as e:
            if any(text in str(e) for text in _ZSTD_DAMAGE):
                self._quarantine()
                raise _corrupt(self.key, self._ranged.where, f"a compressed part does not decode ({e})") from None
            raise _unsupported(self.key, self._ranged.where, f"zstd cannot decode a compressed part ({e})") from None
        self._decoded.update(todo)

    def _check(self, chunks: list[int]) -> list[int]:
        """The chunks among ``chunks`` whose bytes do not match their digests."""
        def good(i: int) -> bool:
            start, length = self._span(i)
            return chunk_digest(self._backing[start : start + length]) == self._digests[i * DIGEST : (i + 1) * DIGEST]

        results = list(_ordered_map(good, chunks, min(_CPUS, len(chunks))))
        return [i for i, ok in zip(chunks, results) if not ok]

    def _damaged(self, i: int) -> None:
        start, length = self._span(i)
        self._quarantine()
        raise _corrupt(self.key, self._ranged.where,
                       f"bytes {start}-{start + length} of its array do not match their digest")

    def _quarantine(self) -> None:
        """Take the damaged blob out of the way, as a full read would, so a re-run stores it again."""
        try:
            self._objects.quarantine(self._bkey, only=self._ranged.identity())
        except Exception:  # the error about the damage matters more than a failed move
            pass

    def close(self) -> None:
        self._ranged.close()


def _close_quietly(mapping: mmap.mmap, *views: memoryview) -> None:
    """Release a mapping nobody will use; one still exported (a value holds it) is left to the GC."""
    for v in views:
        v.release()
    try:
        mapping.close()
    except BufferError:
        pass


def _runs(chunks: list[int]) -> list[tuple[int, int]]:
    """Sorted chunk indices as ``(first, last)`` runs of consecutive ones."""
    out: list[tuple[int, int]] = []
    for i in sorted(chunks):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def _byte_bounds(a: Any) -> tuple[int, int]:
    try:
        from numpy.lib.array_utils import byte_bounds
    except ImportError:  # numpy < 2
        from numpy import byte_bounds  # type: ignore[attr-defined,no-redef]
    lo, hi = byte_bounds(a)
    return int(lo), int(hi)


__all__ = ["ArtifactView", "open_view", "viewable"]
