"""The storage layer (internal): object stores, content-addressed blobs, the
artifact codec and run/attempt records, behind one ``Datastore`` facade.
"""

from __future__ import annotations

import os

from .content import ContentStore
from .objects import LocalObjectStore, ObjectStore
from .records import RecordStore

__all__ = ["ContentStore", "Datastore", "LocalObjectStore", "ObjectStore", "RecordStore"]


class Datastore:
    """A datastore root: its object store, content store and record store.

    Parameters
    ----------
    root : str
        The datastore directory (created lazily on first write).

    Examples
    --------
    >>> ds = Datastore("/tmp/hw-doc")
    >>> ref = ds.content.save([1, 2, 3])
    >>> ds.content.load(ref)
    [1, 2, 3]
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.objects = LocalObjectStore(root)
        self.root: str = self.objects.root
        self.content = ContentStore(self.objects)
        self.records = RecordStore(self.objects)

    def log_path(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        """Absolute path of a task attempt's log file; its directory is created."""
        path = self.objects.path(RecordStore.log_key(flow, run_id, step, task_id, attempt, stream))
        self.objects._ensure_dir(path.rpartition("/")[0])
        return path

    def __repr__(self) -> str:
        return f"Datastore({self.root!r})"
