"""Compression ahead of the blob writer (storage layer, internal): zstd frames are
compressed by worker threads while the writer streams the blob in order, and a frame
whose compression is not ready when the writer reaches it is written raw, so that
compressing never makes a save slower than writing the bytes as they are.

Scheduling. On a fast sink (a local disk takes 1-2 GB/s, zstd-1 compresses ~0.5 GB/s
per core) the writer overtakes any compressor working just ahead of it, wasting the
frame. So the workers work at the far end of a window in front of the writer: they
claim the highest unclaimed frame below ``limit``, where the window ``[next, limit)``
holds as many frames as the memory budget can hold compressed (by the part's sampled
ratio), and, at the start, about as many frames as the writer has written. As the
writer advances, new frames enter at the top and the workers take them long before the
writer arrives: once the window has grown, no frame is wasted except where writer and
workers meet at the very end. On a slow sink the workers stay ahead of the writer and
compress as many frames as they get CPU for (44 of 64 behind 250 MB/s on 2 busy cores,
``benchmarks/bench_compress.py``). Finished frames wait in memory for the writer, at
most ``BUDGET`` bytes (plus one frame per worker in flight).

The workers, one per core but the writer's, run at the lowest CPU priority: they
compress with spare CPU only (copying into the page cache is CPU work too, which must not
lose its core to zstd; a worker per core, niced or not, still slowed a 1 GiB save by ~10%
on 2 cores). One exception keeps small blobs compressed: a blob with no more frames than
one round (one per worker plus one for the writer) is compressed whole, at normal
priority (the writer compressing any frame it reaches first), and the writer waits for
it, about one frame's compression (~8-25 ms for 4 MiB here, by data); otherwise the
writer, reaching frame 0 at once, would write it raw.
"""

from __future__ import annotations

import enum
import os
import sys
import threading
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from itertools import accumulate, islice
from types import TracebackType
from typing import Any

#: Compressed frames finished ahead of the writer and held for it, at most (bytes).
BUDGET = 64 << 20
#: The smallest ratio assumed when sizing the window (a sample of zeros says ~0.0001).
_MIN_RATIO = 0.02

#: ``compress(chunk)``: the frame's compressed bytes, or ``None`` when they do not pay.
Compress = Callable[[memoryview], "bytes | None"]


class _State(enum.Enum):
    FREE = "free"  # nobody has it yet
    WORKING = "working"  # a worker (or, in a blob of one round, the writer) is compressing it
    READY = "ready"  # compressed, held for the writer
    RAW = "raw"  # compressed, but it did not pay: written raw
    PASSED = "passed"  # the writer took it raw before compression was ready


class AheadCompressor:
    """Compresses ``chunks`` on ``workers`` threads ahead of a writer that takes them in order.

    Use as a context manager (it starts and joins the threads); the writer calls
    ``take(i)`` for ``i = 0, 1, ...``. ``estimates[i]`` is the expected compressed size
    of chunk ``i``, which sizes the window of frames compressed ahead.
    """

    def __init__(self, chunks: Sequence[memoryview], estimates: Sequence[int], compress: Compress,
                 *, workers: int, budget: int = BUDGET):
        self._chunks = chunks
        self._compress = compress
        self._n = len(chunks)
        self._workers = max(0, min(workers, self._n - 1))  # a frame alone: the writer compresses it
        round_frames = workers + 1  # a frame per worker and one for the writer
        self._budget = budget
        # The window holds what the budget can once the frames in flight are counted.
        in_flight = self._workers * max((c.nbytes for c in chunks), default=0)
        self._window = max(budget - in_flight, budget // 4)
        # A blob whose frames make one round is compressed whole, waiting about one
        # frame's time; a larger one never waits.
        self._head = self._n if self._n <= round_frames else 0
        self._prefix = list(accumulate(estimates, initial=0))
        self._state = [_State.FREE] * self._n
        self._results: dict[int, bytes] = {}
        self._held = 0  # bytes of finished frames waiting for the writer, plus frames in flight
        self._next = 0  # the next frame the writer takes
        self._stop = False
        self._error: BaseException | None = None
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        #: Frames compressed but taken raw because the writer got there first.
        self.wasted = 0

    def __enter__(self) -> AheadCompressor:
        for _ in range(self._workers):
            t = threading.Thread(target=self._work, name="headwater-zstd", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        for t in self._threads:
            t.join()
        self._results.clear()

    # -- the writer ----------------------------------------------------------------

    def take(self, i: int) -> bytes | None:
        """Frame ``i``'s compressed bytes, or ``None``: write the chunk raw. Never waits,
        except in a blob of one round of frames (at most one frame's compression)."""
        with self._cv:
            if i != self._next:
                raise AssertionError(f"frames are taken in order: expected {self._next}, got {i}")
            if self._error is not None:
                raise self._error
            mine = False
            if i < self._head:
                while self._state[i] is _State.WORKING:
                    self._cv.wait()
                if self._state[i] is _State.FREE:  # the writer compresses this one itself
                    self._state[i] = _State.WORKING
                    mine = True
            if not mine:
                state = self._state[i]
                data = None
                if state is _State.READY:
                    data = self._results.pop(i)
                    self._held -= len(data)
                elif state is not _State.RAW:
                    if state is _State.WORKING:
                        self.wasted += 1
                    self._state[i] = _State.PASSED
                self._advance(i)
                return data
        data = self._compress(self._chunks[i])
        with self._cv:
            self._state[i] = _State.READY if data is not None else _State.RAW
            self._advance(i)
        return data

    def _advance(self, i: int) -> None:
        self._next = i + 1
        self._cv.notify_all()

    # -- the workers ---------------------------------------------------------------

    def _limit(self, nxt: int) -> int:
        """One past the last frame of the window: frames from ``nxt`` whose estimated
        compressed sizes fit the budget (at least one), and at first only as many frames
        ahead as the writer has written plus a few: a slow writer then finds its next
        frames compressed at once, and a fast one soon leaves enough room ahead."""
        fits = bisect_right(self._prefix, self._prefix[nxt] + self._window) - 1
        return max(nxt + 1, min(fits, 2 * nxt + 2 * self._workers + 1))

    def _claim(self) -> int | None:
        """The frame to compress next (marked WORKING, its size reserved), or ``None``."""
        nxt = self._next
        if nxt >= self._n:
            return None
        if self._head:  # a blob of one round: every frame, lowest first
            order: range = range(nxt, self._n)
        else:  # the far end of the window first
            order = range(min(self._n, self._limit(nxt)) - 1, nxt - 1, -1)
        choice = next((i for i in order if self._state[i] is _State.FREE), None)
        if choice is None:
            return None
        size = self._chunks[choice].nbytes
        if self._held and self._held + size > self._budget:
            return None  # wait for the writer to drain finished frames
        self._state[choice] = _State.WORKING
        self._held += size  # in flight: at most the chunk's size is kept
        return choice

    def _work(self) -> None:
        if not self._head:
            _yield_cpu()
        while True:
            with self._cv:
                i = self._claim()
                while i is None:
                    if self._stop or self._next >= self._n:
                        return
                    self._cv.wait()
                    i = self._claim()
            chunk = self._chunks[i]
            try:
                data = self._compress(chunk)
            except BaseException as e:  # surfaced by the writer's next take()
                with self._cv:
                    self._error = self._error or e
                    self._held -= chunk.nbytes
                    self._state[i] = _State.RAW
                    self._cv.notify_all()
                return
            with self._cv:
                self._held -= chunk.nbytes
                if self._state[i] is _State.PASSED:
                    pass  # the writer took it raw meanwhile (counted as wasted)
                elif data is None:
                    self._state[i] = _State.RAW
                else:
                    self._state[i] = _State.READY
                    self._results[i] = data
                    self._held += len(data)
                self._cv.notify_all()


def _yield_cpu() -> None:
    """Lower this thread's priority to the lowest (Linux: nice is per thread), so that
    compressing ahead only uses CPU that nothing else wants."""
    if sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except OSError:
        pass


class ForcedFrames:
    """The writer's frame choices made by ``choose(part, frame)`` instead of by timing (a
    test hook, and the benchmark's "compress everything"): chosen frames are compressed on
    ``workers`` threads in writing order, at most ``workers + 1`` ahead, and the writer
    waits for each; the others are written raw. With every frame chosen this is the
    writer before compression went ahead of it, byte for byte."""

    def __init__(self, where: Sequence[tuple[int, int]], chunks: Sequence[memoryview], compress: Compress,
                 choose: Callable[[int, int], bool], *, workers: int):
        self._chunks, self._compress = chunks, compress
        self._chosen = [i for i, (part, frame) in enumerate(where) if choose(part, frame)]
        self._workers = max(1, min(workers, len(self._chosen)))
        self._pool: Any = None
        self._pending: deque[tuple[int, Any]] = deque()
        self._feed = iter(self._chosen)

    def __enter__(self) -> ForcedFrames:
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="headwater-zstd")
        for i in islice(self._feed, self._workers + 1):
            self._pending.append((i, self._pool.submit(self._compress, self._chunks[i])))
        return self

    def __exit__(self, *exc: Any) -> None:
        for _, fut in self._pending:
            fut.cancel()
        self._pool.shutdown(wait=True)

    def take(self, i: int) -> bytes | None:
        if not self._pending or self._pending[0][0] != i:
            return None
        _, fut = self._pending.popleft()
        for j in islice(self._feed, 1):
            self._pending.append((j, self._pool.submit(self._compress, self._chunks[j])))
        return fut.result()  # type: ignore[no-any-return]


def window_estimates(sizes: Sequence[int], ratios: Sequence[float]) -> list[int]:
    """Expected compressed size of each frame: its size times its part's sampled ratio."""
    return [int(n * max(r, _MIN_RATIO)) + 64 for n, r in zip(sizes, ratios, strict=True)]


__all__ = ["BUDGET", "AheadCompressor", "ForcedFrames", "window_estimates"]
