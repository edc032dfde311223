"""Artifact codec (storage layer, internal): pickle protocol 5 with out-of-band
buffers, blake3 content keys over the logical bytes, and the ``HWB1`` blob file
format (JSON header, pickle stream, 4 KiB-aligned buffers, zstd-1 where it pays).
"""

from __future__ import annotations

import json
import mmap
import os
import pickle
import struct
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, BinaryIO


from ..exceptions import DataCorruptionError, HeadwaterException
from .codec_plugins import dumps
from .frames import AheadCompressor, ForcedFrames, window_estimates
from .gathered import Gathered, gathering
from .keyhash import CHUNK as TREE_CHUNK
from .keyhash import KeyHasher
from .objects import FileId, file_id

MAGIC = b"HWB1"
#: Header versions this reader decodes: 1, and 2 (a compressed part may hold raw frames;
#: the header may carry chunk digests).
FORMAT_VERSIONS = (1, 2)
ALIGN = 4096
#: Buffers smaller than this are pickled in-band: alignment would waste up to
#: 4 KiB each, mmap gains nothing, and small arrays can then be stored inline.
MIN_OOB = 4096
#: Buffers (and pickle streams) below this are stored raw (zstd saves ~7% at best).
MIN_COMPRESS = 4096
MAX_RATIO = 0.9
_PROBE_CHUNK = 64 << 10
_PROBE_COUNT = 8
#: Compressed parts are cut into independent zstd frames of this many logical
#: bytes, compressed and decoded in parallel: one zstd-1 stream runs at ~0.5 GB/s
#: per core, and level 1's 512 KiB window makes the cut cost no ratio.
FRAME = 4 << 20
#: Raw buffers totalling at least this much are mmap'ed; smaller ones are read
#: into private memory (each mmap holds a file descriptor on Python < 3.13).
_MMAP_MIN = 1 << 20
#: A raw pickle stream above this is verified in chunks and unpickled from the
#: file, so a large in-band object never sits in memory twice.
_STREAM_PICKLE = 8 << 20
_READ_CHUNK = 4 << 20

_U64 = struct.Struct("<Q")
_PREFIX = struct.Struct("<4sI")  # magic, header length
_ZEROS = bytes(ALIGN)
# CPUs this process may run on (respects taskset and container cpusets).
_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
# Python 3.13+ can mmap without holding a duplicate file descriptor per blob.
_MMAP_KW: dict[str, Any] = {"trackfd": False} if sys.version_info >= (3, 13) else {}

RAW = "raw"
ZSTD = "zstd"

_zstd_module: Any = None
#: libzstd's texts (ZSTD_getErrorName) for errors only damaged input causes: the data
#: is no zstd frame, fails its block or checksum tests, or decodes to a length other
#: than the header's. Any other ZstdError (window too large, dictionary, unsupported
#: parameter, no memory) can come from a valid blob, so it is never quarantined.
_ZSTD_DAMAGE = (
    "Data corruption detected",
    "Corrupted block detected",
    "Restored data doesn't match checksum",
    "Unknown frame descriptor",
    "Destination buffer is too small",
    "Src size is incorrect",
)


class _FileMaps:
    """Counts this process's live file mappings that hold a file descriptor (Python < 3.13).

    Each ``mmap.mmap(fd, ...)`` keeps a duplicate of ``fd`` open until the mapping
    dies, so a join that holds thousands of mapped arrays would run out of file
    descriptors. Past the budget (half the soft ``RLIMIT_NOFILE``, leaving the
    rest to the task) a blob is read into anonymous memory instead: it costs
    private memory, never a descriptor.
    """

    def __init__(self) -> None:
        self.live = 0
        self.budget: int | None = None  # decided on first use (the limit is inherited over fork)
        self._lock = threading.Lock()

    def limit(self) -> int:
        if self.budget is None:
            try:
                import resource

                soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            except (ImportError, OSError, ValueError):
                soft = 1024
            self.budget = max(16, (soft if soft != -1 else 1 << 20) // 2)
        return self.budget

    def take(self) -> bool:
        """Reserve one mapping; False when the budget is spent (read into memory instead)."""
        with self._lock:
            if self.live >= self.limit():
                return False
            self.live += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.live -= 1


_file_maps = _FileMaps()


def mapping_budget() -> int:
    """How many blobs this process keeps memory-mapped at once before reading them into memory."""
    return 1 << 62 if _MMAP_KW else _file_maps.limit()


def live_mappings() -> int:
    """Blob mappings alive in this process that hold a file descriptor (0 on Python 3.13+)."""
    return _file_maps.live


def _map_blob(fd: int, fsize: int) -> mmap.mmap:
    """The blob file ``fd`` as a copy-on-write mapping, or its bytes in anonymous memory once
    this process holds ``mapping_budget()`` mappings (each would hold a file descriptor)."""
    if _MMAP_KW:
        return mmap.mmap(fd, fsize, access=mmap.ACCESS_COPY, **_MMAP_KW)
    if _file_maps.take():
        try:
            m = mmap.mmap(fd, fsize, access=mmap.ACCESS_COPY)
        except BaseException:
            _file_maps.release()
            raise
        weakref.finalize(m, _file_maps.release)
        return m
    m = mmap.mmap(-1, fsize)
    view, pos = memoryview(m), 0
    while pos < fsize:
        got = os.preadv(fd, [view[pos:]], pos)
        if not got:
            raise OSError(f"unexpected end of file at offset {pos}")
        pos += got
    view.release()
    return m


def _zstd() -> Any:
    """The ``zstandard`` module, imported on first use (~12 ms that inline-only
    processes such as the CLI listing runs never pay)."""
    global _zstd_module
    if _zstd_module is None:
        import zstandard

        _zstd_module = zstandard
    return _zstd_module


@dataclass
class Encoded:
    """An object serialized for storage.

    ``size`` is the payload size, ``len(pickled) + sum(len(b) for b in buffers)``;
    ``key`` is the blake3 hex digest of the logical bytes
    ``u64le(len(pickled)) + pickled + (u64le(len(b)) + b for b in buffers)``,
    except that a buffer of at least ``keyhash.TREE_MIN`` bytes enters by its chunk
    digests (see ``keyhash``); ``digests`` holds those, by part index (1 = the first
    buffer). The buffers alias the object's own memory: write them before mutating
    it. A buffer is a ``memoryview``, or a ``Gathered`` run of pieces stored as one part.
    """

    pickled: bytes
    buffers: list[Any]
    key: str
    size: int
    digests: dict[int, bytes] = field(default_factory=dict)


def _key(pickled: bytes | memoryview, buffers: Sequence[Any], size: int) -> str:
    """The content key of a pickle stream and its buffers."""
    return _keyed(pickled, buffers, size)[0]


def legacy_key(pickled: bytes | memoryview, buffers: Sequence[Any], size: int) -> str:
    """The key as headwater computed it before chunk keys: every part hashed plainly (what
    blobs and item tables written then were named by)."""
    return _keyed(pickled, buffers, size, tree=False)[0]


def _keyed(pickled: bytes | memoryview, buffers: Sequence[Any], size: int,
           tree: bool | None = None) -> tuple[str, dict[int, bytes]]:
    """The content key of a pickle stream and its buffers, and the chunk digests of its tree parts."""
    h = KeyHasher(size)
    h.part(len(pickled), tree=tree)
    h.update(pickled)
    for b in buffers:
        if isinstance(b, Gathered):
            h.part(b.nbytes, tree=tree)
            for piece in b.pieces:
                h.update(piece)
            continue
        h.part(b.nbytes if isinstance(b, memoryview) else len(b), tree=tree)
        h.update(b)
    return h.hexdigest(), h.digests


class _LoadedRegions:
    """Blobs loaded by mmap in this process, so re-saving an untouched one skips hashing.

    A step that reads a 1 GiB array inherited from its parent re-saves it at the
    end (it may have changed in place). If the object pickles to the same stream
    over the same mapped memory, and the kernel's page map shows no page of
    those ranges was copied on write, the content is the blob's: reuse its key.
    Only enabled in task processes (short-lived), because entries keep their
    mapping alive.
    """

    def __init__(self) -> None:
        self.enabled = False
        self._by_stream: dict[bytes, list[tuple[tuple[tuple[int, int], ...], str, Any]]] = {}

    def add(self, pickled: bytes, regions: tuple[tuple[int, int], ...], key: str, mapping: Any) -> None:
        self._by_stream.setdefault(bytes(pickled), []).append((regions, key, mapping))

    def key_for(self, pickled: bytes, buffers: list[memoryview]) -> str | None:
        entries = self._by_stream.get(pickled)
        if not entries:
            return None
        regions = _regions(buffers)
        if regions is None:
            return None
        for known, key, _ in entries:
            if known == regions and all(_untouched(a, n) for a, n in regions):
                return key
        return None


_loaded = _LoadedRegions()


def track_loaded_blobs(enabled: bool = True) -> None:
    """Let re-saves of untouched mmap-loaded artifacts reuse their key (task processes)."""
    _loaded.enabled = enabled


def forget_loaded_blobs() -> None:
    """Drop what earlier tasks of this process loaded (and the mappings kept for it)."""
    _loaded._by_stream.clear()


def _regions(buffers: Sequence[Any]) -> tuple[tuple[int, int], ...] | None:
    import ctypes

    out = []
    for b in buffers:
        try:
            addr = ctypes.addressof(ctypes.c_char.from_buffer(b))
        except (TypeError, ValueError, BufferError):  # read-only or exotic buffer
            return None
        out.append((addr, memoryview(b).nbytes))
    return tuple(out)


_PAGE = mmap.PAGESIZE
_PM_PRESENT, _PM_SWAPPED, _PM_FILE = 1 << 63, 1 << 62, 1 << 61


def _untouched(addr: int, n: int) -> bool:
    """True if no page of [addr, addr+n) of a private file mapping was copied on write."""
    first, last = addr // _PAGE, (addr + n - 1) // _PAGE
    try:
        with open("/proc/self/pagemap", "rb", buffering=0) as f:
            data = os.pread(f.fileno(), (last - first + 1) * 8, first * 8)
    except OSError:
        return False
    for entry in memoryview(data).cast("Q"):
        if entry & _PM_SWAPPED or (entry & _PM_PRESENT and not entry & _PM_FILE):
            return False
    return True


def encode(obj: Any) -> Encoded:
    """Pickle ``obj`` (protocol 5, large contiguous buffers out of band) and key it.

    Pickling errors propagate unchanged; the caller names the artifact.
    """
    buffers: list[Any] = []
    pending: dict[int, tuple[bytearray, Gathered]] = {}

    def take(pb: pickle.PickleBuffer) -> bool:
        try:
            raw = pb.raw()
        except BufferError:  # non-contiguous: let pickle keep it in band
            return True
        gathered = pending.pop(id(raw.obj), None)
        if gathered is not None and gathered[0] is raw.obj:
            buffers.append(gathered[1])  # always out of band: the token is no data
            return False
        if raw.nbytes < MIN_OOB:
            return True
        buffers.append(raw)
        return False

    with gathering(pending):
        pickled = dumps(obj, buffer_callback=take)
    size = len(pickled)
    for b in buffers:
        size += b.nbytes
    key = _loaded.key_for(pickled, buffers) if _loaded.enabled and buffers else None
    if key is not None:
        return Encoded(pickled, buffers, key, size)  # write_blob computes any digests it needs
    key, digests = _keyed(pickled, buffers, size)
    return Encoded(pickled, buffers, key, size, digests)


def encode_inline(obj: Any) -> Encoded:
    """Pickle a small value entirely in band (no buffers), keyed like a blob."""
    pickled = dumps(obj)
    return Encoded(pickled, [], _key(pickled, (), len(pickled)), len(pickled))


def decode_inline(data: bytes, key: str | None) -> Any:
    """Unpickle inline bytes, verifying them against ``key`` when one is given."""
    if key is not None and _key(data, (), len(data)) != key:
        raise _corrupt(key, "inline artifact in its record")
    return _unpickle(pickle.loads, data)


def _unpickle(load: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``load(*args, **kwargs)``, a missing well-known library named as such."""
    try:
        return load(*args, **kwargs)
    except ModuleNotFoundError as e:
        from .codecs.registry import missing_library

        error = missing_library(e)
        if error is None:
            raise
        raise error from None


# -- writing -------------------------------------------------------------------


_local = threading.local()


def _compress(data: memoryview) -> bytes:
    """zstd level 1, one frame (with its content size)."""
    # One compressor per thread: zstd contexts are not thread-safe, and reusing
    # one saves re-allocating its tables for every frame.
    cctx = getattr(_local, "cctx", None)
    if cctx is None:
        cctx = _local.cctx = _zstd().ZstdCompressor(level=1)
    return cctx.compress(data)  # type: ignore[no-any-return]


def _probe(mv: memoryview) -> bytes | float | bool:
    """Decide zstd for one part: ``False`` (store raw), the sampled ratio (compress
    while writing, in frames) or, for a part small enough to compress whole, its
    compressed bytes."""
    n = mv.nbytes
    if n <= _PROBE_CHUNK * _PROBE_COUNT:
        out = _compress(mv)
        return out if len(out) <= n * MAX_RATIO else False
    # 8 evenly spaced 64 KiB slices predict the ratio to ~0.001 at ~1 ms
    # (reference/dependencies.md Q2).
    step = (n - _PROBE_CHUNK) // (_PROBE_COUNT - 1)
    packed = 0
    for i in range(_PROBE_COUNT):
        packed += len(_compress(mv[i * step : i * step + _PROBE_CHUNK]))
    ratio = packed / (_PROBE_CHUNK * _PROBE_COUNT)
    return ratio if ratio <= MAX_RATIO else False


def _format_version(parts: list[list[Any]]) -> int:
    """The header's ``"v"``: 2 when a compressed part holds a raw frame (an older reader,
    which knows only 1, then refuses the blob as unsupported instead of calling it
    damaged), else 1, the format every older headwater reads."""
    for p in parts:
        if len(p) > 4 and any(len(f) == 1 for f in p[4]):
            return 2
    return 1


def _header(parts: list[list[Any]], trees: dict[int, bytes] | None = None) -> bytes:
    """The JSON header: format 1, or 2 when a part holds a raw frame or the header carries
    chunk digests (``"chunk"``, and ``"trees"``: part index -> hex digests), which readers
    of format 1 must not misread."""
    if not trees:
        return json.dumps({"v": _format_version(parts), "parts": parts}, separators=(",", ":")).encode()
    doc = {"v": 2, "parts": parts, "chunk": TREE_CHUNK, "trees": {str(i): d.hex() for i, d in sorted(trees.items())}}
    return json.dumps(doc, separators=(",", ":")).encode()


def _tree_digests(enc: Encoded, views: list[Any]) -> dict[int, bytes]:
    """The chunk digests of ``enc``'s tree parts (computed here when its key was reused)."""
    from .keyhash import is_tree

    missing = [i for i, v in enumerate(views) if is_tree(v.nbytes) and i not in enc.digests]
    if not missing:
        return enc.digests
    digests = dict(enc.digests)
    for i in missing:
        h = KeyHasher(views[i].nbytes)
        h.part(views[i].nbytes)
        for piece in views[i].pieces if isinstance(views[i], Gathered) else [views[i]]:
            h.update(piece)
        h.hexdigest()
        digests[i] = h.digests[0]
    return digests


def _layout(lengths: list[int], base: int, plans: list[bytes | float | bool] | None = None,
            chunks: list[list[int] | None] | None = None) -> list[list[Any]]:
    """All-raw placement: ``[offset, stored, length, codec]`` per part.

    With ``plans`` (and ``chunks``, the frame sizes of each part to compress while
    writing), the worst case for sizing the header: every codec spelled "zstd"
    (the longest) and, for parts cut into frames, a frame list whose stored sizes
    have as many digits as any real one can (zstd's bound for incompressible data).
    A raw frame's entry, ``[logical]``, is shorter than that bound's, so whatever
    the writer decides per frame fits.
    """
    parts: list[list[Any]] = []
    off = base
    for i, n in enumerate(lengths):
        if i:
            off = -(-off // ALIGN) * ALIGN
        part: list[Any] = [off, n, n, RAW]
        if plans is not None:
            part[3] = ZSTD
            sizes = chunks[i] if chunks is not None else None
            if _framed(plans[i]) and sizes is not None and len(sizes) > 1:
                part.append([[c, c + (c >> 7) + 64] for c in sizes])
        parts.append(part)
        off += n
    return parts


def _pad(out: BinaryIO, pos: int) -> int:
    pad = -pos % ALIGN
    if pad:
        out.write(_ZEROS[:pad])
    return pos + pad


def _ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> Iterator[Any]:
    """``map(fn, items)`` on a thread pool, in order, at most ``workers + 1`` in
    flight (bounds the memory held by finished results waiting their turn)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(workers) as pool:
        it = iter(items)
        pending = deque(pool.submit(fn, x) for x in islice(it, workers + 1))
        while pending:
            result = pending.popleft().result()
            for x in it:
                pending.append(pool.submit(fn, x))
                break
            yield result


def _write_raw(out: BinaryIO, v: Any) -> None:
    if isinstance(v, Gathered):
        for piece in v.pieces:
            out.write(piece)
    else:
        out.write(v)


def _probe_gathered(g: Gathered) -> float | bool:
    """``_probe`` for a gathered part: the sampled ratio when zstd is predicted to pay, else False."""
    n = g.nbytes
    if n <= _PROBE_CHUNK * _PROBE_COUNT:
        ratio = len(_compress(g.join())) / n
    else:
        step = (n - _PROBE_CHUNK) // (_PROBE_COUNT - 1)
        packed = sum(len(_compress(memoryview(g.window(i * step, _PROBE_CHUNK)))) for i in range(_PROBE_COUNT))
        ratio = packed / (_PROBE_CHUNK * _PROBE_COUNT)
    return ratio if ratio <= MAX_RATIO else False


def _framed(plan: bytes | float | bool) -> bool:
    """Whether a part's plan is to compress it in frames while writing (a sampled ratio)."""
    return isinstance(plan, float)


def _frame_chunks(v: Any) -> list[memoryview]:
    """``v`` cut into zstd frames of at most ``FRAME`` bytes (a gathered part: within each piece)."""
    views = v.pieces if isinstance(v, Gathered) else [v]
    return [p[i : i + FRAME] for p in views for i in range(0, p.nbytes, FRAME)]


def _compress_frame(chunk: memoryview) -> bytes | None:
    """One frame's zstd bytes, or ``None`` when they save less than ``MAX_RATIO`` (stored raw)."""
    data = _compress(chunk)
    return data if len(data) <= chunk.nbytes * MAX_RATIO else None


#: Test hook (and the benchmark's "compress everything"): ``choose(part, frame)`` decides,
#: instead of timing, whether frame ``frame`` of part ``part`` is compressed or written raw.
_choose_frames: Callable[[int, int], bool] | None = None


def _frame_writer(views: list[Any], plans: list[bytes | float | bool]) -> Any:
    """What decides each frame of the parts planned for frames: ``take(i)`` gives the
    ``i``-th frame's compressed bytes (in writing order) or ``None`` (write it raw)."""
    chunks: list[memoryview] = []
    where: list[tuple[int, int]] = []
    ratios: list[float] = []
    for i, (v, plan) in enumerate(zip(views, plans, strict=True)):
        if _framed(plan):
            cut = _frame_chunks(v)
            chunks += cut
            where += [(i, j) for j in range(len(cut))]
            ratios += [plan] * len(cut)
    if _choose_frames is not None:
        return ForcedFrames(where, chunks, _compress_frame, _choose_frames, workers=_CPUS)
    # One core is the writer's (a niced worker on it still cost ~10% of a 1 GiB save).
    estimates = window_estimates([c.nbytes for c in chunks], ratios)
    return AheadCompressor(chunks, estimates, _compress_frame, workers=max(1, _CPUS - 1))


def _write_frames(out: BinaryIO, v: Any, take: Callable[[int], bytes | None], first: int) -> list[list[int]]:
    """Write part ``v`` frame by frame, each compressed or raw as ``take`` decides; returns
    the frame table, ``[logical, stored]`` per zstd frame and ``[logical]`` per raw one."""
    frames: list[list[int]] = []
    for j, chunk in enumerate(_frame_chunks(v)):
        data = take(first + j)
        if data is None:
            out.write(chunk)
            frames.append([chunk.nbytes])
        else:
            out.write(data)
            frames.append([chunk.nbytes, len(data)])
    return frames


def write_blob(enc: Encoded, out: BinaryIO) -> int:
    """Write ``enc`` to ``out`` (at position 0) in the ``HWB1`` format; returns the file size.

    Layout: ``b"HWB1"``, u32le header length, a JSON header (space-padded)
    ``{"v": 1, "parts": [[offset, stored, length, codec], ...]}`` (part 0 is the
    pickle stream, then one per buffer), the pickle stream, then each buffer at
    a 4 KiB-aligned offset. A part is zstd-1 compressed (``codec`` "zstd", else
    "raw") when it is at least 4 KiB and a sample predicts a ratio ≤ 0.9; a
    compressed part over ``FRAME`` bytes is a run of independent frames and
    its entry gains a fifth element, ``[logical, stored]`` per zstd frame.

    Frames are compressed ahead of the writer (``frames.AheadCompressor``); one not
    ready when the writer reaches it is written raw, entry ``[logical]``, so saving is
    never slower than writing raw. A blob with a raw frame is ``"v": 2``
    (``_format_version``); a part whose frames all end up raw is a plain raw part.
    ``out`` must be seekable when any part is compressed (the header is patched
    once the stored sizes are known).
    """
    views: list[Any] = [memoryview(enc.pickled), *enc.buffers]
    lengths = [v.nbytes for v in views]
    trees = _tree_digests(enc, views)
    # A gathered part is written (raw or as zstd frames) piece by piece, never joined.
    plans: list[bytes | float | bool] = [
        False if v.nbytes < MIN_COMPRESS else _probe_gathered(v) if isinstance(v, Gathered) else _probe(v)
        for v in views
    ]
    # Header space: the all-raw layout with every codec spelled "zstd" (the
    # longest) bounds the real header, whose offsets and sizes can only shrink.
    chunks = [[c.nbytes for c in _frame_chunks(v)] if _framed(plan) else None for v, plan in zip(views, plans)]
    hlen = 64
    while True:
        need = len(_header(_layout(lengths, _PREFIX.size + hlen, plans, chunks), trees))
        if need <= hlen:
            break
        hlen = need
    base = _PREFIX.size + hlen
    compressing = any(p is not False for p in plans)
    if not compressing:
        header = _header(_layout(lengths, base), trees)
        out.write(_PREFIX.pack(MAGIC, hlen))
        out.write(header.ljust(hlen))
        pos = base
        for i, v in enumerate(views):
            if i:
                pos = _pad(out, pos)
            _write_raw(out, v)
            pos += lengths[i]
        return pos

    out.write(_PREFIX.pack(MAGIC, hlen))
    out.write(bytes(hlen))  # header placeholder, patched at the end
    parts: list[list[Any]] = []
    pos = base
    first = 0  # index of the part's first frame among all frames, in writing order
    with _frame_writer(views, plans) as frames_ahead:
        for i, (v, plan) in enumerate(zip(views, plans, strict=True)):
            if i:
                pos = _pad(out, pos)
            n = lengths[i]
            if plan is False:
                _write_raw(out, v)
                parts.append([pos, n, n, RAW])
                pos += n
                continue
            if _framed(plan):
                frames = _write_frames(out, v, frames_ahead.take, first)
                first += len(frames)
                if all(len(f) == 1 for f in frames):  # all raw: a plain raw part (mmap-able)
                    parts.append([pos, n, n, RAW])
                    pos += n
                    continue
                stored = sum(f[-1] for f in frames)
                parts.append([pos, stored, n, ZSTD, frames] if len(frames) > 1 else [pos, stored, n, ZSTD])
            else:
                assert isinstance(plan, bytes)
                out.write(plan)
                stored = len(plan)
                parts.append([pos, stored, n, ZSTD])
            pos += stored
    end = out.tell()
    out.seek(_PREFIX.size)
    out.write(_header(parts, trees).ljust(hlen))
    out.seek(end)
    return end


# -- reading -------------------------------------------------------------------


class BlobCorruptionError(DataCorruptionError):
    """A blob file is damaged: bad magic, truncated, or its bytes do not match its key.

    ``file`` is the identity of the very file that failed (set by ``read_blob``), so
    that only that file is quarantined, never a good copy stored since.
    """

    def __init__(self, msg: str = "", *, hint: str | None = None, file: FileId | None = None):
        super().__init__(msg, hint=hint)
        self.file = file


class UnsupportedBlobError(HeadwaterException):
    """A blob this version of headwater cannot decode, though it may well be valid.

    An unknown format version or codec (a newer headwater wrote it), or compressed
    data that zstd refuses for a reason other than damage (a newer encoder's
    window or dictionary, or no memory to decode it). Unlike
    ``BlobCorruptionError`` it is never quarantined: other readers may read it.
    """

    headline = "Unreadable data in the store"


def _corrupt(key: str | None, where: str, why: str = "its content does not match its key") -> BlobCorruptionError:
    return BlobCorruptionError(
        f"Blob {key or '(unkeyed)'} ({where}) is corrupt: {why}. The store is corrupt.",
        hint="Re-run the step that produced this artifact: the damaged blob has been moved to the "
        "store's quarantine/ directory, so the re-run stores it again and every run that refers "
        "to it reads the repaired blob.",
    )


def _unsupported(key: str | None, where: str, why: str) -> UnsupportedBlobError:
    return UnsupportedBlobError(
        f"Blob {key or '(unkeyed)'} ({where}) cannot be read by this version of headwater: {why}.",
        hint="If a newer headwater also writes to this store, upgrade this one "
        "(pip install -U headwater). Otherwise the blob is damaged: delete the file named above "
        "and re-run the step that produced this artifact.",
    )


def _read_header(fd: int, path: str, key: str | None) -> tuple[list[list[Any]], bytes, int]:
    """Parse the header; returns parts, the first chunk read and the file size."""
    fsize = os.fstat(fd).st_size
    parts, head = parse_header(lambda off, n: os.pread(fd, n, off), fsize, key, path)
    return parts, head, fsize


def parse_header(read: Callable[[int, int], bytes], size: int | None, key: str | None,
                 where: str) -> tuple[list[list[Any]], bytes]:
    """The part table of a blob read through ``read(offset, length)`` (fewer bytes at its end).

    Returns the parts and the first chunk read (up to 64 KiB). ``size`` is the blob's
    size when known: a part past it means a truncated blob. Raises ``BlobCorruptionError``
    for a bad magic, a truncated file or an unreadable header, ``UnsupportedBlobError``
    for an unknown format version.
    """
    header = parse_blob_header(read, size, key, where)
    return header.parts, header.head


def check_digests(stated: dict[int, bytes], computed: dict[int, bytes], key: str | None, where: str) -> None:
    """Raise ``BlobCorruptionError`` when a header's chunk digests are not those of the bytes
    (partial readers trust them once they match the key, so a header that lies is damage)."""
    if stated and stated != computed:
        raise _corrupt(key, where, "its header's chunk digests do not match its bytes")


@dataclass
class BlobHeader:
    """A blob's parsed header: its part table, the chunk digests of its tree parts (by part
    index; see ``keyhash``), and the first bytes of the blob read to parse it."""

    parts: list[list[Any]]
    trees: dict[int, bytes]
    head: bytes


def parse_blob_header(read: Callable[[int, int], bytes], size: int | None, key: str | None,
                      where: str) -> BlobHeader:
    """``parse_header``, with the chunk digests of format 2 (absent digests: an empty dict)."""
    head = read(0, 64 << 10)
    if len(head) < _PREFIX.size:
        raise _corrupt(key, where, "the file is truncated")
    magic, hlen = _PREFIX.unpack_from(head)
    if magic != MAGIC:
        raise _corrupt(key, where, "it is not a headwater blob (bad magic)")
    end = _PREFIX.size + hlen
    raw_header = head[_PREFIX.size : end] if end <= len(head) else read(_PREFIX.size, hlen)
    if len(raw_header) < hlen:
        raise _corrupt(key, where, "the file is truncated")
    trees: dict[int, bytes] = {}
    try:
        header = json.loads(bytes(raw_header))
        version = header["v"]
        parts = header["parts"]
        if version not in FORMAT_VERSIONS:
            raise _unsupported(key, where, f"its format version is {version!r} (this version reads "
                               f"{' and '.join(map(str, FORMAT_VERSIONS))})")
        if version == 2 and "trees" in header:
            if header["chunk"] != TREE_CHUNK:
                raise _unsupported(key, where, f"its chunk size is {header['chunk']!r} (this version reads "
                                   f"{TREE_CHUNK})")
            trees = {int(i): bytes.fromhex(d) for i, d in header["trees"].items()}
        if not parts:
            raise ValueError("no parts")
        truncated = size is not None and any(p[0] + p[1] > size for p in parts)
    except (ValueError, KeyError, TypeError):
        raise _corrupt(key, where, "its header is unreadable") from None
    if truncated:
        raise _corrupt(key, where, "the file is truncated")
    return BlobHeader(parts, trees, head)


def decode_frame_into(zstandard: Any, data: Any, target: memoryview, key: str | None, where: str) -> None:
    """Decode one zstd frame of a compressed part (``data``) into ``target``, which it must fill."""
    with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=False) as r:
        pos, want = 0, target.nbytes
        while pos < want:
            got = r.readinto(target[pos:])
            if not got:
                raise _corrupt(key, where, "a compressed part ends early")
            pos += got


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame of a compressed part: ``stored`` bytes at ``offset`` in the blob that
    decode to ``length`` logical bytes at ``start`` in the part; ``raw`` frames are the bytes."""

    offset: int
    stored: int
    start: int
    length: int
    raw: bool


def frame_table(part: list[Any], key: str | None, where: str) -> list[Frame]:
    """The frames of a zstd part entry, checked to add up to its sizes.

    A part without a frame list is one zstd frame; a frame entry ``[logical, stored]``
    is zstd, ``[logical]`` raw bytes (format version 2). Raises ``BlobCorruptionError``
    when the table is malformed or does not add up.
    """
    off, stored, n = part[0], part[1], part[2]
    entries = part[4] if len(part) > 4 else [[n, stored]]
    table: list[Frame] = []
    src = dst = 0
    try:
        for e in entries:
            length, size = (e[0], e[1]) if len(e) == 2 else (e[0], e[0]) if len(e) == 1 else (-1, -1)
            if type(length) is not int or type(size) is not int or length < 0 or size < 0:
                raise ValueError(e)
            table.append(Frame(off + src, size, dst, length, len(e) == 1))
            src += size
            dst += length
    except (TypeError, ValueError, IndexError):
        raise _corrupt(key, where, "its frame table is unreadable") from None
    if dst != n or src != stored:
        raise _corrupt(key, where, "its frame table does not add up")
    return table


def _read_into(fd: int, target: memoryview, off: int) -> None:
    """Fill ``target`` with the file's bytes from ``off`` (straight into place, no copy)."""
    pos, want = 0, target.nbytes
    while pos < want:
        got = os.preadv(fd, [target[pos:]], off + pos)
        if not got:  # the size was checked against the header: only a concurrent truncation
            raise OSError(f"unexpected end of file at offset {off + pos}")
        pos += got


def _decompress(fd: int, part: list[Any], key: str | None, path: str) -> bytearray | mmap.mmap:
    """Decode a zstd part into fresh private memory; frames decode (and raw frames are
    read into place) in parallel."""
    n = part[2]
    table = frame_table(part, key, path)
    # Large outputs go to anonymous memory: pages fault in as zstd writes them,
    # with no zero-fill pass first (bytearray(n) memsets n bytes).
    buf: bytearray | mmap.mmap = bytearray(n) if n < _MMAP_MIN else mmap.mmap(-1, n)
    dst = memoryview(buf)
    zstandard = _zstd()

    def decode(f: Frame) -> None:
        target = dst[f.start : f.start + f.length]
        if f.raw:
            _read_into(fd, target, f.offset)
        else:
            decode_frame_into(zstandard, os.pread(fd, f.stored, f.offset), target, key, path)

    try:
        # zstd releases the GIL while decoding: frames decode truly in parallel.
        for _ in _ordered_map(decode, table, min(_CPUS, len(table))):
            pass
    except zstandard.ZstdError as e:
        if any(text in str(e) for text in _ZSTD_DAMAGE):
            raise _corrupt(key, path, f"a compressed part does not decode ({e})") from None
        raise _unsupported(key, path, f"zstd cannot decode a compressed part ({e})") from None
    return buf


def read_blob(path: str, key: str | None, *, verify: bool = True) -> Any:
    """Load an object written by ``write_blob``.

    Raw buffers come back as copy-on-write ``mmap`` slices (zero copy, lazily
    paged, writable without touching the file); compressed ones are decoded
    into private memory. With ``verify`` and a ``key``, the logical bytes are
    hashed first and a mismatch raises ``BlobCorruptionError``, as do a bad magic,
    a truncated file or an unreadable header; its ``file`` names the file read.
    A blob in a format or codec this version cannot decode raises
    ``UnsupportedBlobError``.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return _read_open_blob(fd, path, key, verify)
    except BlobCorruptionError as e:
        e.file = file_id(os.fstat(fd))
        raise
    finally:
        os.close(fd)


def _read_open_blob(fd: int, path: str, key: str | None, verify: bool) -> Any:
    """``read_blob`` on the open file ``fd``."""
    fsize = os.fstat(fd).st_size
    header = parse_blob_header(lambda off, n: os.pread(fd, n, off), fsize, key, path)
    parts, head = header.parts, header.head
    check = verify and key is not None
    total = 0
    for p in parts:
        total += p[2]
    h = KeyHasher(total) if check else None

    # Pickle stream.
    p_off, p_stored, p_len, p_codec = parts[0][:4]
    stream_from: int | None = None
    if p_codec != RAW and p_codec != ZSTD:
        raise _unsupported(key, path, f"unknown codec {p_codec!r}")
    if p_codec == ZSTD:
        pickled: Any = _decompress(fd, parts[0], key, path)
    elif p_off + p_len <= len(head):
        pickled = memoryview(head)[p_off : p_off + p_len]
    elif p_len <= _STREAM_PICKLE:
        pickled = os.pread(fd, p_len, p_off)
    else:
        pickled, stream_from = None, p_off
    trees = header.trees
    if h is not None:
        h.part(p_len, tree=0 in trees)
        if pickled is not None:
            h.update(pickled)
        else:
            _hash_range(h, fd, p_off, p_len)

    # Buffers.
    buffers: list[Any] = []
    raw_total = 0
    for part in parts[1:]:
        if part[3] == RAW:
            raw_total += part[2]
    mm: memoryview | None = None
    if raw_total >= _MMAP_MIN:
        mm = memoryview(_map_blob(fd, fsize))
    for index, part in enumerate(parts[1:], 1):
        off, n, codec = part[0], part[2], part[3]
        if codec == ZSTD:
            buf: Any = _decompress(fd, part, key, path)
        elif codec != RAW:
            raise _unsupported(key, path, f"unknown codec {codec!r}")
        elif mm is not None:
            buf = mm[off : off + n]
        else:
            buf = bytearray(n)
            os.preadv(fd, [buf], off)
        if h is not None:
            h.part(n, tree=index in trees)
            h.update(buf)
        buffers.append(buf)

    if h is not None:
        if h.hexdigest() != key:
            raise _corrupt(key, path)
        check_digests(header.trees, h.digests, key, path)
    if (
        _loaded.enabled
        and mm is not None
        and key is not None
        and pickled is not None
        and all(isinstance(b, memoryview) and b.obj is mm.obj for b in buffers)
    ):
        regions = _regions(buffers)
        if regions is not None:
            _loaded.add(bytes(pickled), regions, key, mm)
    if stream_from is None:
        return _unpickle(pickle.loads, pickled, buffers=buffers)
    with open(fd, "rb", buffering=1 << 20, closefd=False) as f:
        f.seek(stream_from)
        return _unpickle(pickle.load, f, buffers=buffers)


def _hash_range(h: Any, fd: int, off: int, n: int) -> None:
    """Hash ``n`` bytes of ``fd`` from ``off`` through one reused buffer."""
    chunk = bytearray(min(n, _READ_CHUNK))
    view = memoryview(chunk)
    end = off + n
    while off < end:
        got = os.preadv(fd, [view[: min(len(chunk), end - off)]], off)
        if not got:  # the size was checked against the header: only a concurrent truncation
            raise OSError(f"unexpected end of file at offset {off}")
        h.update(view[:got])
        off += got
