"""A full datastore (storage layer): the one error every write raises when the disk
(or quota) holding the store has no space left, and how to recognise one.
"""

from __future__ import annotations

import errno
import os
import sqlite3

from ..exceptions import HeadwaterException

#: errnos that mean "no space": the disk is full, or the user's quota is.
_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
# Below this many free bytes, a vague SQLite "disk I/O error" is taken to be a full disk.
_NEARLY_FULL = 1 << 20


class StoreFullError(HeadwaterException):
    """No space left on the datastore while saving something.

    Parameters
    ----------
    root : str
        The datastore (its root directory or URL).
    what : str
        What was being saved, in the user's names (``artifact 'x' of step 'start'``).
    """

    headline = "Datastore full"

    def __init__(self, root: str, what: str):
        super().__init__(
            f"No space left on the datastore at {root} while saving {what}.",
            hint="Free space on the disk that holds the datastore (or raise its quota), or point "
            "HEADWATER_DATASTORE_ROOT at a larger one, then run again. Nothing of the failed save "
            "became visible, and read-only commands (headwater runs, logs, dump, the client) keep working.",
        )
        self.root = root
        self.what = what


def no_space(exc: BaseException, root: str | None = None) -> bool:
    """Whether ``exc`` says the store at ``root`` is out of space.

    An ``OSError`` says so by its errno. SQLite reports a full disk as "database or
    disk is full", or only as "disk I/O error" when it cannot grow its shared-memory
    file; the latter counts when ``root``'s file system has (almost) nothing left.
    """
    if isinstance(exc, StoreFullError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc)
        if "disk is full" in text:
            return True
        if "disk I/O error" in text and root is not None:
            return free_bytes(root) < _NEARLY_FULL
    return False


def free_bytes(root: str) -> int:
    """Bytes an unprivileged writer can still use on ``root``'s file system (a large number if unknown)."""
    try:
        st = os.statvfs(root)
    except (OSError, AttributeError):
        return 1 << 62
    return st.f_bavail * st.f_frsize
