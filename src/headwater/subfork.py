"""Calling a function in a short-lived forked child (bottom layer, internal).

For work that must not leave state behind in this process, such as starting a client
library's background threads before this process forks the workers that must not
inherit them. The result (or the exception raised, traceback aside) comes back
pickled through a pipe.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def call_in_child(fn: Callable[[], T], *, what: str = "a helper process") -> T:
    """``fn()``, run in a forked child; where ``fork`` does not exist, run here.

    Raises what ``fn`` raised (unpickled), or ``RuntimeError`` naming ``what`` if the
    child died without answering.
    """
    if not hasattr(os, "fork"):
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
        raise RuntimeError(f"{what} died before it answered (wait status {status}).")
    ok, value = pickle.loads(data)
    if ok:
        return value  # type: ignore[return-value]
    raise value  # type: ignore[misc]
