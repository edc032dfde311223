"""A full datastore (storage layer): the one error every write raises when the disk
(or quota) holding the store has no space left, and how to recognise one.
"""

from __future__ import annotations

import errno
import os

from ..exceptions import HeadwaterException

#: errnos that mean "no space": the disk is full, or the user's quota is.
_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


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


def no_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the store is out of space: a ``StoreFullError``, or an
    ``OSError`` whose errno says the disk (or the user's quota) is full."""
    if isinstance(exc, StoreFullError):
        return True
    return isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS


def free_bytes(root: str) -> int:
    """Bytes an unprivileged writer can still use on ``root``'s file system (a large number if unknown)."""
    try:
        st = os.statvfs(root)
    except (OSError, AttributeError):
        return 1 << 62
    return st.f_bavail * st.f_frsize
