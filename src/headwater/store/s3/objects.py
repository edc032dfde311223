"""The S3 object store (storage layer, internal): the keys of a local store, as S3
objects under ``s3://bucket/prefix``, written create-only and read through a local
cache whose files the content store mmaps.

Create-only writes use S3's conditional writes (``If-None-Match: *``). Small objects
are one conditional PUT. Large ones stream as a multipart upload, several parts in
flight, straight from the caller's buffers (or the spooled file of ``open_writer``);
S3 accepts the condition on CompleteMultipartUpload, but obstore does not expose it
for uploads, so a large put first asks whether the key exists (HEAD) and then:

- under ``blobs/`` (content-addressed: every writer of a key writes the same bytes)
  uploads to the key itself. Two writers racing past the HEAD both upload, and the
  second upload replaces identical bytes: the race costs an upload, never data;
- anywhere else uploads to ``tmp/`` and copies to the key with a conditional
  multipart copy (UploadPartCopy, then a CompleteMultipartUpload that fails if the
  key exists), so exactly one writer wins, as for a small put. A server-side copy
  of one part is limited to 5 GiB; larger objects outside ``blobs/`` fall back to
  the HEAD-then-upload race.
"""

from __future__ import annotations

import filecmp
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from ...exceptions import HeadwaterS3InsufficientDiskSpace
from ..full import no_space
from ..objects import DELETE_BATCH, QUARANTINE_DIR, Data, FileId, ObjectStore, check_key, file_id, key_dir
from ..tempfiles import owner_stem
from .cache import ReadCache
from .connect import _obstore, bucket_client, parse_s3_url, translate
from .ranged import PARTIAL, S3RangedObject, fetch_into, open_partial

if TYPE_CHECKING:
    from ...config import Settings

#: Objects up to this size are one (conditional) PUT; larger ones a multipart upload.
SINGLE_PUT_MAX = 8 << 20
#: The smallest part of a multipart upload (S3 allows 5 MiB; larger parts mean fewer requests).
PART_SIZE = 8 << 20
#: S3 allows at most 10,000 parts; parts grow for objects that would need more.
_MAX_PARTS = 9_000
#: The largest object one server-side part copy can take (S3's UploadPartCopy limit).
COPY_PART_MAX = 5 << 30
#: Key prefixes whose keys name their content: any two writers of a key write the same bytes.
CONTENT_ADDRESSED = ("blobs/",)
#: Where uploads that are copied into place live while in flight (like a local store's tmp/).
UPLOAD_DIR = "tmp"
#: Objects larger than this are downloaded as parallel ranged GETs of ``PART_SIZE``.
RANGED_GET_MIN = 16 << 20
# Parts of a spooled file uploaded at once (each is read into memory while in flight).
_FILE_PARTS_IN_FLIGHT = 8
# Downloads are written in pieces of this size (bounded memory for any object size).
_STREAM_CHUNK = 8 << 20


class S3ObjectStore(ObjectStore):
    """Objects under ``s3://bucket/prefix``, with the keys and guarantees of ``LocalObjectStore``.

    Parameters
    ----------
    url : str
        ``s3://bucket`` or ``s3://bucket/prefix``.
    settings : Settings, optional
        Endpoint, region, retries, parallelism and the read cache's home and bound;
        default: ``load_settings()``.

    Examples
    --------
    >>> store = S3ObjectStore("s3://my-bucket/headwater")  # doctest: +SKIP
    >>> store.put("a/b", b"hi"), store.put("a/b", b"again")  # doctest: +SKIP
    (True, False)
    """

    fork_safe = False  # obstore's Tokio runtime does not survive fork (runtime.prefork)

    def __init__(self, url: str, *, settings: "Settings | None" = None):
        if settings is None:
            from ...config import load_settings

            settings = load_settings()
        loc = parse_s3_url(url)
        self.bucket, self.prefix = loc.bucket, loc.key
        self.url = loc.url
        self.settings = settings
        self.cache = ReadCache(os.path.join(settings.home, "cache", "s3"), settings.s3_cache_bytes)
        self._endpoint_tag = _endpoint_tag(settings.s3_endpoint_url)
        self._client_pid: int | None = None
        self._client_obj: Any = None
        # obstore is loaded on first use, not here: a store made before a fork and used only in
        # the children then needs no private copy of obstore there (forksafe.py).
        self._api: Any = None

    @property
    def identity(self) -> str:
        # A bucket name is unique per service only: MinIO's "data" is not AWS's.
        return f"{self.url}@{self._endpoint_tag}"

    # -- plumbing ------------------------------------------------------------

    @property
    def _client(self) -> Any:
        # One client per process: obstore's runtime and connection pool do not survive a fork.
        if self._client_pid != os.getpid():
            self._bind()
        return self._client_obj

    @property
    def _obs(self) -> Any:
        """obstore's API for this process (a private copy in a forked task: forksafe.py)."""
        if self._client_pid != os.getpid():
            self._bind()
        return self._api

    def _bind(self) -> None:
        self._api = _obstore(self.settings)
        self._client_obj = bucket_client(self.bucket, self.settings)
        self._client_pid = os.getpid()

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1:] if self.prefix else full

    def _cache_path(self, key: str) -> str:
        return self.cache.path(self._endpoint_tag, self.bucket, self._full(key))

    def _error(self, exc: BaseException, op: str, key: str | None) -> BaseException:
        full = self._full(key) if key is not None else (self.prefix or None)
        return translate(exc, op, self.bucket, full)

    def _is_missing(self, exc: BaseException) -> bool:
        """Whether ``exc`` says the key is absent (and not the whole bucket)."""
        missing = isinstance(exc, (FileNotFoundError, self._obs.exceptions.NotFoundError))
        return missing and "NoSuchBucket" not in str(exc)

    # -- writes --------------------------------------------------------------

    def put(self, key: str, data: Data | Sequence[Data]) -> bool:
        full = self._full(key)
        parts = (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data
        views = [_bytes_view(p) for p in parts]
        size = sum(v.nbytes for v in views)
        if size <= SINGLE_PUT_MAX:
            body = views[0] if len(views) == 1 else b"".join(views)
            return self._put_small(key, full, body)
        return self._put_large(key, full, _slices(views, _part_size(size)), size)

    def _put_small(self, key: str, full: str, body: Data) -> bool:
        obs = self._obs
        try:
            obs.put(self._client, full, body, mode="create", use_multipart=False)
        except obs.exceptions.AlreadyExistsError:
            return False  # a dedup hit: the existing object stays, nothing more is sent
        except Exception as e:
            raise self._error(e, "PUT", key) from None
        return True

    def _put_large(self, key: str, full: str, source: Any, size: int) -> bool:
        if self._head(key, full):
            return False
        obs = self._obs
        in_flight = max(2, self.settings.s3_workers)
        if isinstance(source, Path):
            # Parts read from a file are buffered in memory while they upload: bound them
            # (8 x 8 MiB). Parts cut from the caller's buffers are views, not copies.
            in_flight = min(in_flight, _FILE_PARTS_IN_FLIGHT)
        opts = {"use_multipart": True, "chunk_size": _part_size(size), "max_concurrency": in_flight}
        if key.startswith(CONTENT_ADDRESSED) or size > COPY_PART_MAX:
            try:
                obs.put(self._client, full, source, **opts)
            except Exception as e:
                raise self._error(e, "PUT (multipart)", key) from None
            return True
        upload = self._full(f"{UPLOAD_DIR}/{owner_stem()}-{secrets.token_hex(8)}")
        try:
            obs.put(self._client, upload, source, **opts)
            try:
                obs.copy(self._client, upload, full, overwrite=False)
            except obs.exceptions.AlreadyExistsError:
                return False
            return True
        except Exception as e:
            raise self._error(e, "PUT (multipart, then conditional copy)", key) from None
        finally:
            try:
                obs.delete(self._client, upload)
            except Exception:
                pass  # an upload left behind is only garbage under tmp/

    @contextmanager
    def _writer(self, key: str) -> Iterator[BinaryIO]:
        full = self._full(key)
        try:
            tmp, f = self.cache.temp()
        except OSError as e:
            raise self._disk_full(e, key) if no_space(e) else e
        try:
            try:
                yield f
                f.flush()
                size = os.fstat(f.fileno()).st_size
                if size <= SINGLE_PUT_MAX:
                    f.seek(0)
                    body = f.read()
            finally:
                f.close()
            if size <= SINGLE_PUT_MAX:
                published = self._put_small(key, full, body)
            else:
                published = self._put_large(key, full, Path(tmp), size)
        except BaseException as e:
            _unlink(tmp)
            if isinstance(e, OSError) and no_space(e):
                raise self._disk_full(e, key) from None
            raise
        if published:
            self.cache.adopt(tmp, self._cache_path(key))  # the next read on this machine downloads nothing
        else:
            _unlink(tmp)

    def open_writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A local temp file (in the read cache's ``tmp/``) uploaded on clean exit, create-only."""
        return self._writer(key)

    def delete(self, key: str) -> None:
        try:
            self._obs.delete(self._client, self._full(key))
        except Exception as e:
            if not self._is_missing(e):
                raise self._error(e, "DELETE", key) from None
        self.cache.discard(self._cache_path(key))
        self.cache.discard(self._cache_path(key) + PARTIAL)

    def delete_many(self, keys: Sequence[str]) -> None:
        """Bulk deletes (DeleteObjects), up to 1,000 keys per request."""
        keys = list(keys)
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                self._obs.delete(self._client, [self._full(k) for k in batch])
            except Exception as e:
                if not self._is_missing(e):
                    raise self._error(e, "DELETE", batch[0]) from None
            for key in batch:
                path = self._cache_path(key)
                self.cache.discard(path)
                self.cache.discard(path + PARTIAL)

    # -- reads ---------------------------------------------------------------

    def _head(self, key: str, full: str) -> bool:
        try:
            self._obs.head(self._client, full)
        except Exception as e:
            if self._is_missing(e):
                return False
            raise self._error(e, "HEAD", key) from None
        return True

    def exists(self, key: str) -> bool:
        return self._head(key, self._full(key))

    def get(self, key: str) -> bytes:
        full = self._full(key)
        try:
            return bytes(self._obs.get(self._client, full).bytes())
        except Exception as e:
            if self._is_missing(e):
                raise KeyError(key) from None
            raise self._error(e, "GET", key) from None

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"Invalid byte range start={start}, length={length} for {key!r}.")
        full = self._full(key)
        if length == 0:
            if not self._head(key, full):
                raise KeyError(key)
            return b""
        obs = self._obs
        try:
            return bytes(obs.get_range(self._client, full, start=start, length=length))
        except Exception as e:
            if self._is_missing(e):
                raise KeyError(key) from None
            text = str(e)
            if "InvalidRange" in text or "416" in text or "Range" in type(e).__name__:
                return self._clipped_range(key, full, start, length)
            raise self._error(e, "GET (range)", key) from None

    def _object_size(self, key: str, full: str) -> int:
        """The object's size (a HEAD); ``KeyError`` if it does not exist."""
        try:
            return int(self._obs.head(self._client, full)["size"])
        except Exception as e:
            if self._is_missing(e):
                raise KeyError(key) from None
            raise self._error(e, "HEAD", key) from None

    def _clipped_range(self, key: str, full: str, start: int, length: int) -> bytes:
        """A range that runs past the end of the object: what the object has of it."""
        size = self._object_size(key, full)
        end = min(size, start + length)
        if start >= end:
            return b""
        try:
            return bytes(self._obs.get_range(self._client, full, start=start, end=end))
        except Exception as e:
            raise self._error(e, "GET (range)", key) from None

    def local_path(self, key: str) -> str:
        """The object downloaded into the read cache (a hit downloads nothing)."""
        path = self._cache_path(key)
        hit = self.cache.lookup(path)
        return hit if hit is not None else self._download(key, path)

    def open_ranged(self, key: str) -> S3RangedObject:
        """The object whole from the read cache when it is there, else a sparse cache file
        (``<cached path>.partial``) filled by ranged GETs of what the reader asks for."""
        path = self._cache_path(key)
        full = self._full(key)
        hit = self.cache.lookup(path)
        fd = -1
        if hit is not None:  # cached whole: every range is present (``again`` still fetches anew)
            try:
                fd = os.open(hit, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
                size = os.fstat(fd).st_size
            except OSError:
                fd = -1  # evicted just now, or a read-only cache: read by range
        hit_fd = fd >= 0
        if fd < 0:
            size = self._object_size(key, full)
            partial = self.cache.lookup(path + PARTIAL) or path + PARTIAL
            try:
                fd = open_partial(partial, size)
            except OSError as e:
                if no_space(e):
                    raise self._disk_full(e, key) from None
                raise self._error(e, "GET (range)", key) from None

        def fetch(start: int, end: int) -> Any:
            try:
                return self._obs.get_range(self._client, full, start=start, end=end)
            except Exception as e:
                if self._is_missing(e):
                    raise KeyError(key) from None
                raise self._error(e, "GET (range)", key) from None

        workers = max(1, min(self.settings.s3_workers, _FILE_PARTS_IN_FLIGHT))
        return S3RangedObject(fd, size, f"s3://{self.bucket}/{full}", fetch=fetch, piece=PART_SIZE,
                              workers=workers, account=self.cache.account,
                              disk_full=lambda e: self._disk_full(e, key), whole=hit_fd)

    def _download(self, key: str, path: str) -> str:
        obs = self._obs
        full = self._full(key)
        try:
            result = obs.get(self._client, full)
            size = int(result.meta["size"])
        except Exception as e:
            if self._is_missing(e):
                raise KeyError(key) from None
            raise self._error(e, "GET", key) from None

        def write(f: BinaryIO) -> None:
            if size <= RANGED_GET_MIN:
                for chunk in result.stream(min_chunk_size=_STREAM_CHUNK):
                    f.write(chunk)
            else:  # one stream is slow on S3: fetch parts in parallel, written in place
                self._ranged_download(full, f.fileno(), size)

        try:
            return self.cache.fill(path, write)
        except OSError as e:
            if no_space(e):
                raise self._disk_full(e, key) from None
            if isinstance(e, FileNotFoundError) and e.filename is not None:
                raise
            raise self._error(e, "GET", key) from None
        except Exception as e:
            raise self._error(e, "GET", key) from None

    def _ranged_download(self, full: str, fd: int, size: int) -> None:
        """Write the object's ``size`` bytes to ``fd`` with ranged GETs of ``PART_SIZE``, a few at
        a time (memory: at most ``_FILE_PARTS_IN_FLIGHT`` parts)."""
        obs, client = self._obs, self._client
        os.ftruncate(fd, size)
        workers = max(1, min(self.settings.s3_workers, _FILE_PARTS_IN_FLIGHT))
        fetch_into(fd, 0, size, lambda start, end: obs.get_range(client, full, start=start, end=end), PART_SIZE, workers)

    def _disk_full(self, exc: OSError, key: str) -> HeadwaterS3InsufficientDiskSpace:
        return HeadwaterS3InsufficientDiskSpace(
            f"No space left in the local S3 cache {self.cache.root} for s3://{self.bucket}/{self._full(key)} "
            f"({exc.strerror}).",
            hint="Free space on that disk, lower HEADWATER_S3_CACHE_BYTES, or point HEADWATER_HOME at a larger disk.")

    def list_dir(self, prefix: str) -> list[str]:
        base = key_dir(prefix)
        full = self._full(base.rstrip("/")) if base else (self.prefix or None)
        try:
            res = self._obs.list_with_delimiter(self._client, full)
        except Exception as e:
            if self._is_missing(e):
                return []
            raise self._error(e, "LIST", base.rstrip("/") or None) from None
        names = {p.rpartition("/")[2] for p in res["common_prefixes"]}
        names.update(o["path"].rpartition("/")[2] for o in res["objects"])
        names.discard("")
        return sorted(names)

    def iter_keys(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[str]:
        base = key_dir(prefix)
        full = self._full(base.rstrip("/")) if base else (self.prefix or None)
        offset = self._full(start_after) if start_after is not None else None
        try:
            # One ListObjectsV2 request per 1,000 keys; S3 returns them in key order.
            stream = self._obs.list(self._client, full, offset=offset, chunk_size=1000)
            for batch in stream:
                for meta in batch:
                    yield self._relative(meta["path"])
        except Exception as e:
            if self._is_missing(e):
                return
            raise self._error(e, "LIST", base.rstrip("/") or None) from None

    def iter_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        base = key_dir(prefix)
        full = self._full(base.rstrip("/")) if base else (self.prefix or None)
        try:
            for batch in self._obs.list(self._client, full, chunk_size=1000):
                for meta in batch:
                    yield self._relative(meta["path"]), int(meta["size"])
        except Exception as e:
            if self._is_missing(e):
                return
            raise self._error(e, "LIST", base.rstrip("/") or None) from None

    def iter_stats(self, prefix: str = "") -> Iterator[tuple[str, int, float]]:
        base = key_dir(prefix)
        full = self._full(base.rstrip("/")) if base else (self.prefix or None)
        try:
            for batch in self._obs.list(self._client, full, chunk_size=1000):
                for meta in batch:
                    yield self._relative(meta["path"]), int(meta["size"]), meta["last_modified"].timestamp()
        except Exception as e:
            if self._is_missing(e):
                return
            raise self._error(e, "LIST", base.rstrip("/") or None) from None

    def root_exists(self) -> bool:
        """Whether any object lives under the prefix (``HeadwaterS3NotFound`` if the bucket is missing)."""
        try:
            for batch in self._obs.list(self._client, self.prefix or None, chunk_size=1):
                if batch:
                    return True
        except Exception as e:
            raise self._error(e, "LIST", None) from None
        return False

    # -- damage --------------------------------------------------------------

    def quarantine(self, key: str, *, only: FileId | None = None) -> bool:
        """Drop a damaged cached copy, and move the S3 object to ``quarantine/`` if it is the
        object itself that is damaged.

        With ``only`` (the cached file found damaged) the object is fetched again and
        compared with that file: different bytes mean only the local copy was damaged
        (the fresh copy is now cached; returns False, read again); the same bytes mean
        the object in S3 is damaged: it is copied to ``quarantine/<key>.<ns>`` and
        deleted, so the next write of ``key`` stores it anew (returns True).
        """
        path = self._cache_path(key)
        if only is not None:
            try:
                if file_id(os.stat(path)) != only:
                    return False  # another copy is cached now: read it
            except FileNotFoundError:
                return False
            folder, _, name = path.rpartition("/")
            damaged = f"{folder}/.{name}.{owner_stem()}-{secrets.token_hex(4)}.damaged"  # dot: not cached
            try:
                os.replace(path, damaged)
            except FileNotFoundError:
                return False
            try:
                try:
                    fresh = self._download(key, path)
                except KeyError:
                    return True  # gone already
                if not filecmp.cmp(fresh, damaged, shallow=False):
                    return False
            finally:
                _unlink(damaged)
        self._move_to_quarantine(key)
        self.cache.discard(path)
        self.cache.discard(path + PARTIAL)
        return True

    def _move_to_quarantine(self, key: str) -> None:
        target = self._full(f"{QUARANTINE_DIR}/{key.replace('/', '_')}.{time.time_ns()}")
        try:
            self._obs.copy(self._client, self._full(key), target, overwrite=True)
        except Exception as e:
            if self._is_missing(e):
                return
            raise self._error(e, "COPY to quarantine", key) from None
        self.delete(key)

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.url!r})"


def _endpoint_tag(endpoint: str | None) -> str:
    """A directory name for the S3 service (buckets of different services may share names)."""
    if not endpoint:
        return "aws"
    parts = urlsplit(endpoint)
    tag = (parts.netloc or parts.path).replace(":", "_").replace("/", "_")
    return tag or "endpoint"


def _part_size(size: int) -> int:
    """The multipart part size for an object of ``size`` bytes (at most ``_MAX_PARTS`` parts)."""
    need = -(-size // _MAX_PARTS)
    return max(PART_SIZE, -(-need // (1 << 20)) * (1 << 20))


def _bytes_view(data: Data) -> memoryview:
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1 or mv.format != "B":
        mv = mv.cast("B")
    return mv


def _slices(views: list[memoryview], size: int) -> Iterator[memoryview]:
    """The buffers cut into views of at most ``size`` bytes (no copies), in order: the
    upload then holds at most a few parts of the object in memory at any time."""
    for v in views:
        for i in range(0, v.nbytes, size):
            yield v[i : i + size]


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["CONTENT_ADDRESSED", "S3ObjectStore", "SINGLE_PUT_MAX"]
