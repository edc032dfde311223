"""The S3 data tools' transfer engine (internal): obstore's async calls with a bounded
number of requests in flight, downloads streamed to files, uploads streamed from files.

Every public coroutine works on one URL and raises headwater's S3 exceptions (translated
by ``headwater.store.s3.connect.translate``); ``bounded`` runs many of them, at most
``workers`` at a time, keeping the input order; ``run_sync`` drives it from plain code.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, TypeVar

from ..exceptions import (HeadwaterS3Exception, HeadwaterS3InsufficientDiskSpace, HeadwaterS3InvalidRange,
                          HeadwaterS3NotFound)
from ..store.s3.connect import S3Url, bucket_client, client_config, obstore_api, parse_s3_url, translate
from .payloads import Upload

if TYPE_CHECKING:
    from ..config import Settings
    from .progress import Progress

T = TypeVar("T")
R = TypeVar("R")

#: Bytes handed from obstore to Python per write when streaming a download to its file.
STREAM_CHUNK = 1 << 20
#: Whole objects download in ranged GETs of this size (several in flight for large objects).
RANGE_PART = 32 << 20
#: Part size of multipart uploads; objects up to this size go up in one PUT.
PART_SIZE = 16 << 20
#: Parts of one multipart upload in flight at once.
PARTS_IN_FLIGHT = 4


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one GET or HEAD returned: the object's attributes and, for a GET, the local file."""

    url: str
    path: str | None
    size: int
    attributes: dict[str, str]
    last_modified: float
    total_size: int
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Listed:
    """One listing entry: an object (``size`` set) or a common prefix (``size`` None)."""

    prefix: str
    url: str
    size: int | None


def run_sync(coro: Any) -> Any:
    """Run ``coro`` to completion from synchronous code (on a helper thread when this
    thread already runs an event loop, as in a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def bounded(items: Sequence[T], fn: Callable[[T], Awaitable[R]], workers: int) -> list[R]:
    """``[await fn(x) for x in items]`` with at most ``workers`` calls in flight, results in
    input order; the first error cancels the rest and is raised."""
    results: list[Any] = [None] * len(items)
    todo = iter(enumerate(items))

    async def worker() -> None:
        for i, item in todo:
            results[i] = await fn(item)

    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(workers, len(items))))]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return results


class Transfers:
    """One obstore client per (bucket, encryption), shared by the operations of one ``S3``."""

    def __init__(self, settings: "Settings", encryption: str | None = None) -> None:
        self.settings = settings
        self.encryption = encryption
        self.workers = max(1, settings.s3_workers)
        self._clients: dict[tuple[str, str | None, int], Any] = {}

    def client(self, bucket: str, encryption: str | None = None) -> Any:
        encryption = encryption or self.encryption
        # Keyed by pid too: a client made before a fork must not be used in the child.
        found = self._clients.get((bucket, encryption, os.getpid()))
        if found is None:
            if encryption is None:
                found = bucket_client(bucket, self.settings)
            else:
                found = obstore_api(self.settings)._store.S3Store(bucket, server_side_encryption=encryption,
                                                                  **client_config(self.settings))
            self._clients[(bucket, encryption, os.getpid())] = found
        return found

    async def get(self, url: str, rng: Any, dest: str | None, *, missing_ok: bool,
                  progress: "Progress | None" = None) -> Fetched | None:
        """GET ``url`` (a byte range of it if ``rng``) into the file ``dest``; with
        ``dest=None`` a HEAD. None for a missing key when ``missing_ok``.

        A whole object is fetched as ranged GETs of ``RANGE_PART`` bytes: the first one
        tells the size, the rest (if any) run ``PARTS_IN_FLIGHT`` at a time, each pinned to
        the first one's ETag so a concurrent overwrite cannot mix two versions."""
        obstore = obstore_api(self.settings)
        where = parse_s3_url(url)
        client = self.client(where.bucket)
        whole = dest is not None and rng is None
        options: dict[str, Any] = {"head": True} if dest is None else {}
        if rng is not None or whole:
            options["range"] = rng if rng is not None else (0, RANGE_PART)
        op = "HEAD" if dest is None else "GET"
        try:
            try:
                res = await obstore.get_async(client, where.key, options=options)
            except Exception as exc:
                if not (whole and isinstance(translate(exc, op, where.bucket, where.key), HeadwaterS3InvalidRange)):
                    raise
                res = await obstore.get_async(client, where.key)  # an empty object has no byte 0
            if dest is not None:
                await _download(obstore, client, where.key, res, dest, progress, self.settings.s3_retries)
        except HeadwaterS3Exception:  # a local write error, already worded
            raise
        except Exception as exc:
            return _missing_or_raise(exc, op, where, missing_ok)
        meta = res.meta
        start, end = (0, meta["size"]) if whole else res.range
        if progress is not None:
            progress.add_object()
        return Fetched(url=url, path=dest, size=meta["size"], attributes=dict(res.attributes),
                       last_modified=meta["last_modified"].timestamp(), total_size=meta["size"],
                       offset=start, length=end - start)

    async def exists(self, url: str) -> bool:
        return await self.get(url, None, None, missing_ok=True) is not None

    async def put(self, up: Upload, *, overwrite: bool, progress: "Progress | None" = None) -> bool:
        """Upload ``up``; False when ``overwrite`` is off and the key already exists.

        Without overwrite, objects up to ``PART_SIZE`` are written create-only (one atomic
        conditional PUT); larger ones are checked with a HEAD first, then sent in parts."""
        obstore = obstore_api(self.settings)
        where = parse_s3_url(up.url)
        client = self.client(where.bucket, up.encryption)
        mode = None
        if not overwrite:
            if up.size <= PART_SIZE:
                mode = "create"
            elif await self.exists(up.url):
                return False
        source = up.source
        if hasattr(source, "seek"):
            source.seek(0)
        try:
            await obstore.put_async(client, where.key, source, attributes=up.attributes or None, mode=mode,
                                    use_multipart=up.size > PART_SIZE and mode is None, chunk_size=PART_SIZE,
                                    max_concurrency=PARTS_IN_FLIGHT)
        except (obstore.exceptions.AlreadyExistsError, obstore.exceptions.PreconditionError):
            return False
        except Exception as exc:
            raise _translated(exc, "PUT", where) from None
        if progress is not None:
            progress.add_bytes(up.size)
            progress.add_object()
        return True

    async def list(self, url: str, *, recursive: bool) -> list[Listed]:
        """The objects under the prefix ``url`` (whole path segments): all of them when
        ``recursive``, else one level, objects first, then sub-prefixes (``url/``)."""
        obstore = obstore_api(self.settings)
        where = parse_s3_url(url)
        client = self.client(where.bucket)
        base = f"s3://{where.bucket}/"
        try:
            if recursive:
                out = []
                async for batch in obstore.list(client, where.key or None, chunk_size=1000):
                    out.extend(Listed(url, base + m["path"], m["size"]) for m in batch)
                return out
            res = await obstore.list_with_delimiter_async(client, where.key or None)
        except Exception as exc:
            raise _translated(exc, "LIST", where) from None
        return ([Listed(url, base + m["path"], m["size"]) for m in res["objects"]]
                + [Listed(url, base + p + "/", None) for p in res["common_prefixes"]])


async def _download(obstore: Any, client: Any, key: str, first: Any, dest: str, progress: "Progress | None",
                    retries: int) -> None:
    """Write the response ``first`` to ``dest`` and fetch the rest of the object, if
    ``first`` was only its first ``RANGE_PART`` bytes. A body that breaks off mid-stream
    (a reset connection) is re-requested from where it stopped, up to ``retries`` times;
    obstore itself retries requests that fail before their body starts."""

    base, end = first.range
    total = first.meta["size"]
    rest = [(s, min(s + RANGE_PART, total)) for s in range(end, total, RANGE_PART)] if base == 0 else []
    etag = first.meta.get("e_tag")

    async def fetch(span: tuple[int, int], res: Any = None) -> None:
        pos, stop = span
        broken = 0
        while pos < stop:
            if res is None:
                res = await obstore.get_async(client, key, options={"range": (pos, stop), "if_match": etag})
            try:
                async for chunk in res.stream(min_chunk_size=STREAM_CHUNK):
                    _write_at(fd, chunk, pos - base, dest)
                    pos += len(chunk)
                    if progress is not None:
                        progress.add_bytes(len(chunk))
                return
            except HeadwaterS3Exception:  # a local write error: retrying cannot help
                raise
            except Exception:
                broken += 1
                if broken > retries:
                    raise
                res = None
                await asyncio.sleep(min(0.05 * 2 ** broken, 2.0))

    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except OSError as exc:
        raise _local_error(exc, dest) from None
    try:
        await fetch((base, end), first)
        if rest:
            await bounded(rest, fetch, PARTS_IN_FLIGHT)
    finally:
        os.close(fd)


def _write_at(fd: int, chunk: Any, offset: int, dest: str) -> None:
    view = memoryview(chunk)
    while view:  # pwrite may write less than asked
        try:
            n = os.pwrite(fd, view, offset)
        except OSError as exc:
            raise _local_error(exc, dest) from None
        offset += n
        view = view[n:]


def _local_error(exc: OSError, dest: str) -> HeadwaterS3Exception:
    """A local write error as an S3 tools error (never mistaken for a missing S3 object)."""
    if exc.errno == errno.ENOSPC:
        return HeadwaterS3InsufficientDiskSpace(f"Downloading to {dest} ran out of disk space.",
                                               hint="Free space, or point S3(tmproot=...) at a larger disk.")
    return HeadwaterS3Exception(f"Writing the download to {dest} failed: {exc.strerror or exc}.")


def _translated(exc: BaseException, op: str, where: S3Url) -> BaseException:
    return translate(exc, op, where.bucket, where.key)


def _missing_or_raise(exc: BaseException, op: str, where: S3Url, missing_ok: bool) -> None:
    err = _translated(exc, op, where)
    # A missing bucket is a mistake in the URL or the setup, never "a missing object".
    if missing_ok and isinstance(err, HeadwaterS3NotFound) and "NoSuchBucket" not in str(exc):
        return None
    raise err from None


__all__ = ["Fetched", "Listed", "PART_SIZE", "RANGE_PART", "Transfers", "bounded", "run_sync"]
