"""The files a run writes its id into (``--run-id-file``, ``--runner-attribute-file``;
orchestration layer): their paths are checked before the run starts, and the text
is written so that a reader never sees part of it.
"""

from __future__ import annotations

import errno
import os
import stat

from ..exceptions import HeadwaterException
from ..store.roots import is_local_root, normalize_root


class RunIdFileError(HeadwaterException):
    """A ``--run-id-file`` (or ``--runner-attribute-file``) path cannot take the run id."""

    headline = "Cannot write the run id file"


def check_run_id_file(path: str, *, option: str, datastore_root: str) -> None:
    """Refuse a path the run could not write its id to, before the run starts.

    Refused: a path inside the datastore (it would replace a file the store owns,
    such as ``index.sqlite``), a directory, a parent that is not a directory or
    cannot be created, and a file or directory this process may not write. A
    missing parent directory is created, as the write would create it.

    Raises
    ------
    RunIdFileError
        The path cannot take the run id; the message names ``option`` and the path.
    """
    full = os.path.realpath(path)
    # Only a local store can contain a local file; a URL root (s3://...) never does.
    root = os.path.realpath(normalize_root(datastore_root)) if is_local_root(datastore_root) else None
    if root is not None and os.path.commonpath([full, root]) == root:
        raise RunIdFileError(
            f"{option} {path!r} is inside the datastore {datastore_root}: writing it would damage the store.",
            hint="Write the run id to a file outside the datastore.",
        )
    try:
        st = os.stat(full)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise _error(option, path, e) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise RunIdFileError(f"{option} {path!r} is a directory.", hint="Name a file to write the run id to.")
    if st is not None and not stat.S_ISREG(st.st_mode):
        if not os.access(full, os.W_OK):  # a FIFO or device, written in place
            raise _error(option, path, OSError(errno.EACCES, os.strerror(errno.EACCES)))
        return
    parent = os.path.dirname(full)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise _error(option, path, e) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _error(option, path, OSError(errno.EACCES, f"cannot create files in {parent}"))
    fs = os.statvfs(parent)
    if fs.f_bfree == 0 or (fs.f_bavail == 0 and os.geteuid() != 0):
        raise _error(option, path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))


def write_run_id_file(path: str, text: str, *, option: str) -> None:
    """Write ``text`` (the run id, or the Runner's attribute JSON) to ``path``.

    A regular file is written to a temp file and renamed, so a reader never sees
    a partial text; a FIFO (or other special file) is written in place.

    Raises
    ------
    RunIdFileError
        The write failed (a full device, a directory that vanished since the check).
    """
    try:
        try:
            special = not stat.S_ISREG(os.stat(path).st_mode)
        except FileNotFoundError:
            special = False
        if special:
            with open(path, "w") as f:
                f.write(text)
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            _remove_quietly(tmp)
            raise
    except OSError as e:
        raise _error(option, path, e) from None


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _error(option: str, path: str, e: OSError) -> RunIdFileError:
    why = "no space left on the device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    return RunIdFileError(f"{option} {path!r} cannot be written: {why}.",
                          hint="Name a file in a directory you can write to, on a device with free space.")


__all__ = ["RunIdFileError", "check_run_id_file", "write_run_id_file"]
