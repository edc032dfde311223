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

import os
import pickle
from collections.abc import Callable
from typing import TypeVar

from ..store import Datastore

T = TypeVar("T")


def before_fork(ds: Datastore, fn: Callable[[], T]) -> T:
    """``fn()`` (which reads ``ds``), run so that this process can still fork safely.

    For a store whose client is fork-safe (a local directory) this is a plain call.
    Otherwise ``fn`` runs in a forked child; its return value (or the exception it
    raised, traceback aside) comes back pickled.
    """
    if ds.objects.fork_safe or not hasattr(os, "fork"):
        return fn()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(r)
        code = 0
        try:
            try:
                payload: tuple[bool, object] = (True, fn())
            except BaseException as e:  # noqa: BLE001 - every failure goes back to the parent
                payload = (False, e)
            try:
                data = pickle.dumps(payload)
            except Exception as e:
                data = pickle.dumps((False, RuntimeError(f"{type(e).__name__} while sending a result: {e}")))
            with os.fdopen(w, "wb") as f:
                f.write(data)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"The process reading {ds.root} before the run started died (wait status {status}).")
    ok, value = pickle.loads(data)
    if ok:
        return value  # type: ignore[return-value]
    raise value  # type: ignore[misc]
