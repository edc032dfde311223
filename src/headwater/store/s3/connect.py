"""Connecting to S3 (internal): ``s3://`` URLs, one obstore client per bucket, and the
translation of obstore's errors into headwater's S3 exceptions.

Credentials come from the usual AWS sources (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` via obstore's environment lookup, instance and
web-identity roles). ``HEADWATER_S3_ENDPOINT_URL`` points at an S3-compatible store;
transient errors (throttling, 5xx, dropped connections, timeouts) are retried by obstore
with exponential backoff and jitter, ``HEADWATER_S3_RETRY_COUNT`` times; permanent ones
(no such bucket, access denied, bad credentials) are raised at once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ...exceptions import (HeadwaterException, HeadwaterS3AccessDenied, HeadwaterS3Exception, HeadwaterS3InvalidRange,
                           HeadwaterS3NotFound, HeadwaterS3URLException)

if TYPE_CHECKING:
    from ...config import Settings

S3_SCHEME = "s3"
_PREFIX = f"{S3_SCHEME}://"


@dataclass(frozen=True)
class S3Url:
    """A parsed ``s3://bucket/key`` URL; ``key`` has no leading or trailing ``/``."""

    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"{_PREFIX}{self.bucket}/{self.key}" if self.key else f"{_PREFIX}{self.bucket}"

    def join(self, *parts: str) -> "S3Url":
        """This URL with ``parts`` appended as path segments."""
        keys = [p.strip("/") for p in (self.key, *parts) if p and p.strip("/")]
        return S3Url(self.bucket, "/".join(keys))


def parse_s3_url(url: str) -> S3Url:
    """``s3://bucket/key`` → ``S3Url``; ``HeadwaterS3URLException`` for anything else."""
    if not isinstance(url, str) or not url.startswith(_PREFIX):
        raise HeadwaterS3URLException(f"{url!r} is not an S3 URL.", hint="Write it as s3://bucket/key.")
    bucket, _, key = url[len(_PREFIX):].partition("/")
    if not bucket:
        raise HeadwaterS3URLException(f"{url!r} names no bucket.", hint="Write it as s3://bucket/key.")
    return S3Url(bucket, key.strip("/"))


class S3NotInstalled(HeadwaterException):
    """The S3 support is not installed (obstore, the ``s3`` extra)."""

    headline = "S3 support not installed"


def _obstore() -> Any:
    try:
        import obstore
        import obstore.store
    except ImportError:
        raise S3NotInstalled("Using S3 needs the obstore package, which is not installed.",
                             hint="pip install 'headwater[s3]'") from None
    return obstore


def _settings() -> "Settings":
    from ...config import load_settings

    return load_settings()


_clients: dict[tuple, Any] = {}
_clients_lock = threading.Lock()


def client_config(settings: "Settings") -> dict[str, Any]:
    """The keyword arguments obstore's ``S3Store`` gets for ``settings`` (bucket excluded)."""
    kw: dict[str, Any] = {
        "retry_config": {
            "max_retries": settings.s3_retries,
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=15),
                        "base": 2.0},
            "retry_timeout": timedelta(minutes=3),
        },
        "client_options": {"timeout": timedelta(minutes=5), "connect_timeout": timedelta(seconds=10),
                           "pool_max_idle_per_host": str(max(16, settings.s3_workers))},
    }
    # A conditional multipart copy (CompleteMultipartUpload with If-None-Match): how the S3 object
    # store publishes a large upload create-only (store/s3/objects.py).
    kw["copy_if_not_exists"] = "multipart"
    endpoint = settings.s3_endpoint_url
    if endpoint:
        kw["endpoint"] = endpoint
        if endpoint.startswith("http://"):
            kw["client_options"]["allow_http"] = True
        kw["virtual_hosted_style_request"] = False
    region = settings.s3_region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    kw["region"] = region or "us-east-1"
    return kw


def bucket_client(bucket: str, settings: "Settings | None" = None) -> Any:
    """The obstore ``S3Store`` for ``bucket``, cached per (bucket, endpoint, region, retries)."""
    obstore = _obstore()
    settings = settings or _settings()
    kw = client_config(settings)
    creds = tuple(os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                              "AWS_PROFILE"))
    cache_key = (bucket, kw.get("endpoint"), kw["region"], settings.s3_retries, creds, os.getpid())
    with _clients_lock:
        client = _clients.get(cache_key)
        if client is None:
            client = obstore.store.S3Store(bucket, **kw)
            _clients[cache_key] = client
        return client


def read_url(url: str, settings: "Settings | None" = None) -> bytes:
    """The whole object at ``s3://bucket/key``; HeadwaterS3* errors naming it."""
    loc = parse_s3_url(url)
    client = bucket_client(loc.bucket, settings)
    try:
        return bytes(_obstore().get(client, loc.key).bytes())
    except Exception as e:
        raise translate(e, "GET", loc.bucket, loc.key) from None


def translate(exc: BaseException, op: str, bucket: str, key: str | None = None) -> BaseException:
    """The headwater exception for an obstore error ``exc`` from operation ``op`` on
    ``bucket``/``key`` (``op`` says what was being done, e.g. ``"GET"``, ``"list"``).

    Returns ``exc`` itself when it is not an S3 error of a kind headwater names."""
    obstore = _obstore()
    errors = obstore.exceptions
    text = str(exc)
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    first = text.split("\n", 1)[0][:300]
    if "NoSuchBucket" in text:
        return HeadwaterS3NotFound(f"{op} {where} failed: the bucket {bucket!r} does not exist.",
                                   hint="Create the bucket, or fix the bucket name in the S3 root / URL.")
    if isinstance(exc, (errors.UnauthenticatedError,)) or "InvalidAccessKeyId" in text or \
            "SignatureDoesNotMatch" in text or "ExpiredToken" in text:
        return HeadwaterS3AccessDenied(
            f"{op} {where} failed: the S3 credentials were refused ({first}).",
            hint="Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE (or the instance role).")
    if isinstance(exc, errors.PermissionDeniedError) or "AccessDenied" in text or "403 Forbidden" in text:
        return HeadwaterS3AccessDenied(f"{op} {where} failed: access denied.",
                                       hint="The credentials in use lack permission for this bucket or key.")
    if "InvalidRange" in text or "416" in text.split("\n", 1)[0]:
        return HeadwaterS3InvalidRange(f"{op} {where} failed: the byte range is outside the object.")
    if isinstance(exc, (errors.NotFoundError, FileNotFoundError)):
        return HeadwaterS3NotFound(f"{op} {where} failed: no such key.")
    if isinstance(exc, errors.BaseError) or isinstance(exc, OSError):
        return HeadwaterS3Exception(f"{op} {where} failed: {first}")
    return exc


__all__ = ["S3NotInstalled", "S3Url", "S3_SCHEME", "bucket_client", "client_config", "parse_s3_url", "read_url", "translate"]
