"""Task logs through the object store (storage layer, internal).

A task writes its stdout and stderr to local files as it runs. When the datastore is
local those files *are* the logs (``<attempt>.stdout`` in the store). When it is remote
(S3), a ``LogPump`` ships each growing file to the store from the machine the task runs
on: every ``interval`` seconds the bytes added since the last shipment become one chunk
object, ``<log key>.part/<seq>``, and when the task ends the whole file becomes the
complete object under the log key itself (then the chunks are removed). So a reader on
any machine sees a running task's output within about a second and the complete log
once the task is done:

- ``read_log`` gives the complete object if there is one, else the chunks so far;
- ``StoreLogTail`` gives the console the bytes that are new since its last call.

Every object is written create-only, so a shipment that is repeated after a crash can
never change bytes a reader has already seen.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

from .objects import ObjectStore

#: Suffix of the "directory" that holds a log's chunks while the task runs.
CHUNKS_SUFFIX = ".part"
#: Seconds between shipments of a growing log.
SHIP_INTERVAL = 1.0
# Chunk names are zero-padded sequence numbers, so names sort in shipping order.
_SEQ_DIGITS = 8


def chunk_prefix(key: str) -> str:
    """The prefix under which the chunks of the log ``key`` are stored."""
    return key + CHUNKS_SUFFIX


def chunk_key(key: str, seq: int) -> str:
    """The key of chunk number ``seq`` (from 0) of the log ``key``."""
    return f"{chunk_prefix(key)}/{seq:0{_SEQ_DIGITS}d}"


def _chunk_names(objects: ObjectStore, key: str) -> list[str]:
    return [n for n in objects.list_dir(chunk_prefix(key)) if n.isdigit()]


def read_log(objects: ObjectStore, key: str) -> bytes:
    """The log's bytes: the complete object once the task has ended, else the chunks
    shipped so far (``b""`` when there are none)."""
    try:
        return objects.get(key)
    except KeyError:
        pass
    parts = []
    names = _chunk_names(objects, key)
    for name in names:
        try:
            parts.append(objects.get(f"{chunk_prefix(key)}/{name}"))
        except KeyError:  # the chunks were just replaced by the complete object
            break
    else:
        if names:
            return b"".join(parts)
    try:  # no chunks (or one vanished): the task may have ended since the first look
        return objects.get(key)
    except KeyError:
        return b"".join(parts)


class StoreLogTail:
    """The console's view of a log shipped to the store: ``read_new`` returns the bytes
    added since its previous call.

    Parameters
    ----------
    objects : ObjectStore
        The store the log is shipped to.
    key : str
        The log's key.
    min_interval : float
        Seconds between two looks at the store (each look is a listing request);
        ``read_new(final=True)`` always looks.
    """

    def __init__(self, objects: ObjectStore, key: str, min_interval: float = 0.5) -> None:
        self.objects = objects
        self.key = key
        self.min_interval = min_interval
        self._offset = 0  # bytes already returned
        self._next_seq = 0
        self._last_look = float("-inf")
        self._complete = False

    def read_new(self, final: bool = False) -> bytes:
        """Bytes of the log not returned before (``b""`` if none, or too soon to look again)."""
        if self._complete:
            return b""
        now = time.monotonic()
        if not final and now - self._last_look < self.min_interval:
            return b""
        self._last_look = now
        new = []
        for name in _chunk_names(self.objects, self.key):
            if int(name) < self._next_seq:
                continue
            try:
                data = self.objects.get(f"{chunk_prefix(self.key)}/{name}")
            except KeyError:  # replaced by the complete object meanwhile
                break
            new.append(data)
            self._offset += len(data)
            self._next_seq = int(name) + 1
        if final or not new:
            try:
                whole = self.objects.get(self.key)
            except KeyError:
                return b"".join(new)
            self._complete = True
            seen = self._offset - sum(len(d) for d in new)
            self._offset = len(whole)
            return whole[seen:]
        return b"".join(new)

    def close(self) -> None:
        """Nothing to release (the interface of ``FileTail``)."""


class FileTail:
    """The console's view of a local log file: ``read_new`` returns the bytes appended
    since its previous call."""

    def __init__(self, path: str) -> None:
        self._f = open(path, "a+b")
        self._f.seek(0)

    def read_new(self, final: bool = False) -> bytes:
        return self._f.read() or b""

    def close(self) -> None:
        self._f.close()


#: A long task's chunks come further apart: the gap after chunk ``n`` is
#: ``min(MAX_GAP, interval * (1 + n // CHUNKS_PER_STEP))`` seconds, so an hour of output is
#: a few hundred chunks (to write, and to delete at the end), not thousands.
MAX_GAP = 30.0
CHUNKS_PER_STEP = 10


@dataclass
class _Shipping:
    key: str
    path: str
    sent: int = 0  # bytes of the file shipped as chunks
    seq: int = 0  # the next chunk's number
    last: float = float("-inf")  # time.monotonic() of the last chunk
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished: threading.Event = field(default_factory=threading.Event)  # the complete log is stored


class LogPump:
    """Ships growing local log files to an object store from one background thread.

    ``add(key, path)`` starts shipping a file; ``finish(key)`` has the thread ship what is
    left as the complete object, remove the chunks and the local file, and stop;
    ``close()`` finishes every file and ends the thread. Empty logs write nothing (a reader
    finds no log: ``b""``). A shipment that fails is retried at the next tick; a complete
    object that cannot be written is reported on stderr (the chunks stay readable).

    Parameters
    ----------
    objects : ObjectStore
        Where the logs go.
    interval : float
        Seconds between shipments of new bytes as chunks.
    """

    def __init__(self, objects: ObjectStore, interval: float = SHIP_INTERVAL) -> None:
        self.objects = objects
        self.interval = interval
        self._files: dict[str, _Shipping] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._finishing: list[_Shipping] = []
        self._stop = False
        self._thread: threading.Thread | None = None

    def add(self, key: str, path: str) -> None:
        """Start shipping the file at ``path`` (it may not exist yet) as the log ``key``."""
        with self._lock:
            self._files[key] = _Shipping(key, path)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="headwater-log-pump", daemon=True)
                self._thread.start()

    def finish(self, key: str, *, wait: bool = False) -> None:
        """Have the thread ship the rest of ``key``'s file and its complete object, then
        remove the file; stop shipping it as chunks.

        Parameters
        ----------
        key : str
            The log.
        wait : bool
            Return only once the complete log is stored (a remote task must not report
            before its log is in the store); else return at once (the scheduler never waits).
        """
        with self._lock:
            ship = self._files.pop(key, None)
            if ship is None:
                return
            self._finishing.append(ship)
            inline = self._thread is None or self._stop
        self._wake.set()
        if inline:
            self._finish_pending()
        elif wait:
            ship.finished.wait()

    def close(self) -> None:
        """Finish every file still being shipped and stop the thread (waits for it)."""
        with self._lock:
            self._finishing.extend(self._files.values())
            self._files.clear()
            self._stop = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        self._finish_pending()  # what was queued with no thread to do it

    # -- internals -------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            self._finish_pending()
            with self._lock:
                if self._stop:
                    break
                ships = list(self._files.values())
            now = time.monotonic()
            for ship in ships:
                if now - ship.last < min(MAX_GAP, self.interval * (1 + ship.seq // CHUNKS_PER_STEP)):
                    continue
                try:
                    self._ship_new(ship)
                except Exception:  # a failed shipment is retried at the next tick
                    pass
        self._finish_pending()

    def _finish_pending(self) -> None:
        while True:
            with self._lock:
                if not self._finishing:
                    return
                ship = self._finishing.pop(0)
            try:
                self._finish(ship)
            except Exception as e:  # the run goes on; the chunks shipped so far stay readable
                print(f"headwater: could not store the log {ship.key} in {self.objects.url}: {e}", file=sys.stderr)
            finally:
                ship.finished.set()

    def _read_from(self, ship: _Shipping) -> bytes:
        try:
            with open(ship.path, "rb") as f:
                f.seek(ship.sent)
                return f.read()
        except FileNotFoundError:
            return b""

    def _ship_new(self, ship: _Shipping) -> None:
        with ship.lock:
            if ship.done:
                return
            data = self._read_from(ship)
            if not data:
                return
            ckey = chunk_key(ship.key, ship.seq)
            if not self.objects.put(ckey, data):
                # An earlier try of this chunk was stored though its reply was lost: keep what
                # it holds (readers may have seen it) and ship the bytes after it next.
                data = self.objects.get(ckey)
            ship.seq += 1
            ship.sent += len(data)
            ship.last = time.monotonic()

    def _finish(self, ship: _Shipping) -> None:
        with ship.lock:
            ship.done = True
            try:
                with open(ship.path, "rb") as f:
                    whole = f.read()
            except FileNotFoundError:
                whole = b""
            if whole:
                self.objects.put(ship.key, whole)
            for seq in range(ship.seq):
                self.objects.delete(chunk_key(ship.key, seq))
            try:  # shipped: the spooled copy has done its job
                os.unlink(ship.path)
            except OSError:
                pass


def spool_path(spool_root: str, key: str) -> str:
    """The local file under ``spool_root`` where a task writes the log ``key`` before it is
    shipped: one flat directory per run (``runs/<Flow>/<run>/``, created here) holding
    ``<step>.<task>.<attempt>.<stream>``, so that a run of many tasks leaves no tree of
    empty directories once its files are shipped and removed (``remove_spool_dirs``)."""
    parts = key.split("/")  # runs, <Flow>, <run>, <step>, <task>, <attempt>.<stream>
    path = os.path.join(spool_root, *parts[:3], ".".join(parts[3:]))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return path


def remove_spool_dirs(spool_root: str, flow: str, run_id: str) -> None:
    """Remove a run's spool directory and its empty parents once its logs are shipped
    (files still there, from a task that could not ship them, keep it)."""
    path = os.path.join(spool_root, "runs", flow, run_id)
    while path.startswith(spool_root) and path != spool_root:
        try:
            os.rmdir(path)
        except OSError:
            return
        path = os.path.dirname(path)


__all__ = ["CHUNKS_SUFFIX", "FileTail", "LogPump", "SHIP_INTERVAL", "StoreLogTail", "chunk_key",
           "chunk_prefix", "read_log", "remove_spool_dirs", "spool_path"]
