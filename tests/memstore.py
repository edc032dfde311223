"""An in-memory ObjectStore with no directories anywhere (test helper): code that
works against it assumes nothing about the store beyond the ObjectStore interface."""

from __future__ import annotations

import io
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import BinaryIO

from headwater import plugins as hw_plugins
from headwater.plugins import PluginKind
from headwater.store.objects import Data, ObjectStore


class MemoryObjectStore(ObjectStore):
    """Objects in a dict keyed by their full key; ``url`` is the URL it was opened with."""

    def __init__(self, url: str = "mem://test"):
        self.url = url
        self.objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, key: str, data: Data | Sequence[Data]) -> bool:
        parts = (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data
        blob = b"".join(bytes(p) for p in parts)
        with self._lock:
            if key in self.objects:
                return False
            self.objects[key] = blob
            return True

    @contextmanager
    def _writer(self, key: str) -> Iterator[BinaryIO]:
        buf = io.BytesIO()
        yield buf
        self.put(key, buf.getvalue())

    def open_writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self._writer(key)

    def get(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return key in self.objects

    def local_path(self, key: str) -> str:
        data = self.get(key)
        fd, path = tempfile.mkstemp(prefix="memstore-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def list_dir(self, prefix: str) -> list[str]:
        base = prefix.strip("/")
        base = f"{base}/" if base else ""
        return sorted({k[len(base):].split("/", 1)[0] for k in self.objects if k.startswith(base)})

    def iter_keys(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[str]:
        base = prefix.strip("/")
        base = f"{base}/" if base else ""
        with self._lock:
            keys = sorted(k for k in self.objects if k.startswith(base) and (start_after is None or k > start_after))
        yield from keys

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(key, None)


def serve_mem_scheme(monkeypatch) -> dict[str, MemoryObjectStore]:
    """Serve ``mem://...`` roots with MemoryObjectStore, one store per URL, as an installed
    ``headwater.object_stores`` plugin would (undone by ``monkeypatch``); returns the stores by URL."""
    stores: dict[str, MemoryObjectStore] = {}

    def factory(url: str) -> MemoryObjectStore:
        return stores.setdefault(url, MemoryObjectStore(url))

    monkeypatch.setitem(hw_plugins._loaded, (PluginKind.OBJECT_STORE, "mem"), factory)
    return stores
