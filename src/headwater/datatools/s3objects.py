"""What the S3 data tools take and return (internal; re-exported by ``headwater.datatools``):
``S3GetObject``, ``S3PutObject``, ``RangeInfo`` and ``S3Object``, with Metaflow's fields.
"""

from __future__ import annotations

import json
import os
from typing import IO, NamedTuple, Union

#: The S3 user-metadata key under which ``metadata=`` dicts are stored, JSON-encoded. It is
#: Metaflow's key, so objects written by either tool carry metadata the other one reads.
USER_ATTRIBUTES_KEY = "metaflow-user-attributes"

#: What ``put``/``put_many`` accept as a value: text (stored as UTF-8), bytes, or a readable,
#: seekable binary file object.
PutValue = Union[str, bytes, bytearray, memoryview, IO[bytes]]


class S3GetObject(NamedTuple):
    """A key to download, optionally only a byte range of it.

    Parameters
    ----------
    key : str
        A key under the S3 root, or a full ``s3://`` URL.
    offset : int, optional
        First byte to read (default 0).
    length : int, optional
        How many bytes to read; None reads to the end, a negative value reads the last
        ``-length`` bytes (``offset`` is then ignored).
    """

    key: str
    offset: int | None
    length: int | None


class S3PutObject(NamedTuple):
    """An object to upload: a ``value`` (``put_many``) or a local ``path`` (``put_files``),
    with an optional MIME type, server-side encryption and JSON-encodable user metadata."""

    key: str
    value: PutValue | None = None
    path: str | None = None
    content_type: str | None = None
    encryption: str | None = None
    metadata: dict | None = None


class RangeInfo(NamedTuple):
    """Which bytes of an object a download holds: the object's ``total_size``, and the
    ``request_offset`` and ``request_length`` that were fetched."""

    total_size: int
    request_offset: int = 0
    request_length: int = -1


class S3Object:
    """An object (or a prefix) in S3, with an optional local copy of its content.

    Returned by the methods of :class:`headwater.S3`; not created by users. ``path``,
    ``blob`` and ``text`` read the local copy, which is deleted when the ``S3`` scope
    closes.
    """

    __slots__ = ("_url", "_key", "_prefix", "_path", "_size", "_content_type", "_metadata", "_range_info",
                 "_last_modified", "_encryption")

    def __init__(self, prefix: str | None, url: str, path: str | None, size: int | None = None,
                 content_type: str | None = None, metadata: dict[str, str] | None = None,
                 range_info: RangeInfo | None = None, last_modified: float | None = None,
                 encryption: str | None = None) -> None:
        self._url = url
        self._path = path
        self._size = os.stat(path).st_size if path else size
        self._content_type = content_type
        raw = (metadata or {}).get(USER_ATTRIBUTES_KEY)
        self._metadata = json.loads(raw) if raw is not None else None
        if range_info is not None and (range_info.request_length is None or range_info.request_length < 0):
            range_info = RangeInfo(range_info.total_size, range_info.request_offset, range_info.total_size)
        self._range_info = range_info
        self._last_modified = last_modified
        self._encryption = encryption
        if prefix is None or prefix == url:
            self._key, self._prefix = url, None
        else:
            self._key, self._prefix = url[len(prefix.rstrip("/")) + 1:].rstrip("/"), prefix

    @property
    def exists(self) -> bool:
        """True if this is an object in S3 (False for a missing key or a prefix)."""
        return self._size is not None

    @property
    def downloaded(self) -> bool:
        """True if the content was downloaded (``path``, ``blob`` and ``text`` are set)."""
        return bool(self._path)

    @property
    def url(self) -> str:
        """The object's ``s3://`` URL."""
        return self._url

    @property
    def prefix(self) -> str | None:
        """The prefix (root or listed prefix) ``key`` is relative to; None for full URLs."""
        return self._prefix

    @property
    def key(self) -> str:
        """The key as requested: relative to ``prefix``, or the full URL."""
        return self._key

    @property
    def path(self) -> str | None:
        """The local file holding the downloaded content, or None."""
        return self._path

    @property
    def blob(self) -> bytes | None:
        """The downloaded content as bytes, or None if not downloaded."""
        if not self._path:
            return None
        with open(self._path, "rb") as f:
            return f.read()

    @property
    def text(self) -> str | None:
        """The downloaded content decoded as UTF-8 (invalid bytes replaced), or None."""
        blob = self.blob
        return None if blob is None else blob.decode("utf-8", errors="replace")

    @property
    def size(self) -> int | None:
        """Size in bytes (of the downloaded range for a range read); None if missing."""
        return self._size

    @property
    def has_info(self) -> bool:
        """True if content type, metadata, range info or encryption are known."""
        return any(v is not None for v in (self._content_type, self._metadata, self._range_info, self._encryption))

    @property
    def metadata(self) -> dict | None:
        """The user metadata stored with ``metadata=``, or None."""
        return self._metadata

    @property
    def content_type(self) -> str | None:
        """The object's MIME type, or None if not fetched."""
        return self._content_type

    @property
    def encryption(self) -> str | None:
        """The server-side encryption the object was written with, when known."""
        return self._encryption

    @property
    def range_info(self) -> RangeInfo | None:
        """For a download: the object's total size and the offset and length fetched."""
        return self._range_info

    @property
    def last_modified(self) -> float | None:
        """Last modification time as a Unix timestamp, or None if not fetched."""
        return self._last_modified

    def __str__(self) -> str:
        if self._path:
            return f"<S3Object {self._url} ({self._size} bytes, local)>"
        if self._size:
            return f"<S3Object {self._url} ({self._size} bytes, in S3)>"
        return f"<S3Object {self._url} (object does not exist)>"

    __repr__ = __str__


__all__ = ["PutValue", "RangeInfo", "S3GetObject", "S3Object", "S3PutObject", "USER_ATTRIBUTES_KEY"]
