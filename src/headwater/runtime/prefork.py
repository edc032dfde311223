"""Reading a remote store before the fork pool's zygote exists (runtime, internal).

The local launcher forks every task from a zygote that the run process forks first. An
S3 client (obstore) runs a multi-threaded Tokio runtime that does not survive ``fork``:
a child of a process that has used it hangs on its first request. So the run process
must not use such a store until the zygote has been forked. The few reads that must come
earlier (choosing and checking a resume origin, reading its configs) run here in a
short-lived forked child, which sends the result back through a pipe; the run process
itself never starts the client's threads before the zygote is forked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..store import Datastore
from ..subfork import call_in_child

T = TypeVar("T")


def before_fork(ds: Datastore, fn: Callable[[], T]) -> T:
    """``fn()`` (which reads ``ds``), run so that this process can still fork safely.

    For a store whose client is fork-safe (a local directory) this is a plain call.
    Otherwise ``fn`` runs in a forked child (``subfork.call_in_child``).
    """
    if ds.objects.fork_safe:
        return fn()
    return call_in_child(fn, what=f"The process reading {ds.root} before the run started")
