"""A stand-in for ``headwater.store.logsink`` until it lands (storage layer, internal).

Same names and signatures: ``LogShipper(objects, key, path, interval)`` ships a
growing local file as numbered chunks under ``<key>.chunks/`` and the complete
object at ``key`` when it finishes; ``read_log`` returns the complete object or
the chunks so far; ``StoreLogTail.read_new`` returns what arrived since the last call.
Removed once the real module is merged; code imports it through ``logsink_module()``.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any


def logsink_module() -> ModuleType:
    """``headwater.store.logsink`` when present, else this stand-in."""
    try:
        from . import logsink  # type: ignore[attr-defined]
    except ImportError:
        import sys

        return sys.modules[__name__]
    return logsink


def _chunk_key(key: str, n: int) -> str:
    return f"{key}.chunks/{n:08d}"


class LogShipper:
    """Ship the local file ``path`` to ``key`` in ``objects``: chunks every ``interval`` s, whole at the end."""

    def __init__(self, objects: Any, key: str, path: str, interval: float = 1.0) -> None:
        self.objects, self.key, self.path, self.interval = objects, key, path, interval
        self._sent = 0
        self._n = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="headwater-log-shipper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._ship()

    def _ship(self) -> None:
        with open(self.path, "rb") as f:
            f.seek(self._sent)
            data = f.read()
        if data:
            self.objects.put(_chunk_key(self.key, self._n), data)
            self._n += 1
            self._sent += len(data)

    def finish(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with open(self.path, "rb") as f:
            self.objects.put(self.key, f.read())


def read_log(objects: Any, key: str) -> bytes:
    try:
        return objects.get(key)
    except KeyError:
        pass
    names = sorted(objects.list_dir(f"{key}.chunks"))
    return b"".join(objects.get(f"{key}.chunks/{n}") for n in names)


class StoreLogTail:
    """What a shipped log gained since the last ``read_new``."""

    def __init__(self, objects: Any, key: str) -> None:
        self.objects, self.key = objects, key
        self._offset = 0
        self._next_chunk = 0

    def read_new(self) -> bytes:
        try:
            whole = self.objects.get(self.key)
        except KeyError:
            whole = None
        if whole is not None:
            out = whole[self._offset:]
            self._offset = len(whole)
            return out
        out = bytearray()
        while True:
            try:
                data = self.objects.get(_chunk_key(self.key, self._next_chunk))
            except KeyError:
                break
            out += data
            self._next_chunk += 1
        self._offset += len(out)
        return bytes(out)
