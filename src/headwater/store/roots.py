"""Datastore roots: a local directory or a ``scheme://...`` URL (internal).

The one place that decides what a root names. A local path is made absolute here
(and only here); a URL is kept exactly as given, since its meaning belongs to the
object store that serves its scheme.
"""

from __future__ import annotations

import hashlib
import os

#: The scheme that names a local directory explicitly (``file:///abs/dir``).
FILE_SCHEME = "file"


def url_scheme(root: str | os.PathLike[str]) -> str | None:
    """The scheme of ``root`` if it is a URL other than ``file://``, else None (a local path)."""
    scheme, sep, _ = os.fspath(root).partition("://")
    if not sep or scheme == FILE_SCHEME:
        return None
    return scheme


def is_local_root(root: str | os.PathLike[str]) -> bool:
    """Whether ``root`` names a local directory (a path or a ``file://`` URL)."""
    return url_scheme(root) is None


def normalize_root(root: str | os.PathLike[str], cwd: str | None = None) -> str:
    """``root`` as the datastore records it: an absolute path for a local directory
    (``file://`` stripped; a relative path starts at ``cwd``, default the current
    directory), the URL unchanged otherwise.

    Examples
    --------
    >>> normalize_root("s3://bucket/prefix")
    's3://bucket/prefix'
    >>> normalize_root("file:///tmp/x")
    '/tmp/x'
    """
    text = os.fspath(root)
    if url_scheme(text) is not None:
        return text
    if text.startswith(f"{FILE_SCHEME}://"):
        text = text[len(FILE_SCHEME) + 3:]
    return os.path.abspath(os.path.join(cwd, text) if cwd is not None else text)


def state_dir(home: str, kind: str, identity: str) -> str:
    """The local directory ``$HEADWATER_HOME/<kind>/<digest>`` where this machine keeps state
    of ``kind`` (``index``, ``spool``) about the store named ``identity`` (``ObjectStore.identity``)."""
    digest = hashlib.sha256(identity.rstrip("/").encode()).hexdigest()[:16]
    return os.path.join(home, kind, digest)
