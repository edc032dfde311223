"""The storage layer (internal): object stores, content-addressed blobs, the
artifact codec and run/attempt records, behind one ``Datastore`` facade.
"""

from __future__ import annotations

import os

from .content import ContentStore
from .objects import LocalObjectStore, ObjectStore
from .records import RecordStore
from .roots import is_local_root, normalize_root, state_dir, url_scheme

__all__ = ["ContentStore", "Datastore", "LocalObjectStore", "ObjectStore", "RecordStore", "is_local_root",
           "normalize_root", "open_object_store"]


#: Object stores built in, by URL scheme: ``"module:Class"``, imported only when a root uses it.
BUILTIN_STORES = {"s3": "headwater.store.s3.objects:S3ObjectStore"}


def open_object_store(root: str | os.PathLike[str]) -> ObjectStore:
    """The object store for ``root``: a local directory, ``s3://bucket/prefix`` (built in), or
    ``scheme://...`` served by the ``headwater.object_stores`` plugin named ``scheme`` (called
    with the URL)."""
    text = os.fspath(root)
    scheme = url_scheme(text)
    if scheme is None:
        return LocalObjectStore(normalize_root(text))
    builtin = BUILTIN_STORES.get(scheme)
    if builtin is not None:
        import importlib

        module, _, cls = builtin.partition(":")
        store_cls: type[ObjectStore] = getattr(importlib.import_module(module), cls)
        return store_cls(text)  # type: ignore[call-arg]
    from ..exceptions import HeadwaterException
    from ..plugins import PluginKind, find_plugin, plugin_names

    factory = find_plugin(PluginKind.OBJECT_STORE, scheme)
    if not callable(factory):
        known = ", ".join(plugin_names(PluginKind.OBJECT_STORE)) or "none installed"
        raise HeadwaterException(f"No object store handles {text!r} (scheme {scheme!r}).",
                                 hint=f"Install a headwater.object_stores plugin for {scheme!r} "
                                      f"(installed: {known}), or use a local directory.")
    store = factory(text)
    if not isinstance(store, ObjectStore):
        raise HeadwaterException(f"The object store plugin {scheme!r} returned a {type(store).__name__}, "
                                 "not a headwater ObjectStore.", hint="Fix or uninstall the plugin.")
    return store


class Datastore:
    """A datastore root: its object store, content store and record store.

    Parameters
    ----------
    root : str
        The datastore root: a local directory (created lazily on first write) or a
        ``scheme://...`` URL served by an object store plugin. Every datastore is
        made here, so the root alone chooses the store.

    Examples
    --------
    >>> ds = Datastore("/tmp/hw-doc")
    >>> ref = ds.content.save([1, 2, 3])
    >>> ds.content.load(ref)
    [1, 2, 3]
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root: str = normalize_root(root)
        self.objects = open_object_store(self.root)
        self.content = ContentStore(self.objects)
        self.records = RecordStore(self.objects)
        self._spool_root: str | None = None

    def exists(self) -> bool:
        """Whether the datastore has been created (reading never creates one)."""
        return self.objects.root_exists()

    def ensure_local_root(self) -> None:
        """Create the root directory of a local datastore (the index lives there); a no-op for a URL."""
        if is_local_root(self.root):
            os.makedirs(self.root, exist_ok=True)

    @property
    def logs_in_place(self) -> bool:
        """Whether a task's log files are the store's own objects (a local store), so that
        nothing ships them; else they are spooled locally and shipped (``store.logsink``)."""
        return isinstance(self.objects, LocalObjectStore)

    def log_path(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        """Local path of the file a task attempt writes its log to; its directory is created.

        For a local store this is the log object itself; for a remote one a file under the
        local spool directory (``$HEADWATER_HOME/spool/...``) that a ``LogPump`` ships.
        """
        key = RecordStore.log_key(flow, run_id, step, task_id, attempt, stream)
        if isinstance(self.objects, LocalObjectStore):
            path = self.objects.path(key)
            self.objects._ensure_dir(path.rpartition("/")[0])
            return path
        from .logsink import spool_path

        return spool_path(self.spool_root(), key)

    def spool_root(self) -> str:
        """The local directory where logs bound for this (remote) store wait to be shipped
        (worked out once: the scheduler asks for it twice per task)."""
        if self._spool_root is None:
            from ..config import load_settings

            self._spool_root = state_dir(load_settings().home, "spool", self.objects.identity)
        return self._spool_root

    def sweep_temp(self, *, deep: bool = False) -> tuple[int, int]:
        """Remove temp files left by writers that are gone; returns (files, bytes).

        See ``LocalObjectStore.sweep_temp``; a store without temp files (S3) removes none.
        """
        sweep = getattr(self.objects, "sweep_temp", None)
        return sweep(deep=deep) if sweep is not None else (0, 0)

    def __repr__(self) -> str:
        return f"Datastore({self.root!r})"
