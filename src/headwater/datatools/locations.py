"""Where the S3 data tools point (internal): the root an ``S3`` client is built with
(``run=``, ``s3root=`` or none) and how a key or ``S3GetObject`` becomes a URL and a range.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from ..exceptions import HeadwaterS3URLException
from ..flow.current import current, task_datastore_root
from ..store.s3.connect import S3_SCHEME, parse_s3_url

if TYPE_CHECKING:
    from ..config import Settings

_PREFIX = f"{S3_SCHEME}://"
#: Under an S3 datastore root, the prefix ``S3(run=...)`` data lives in (Metaflow's DATATOOLS_SUFFIX).
DATA_SUFFIX = "data"

#: A byte range for one GET: None (the whole object), ``(start, end)`` (end exclusive),
#: ``{"offset": n}`` (from n to the end) or ``{"suffix": n}`` (the last n bytes).
Range = Any


def datatools_root(settings: "Settings") -> str:
    """The root of ``S3(run=...)`` data: ``HEADWATER_DATATOOLS_S3ROOT``, else ``<S3 datastore root>/data``."""
    if settings.datatools_s3root:
        return settings.datatools_s3root
    if settings.datastore_root.startswith(_PREFIX):
        return posixpath.join(settings.datastore_root.rstrip("/"), DATA_SUFFIX)
    raise HeadwaterS3URLException(
        "S3(run=...) needs an S3 root for run data, and none is configured (the datastore is local).",
        hint="Set HEADWATER_DATATOOLS_S3ROOT=s3://bucket/prefix, use an S3 datastore "
             "(HEADWATER_DATASTORE_ROOT=s3://bucket/prefix), or pass S3(s3root='s3://...').")


def run_root(run: Any, settings: "Settings", bucket: str | None, prefix: str | None) -> str:
    """``s3://<bucket>/<prefix>/<Flow>/<run id>`` for a running step's ``self`` or a client ``Run``;
    ``bucket`` and ``prefix`` replace those parts of the configured root."""
    from ..flow.spec import FlowSpec

    root = task_datastore_root() if isinstance(run, FlowSpec) else None
    if root:
        settings = settings.with_(datastore_root=root)
    parsed = parse_s3_url(datatools_root(settings))
    bucket = bucket or parsed.bucket
    prefix = prefix or parsed.key
    if isinstance(run, FlowSpec):
        if not current.is_running_flow:
            raise HeadwaterS3URLException(
                "S3(run=self) was given a flow outside of a running step.",
                hint="Use S3(run=self) inside a step, or S3(run=Run('Flow/run_id')) / S3(s3root=...) elsewhere.")
        flow, run_id = current.flow_name, current.run_id
    else:
        try:
            flow, run_id = run.parent.id, run.id
        except AttributeError:
            raise HeadwaterS3URLException(
                f"S3(run=...) takes a step's self or a client Run, not {type(run).__name__}.",
                hint="Pass run=self inside a step, or run=Run('Flow/run_id').") from None
    key = posixpath.join(prefix.strip("/"), str(flow), str(run_id)).strip("/")
    return f"{_PREFIX}{bucket}/{key}"


def explicit_root(s3root: str) -> str:
    """``s3root=`` checked and without a trailing ``/``."""
    if not isinstance(s3root, str) or not s3root.startswith(_PREFIX):
        raise HeadwaterS3URLException(f"s3root={s3root!r} is not an S3 URL.",
                                      hint="Write it as s3://bucket/prefix.")
    parse_s3_url(s3root)
    return s3root.rstrip("/")


def key_url(root: str | None, key: Any) -> str:
    """The URL of ``key`` (a string, an ``S3GetObject``/``S3PutObject`` or None) under ``root``."""
    key = getattr(key, "key", key)
    if root is None:
        if isinstance(key, str) and key.startswith(_PREFIX) and "/" in key[len(_PREFIX):]:
            parse_s3_url(key)
            return key
        if current.is_running_flow:
            raise HeadwaterS3URLException(
                f"{key!r} is not a full s3:// URL, and this S3 client has no root.",
                hint="Use S3(run=self) inside a step, or full s3://bucket/key URLs.")
        raise HeadwaterS3URLException(
            f"{key!r} is not a full s3:// URL, and this S3 client has no root.",
            hint="Create the client with S3(s3root='s3://bucket/prefix') or S3(run=...), or use full URLs.")
    if key:
        if not isinstance(key, str):
            raise HeadwaterS3URLException(f"S3 keys are strings, not {type(key).__name__} ({key!r}).")
        if key.startswith(_PREFIX):
            raise HeadwaterS3URLException(
                f"{key!r} is a full URL, but this S3 client has the root {root!r}.",
                hint="Use keys relative to the root, or an S3() client without a root for full URLs.")
        return posixpath.join(root, key.lstrip("/"))
    return root


def key_range(key: Any) -> Range:
    """The byte range an ``S3GetObject`` asks for (None for a plain key or no offset/length)."""
    start = getattr(key, "offset", None)
    length = getattr(key, "length", None)
    if start is None and length is None:
        return None
    start = start or 0
    if length is None:
        return {"offset": start}
    if length < 0:
        return {"suffix": -length}
    return (start, start + length)


__all__ = ["DATA_SUFFIX", "datatools_root", "explicit_root", "key_range", "key_url", "run_root"]
