"""What an upload reads from (internal): ``put`` values (text, bytes, binary file objects)
and ``put_files`` paths, checked up front so a bad value fails before anything is sent.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import HeadwaterS3Exception, HeadwaterS3NotFound
from .s3objects import USER_ATTRIBUTES_KEY


class HeadwaterS3InvalidObject(HeadwaterS3Exception):
    """A ``put`` value that is neither text, bytes nor a readable, seekable binary file
    (Metaflow: ``MetaflowS3InvalidObject``)."""

    headline = "Not a string-like object"


@dataclass(frozen=True, slots=True)
class Upload:
    """One object to upload: the URL, what to read (bytes, a local file or a file object),
    its size and the S3 attributes (content type, user metadata)."""

    key: str
    url: str
    source: Any  # bytes | memoryview | Path | IO[bytes]
    size: int
    attributes: dict[str, str]
    encryption: str | None


def attributes(content_type: str | None, metadata: dict | None) -> dict[str, str]:
    """The obstore attributes for a MIME type and a JSON-encodable user metadata dict."""
    attrs: dict[str, str] = {}
    if content_type:
        attrs["Content-Type"] = content_type
    if metadata:
        attrs[USER_ATTRIBUTES_KEY] = json.dumps(metadata)
    return attrs


def value_source(key: str, value: Any) -> tuple[Any, int]:
    """``(source, size)`` for a ``put`` value: text as UTF-8, bytes-like as is, a file object
    from its current start (it must be readable and seekable)."""
    if isinstance(value, str):
        data = value.encode("utf-8")
        return data, len(data)
    if isinstance(value, (bytes, bytearray, memoryview)):
        view = memoryview(value).cast("B")
        return view, view.nbytes
    if isinstance(value, (io.RawIOBase, io.BufferedIOBase)) or (hasattr(value, "read") and hasattr(value, "seek")):
        try:
            ok = value.readable() and value.seekable()
        except (AttributeError, ValueError, OSError):
            ok = False
        if not ok:
            raise HeadwaterS3InvalidObject(f"The value for the key {key!r} is a file object that is not readable "
                                           "and seekable.", hint="Open the file in 'rb' mode, or pass bytes.")
        size = value.seek(0, os.SEEK_END)
        value.seek(0)
        return value, size
    raise HeadwaterS3InvalidObject(
        f"The value for the key {key!r} is of type {type(value).__name__}, not a string or a bytes object.",
        hint="Pass str, bytes or a binary file object; pickle or serialize other values first.")


def file_source(key: str, path: Any) -> tuple[Path, int]:
    """``(path, size)`` for a ``put_files`` entry; a missing file is an error naming it."""
    p = Path(os.fspath(path))
    try:
        return p, p.stat().st_size
    except FileNotFoundError:
        raise HeadwaterS3NotFound(f"Local file not found: {str(p)!r} (to upload as {key!r}).",
                                  hint="Check the path; put_files uploads existing local files.") from None


__all__ = ["HeadwaterS3InvalidObject", "Upload", "attributes", "file_source", "value_source"]
