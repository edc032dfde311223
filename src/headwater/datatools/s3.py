"""``headwater.S3``: Metaflow's S3 client API on obstore (internal module; the class is public).

Bulk calls run as asyncio tasks, at most ``HEADWATER_S3_WORKER_COUNT`` requests in flight;
downloads stream into files in a temporary directory that ``close()`` removes; uploads
stream from files (multipart above ``transfer.PART_SIZE``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any, Iterable

from ..exceptions import HeadwaterS3Exception, HeadwaterS3URLException
from . import locations
from .payloads import Upload, attributes, file_source, value_source
from .progress import Progress
from .s3objects import PutValue, RangeInfo, S3GetObject, S3Object, S3PutObject
from .transfer import Fetched, Listed, Transfers, bounded, run_sync

if TYPE_CHECKING:
    from ..config import Settings

#: Constructor options of Metaflow's S3 that pick boto3 credentials or clients; headwater takes
#: credentials from the usual AWS sources and has no boto3 client to pass.
_UNSUPPORTED = ("role", "session_vars", "client_params", "external_client")


class S3:
    """The S3 client: get, put and list objects, in bulk and in parallel.

    Use it as a context manager; downloads go to a temporary directory under ``tmproot``
    that is removed when the block ends (or on ``close()``)::

        with S3(s3root="s3://bucket/data") as s3:
            s3.put("a.txt", "hello")
            print(s3.get("a.txt").text)

    Locations come in three modes: ``S3(run=self)`` inside a step (or ``run=Run(...)``) roots
    keys at ``<HEADWATER_DATATOOLS_S3ROOT>/<Flow>/<run id>`` (``bucket``/``prefix`` replace
    parts of that root); ``S3(s3root="s3://bucket/prefix")`` roots them there; ``S3()``
    takes full ``s3://`` URLs only.

    Parameters
    ----------
    tmproot : str, default "."
        Directory to create the temporary download directory in.
    bucket : str, optional
        With ``run``: the bucket to use instead of the configured root's.
    prefix : str, optional
        With ``run``: the path to use instead of the configured root's.
    run : FlowSpec or Run, optional
        Root the keys under this run (``self`` in a step, or a client ``Run``).
    s3root : str, optional
        Root the keys under this ``s3://`` URL (when ``run`` is not given).
    encryption : str, optional
        Server-side encryption for uploads (``"AES256"``, ``"aws:kms"``, ...).
    """

    TYPE = "s3"

    def __init__(self, tmproot: str = ".", bucket: str | None = None, prefix: str | None = None,
                 run: Any = None, s3root: str | None = None, encryption: str | None = None,
                 **kwargs: Any) -> None:
        from ..config import load_settings

        for name in kwargs:
            if name in _UNSUPPORTED:
                if kwargs[name] is not None:
                    raise HeadwaterS3Exception(
                        f"S3({name}=...) is not supported by headwater.",
                        hint="Credentials come from the usual AWS sources (environment, profile, instance "
                             "role); set them there, and HEADWATER_S3_ENDPOINT_URL for another endpoint.")
            else:
                raise TypeError(f"S3() got an unexpected keyword argument {name!r}")
        self._settings: Settings = load_settings()
        if run:
            self._s3root: str | None = locations.run_root(run, self._settings, bucket, prefix)
        elif s3root:
            self._s3root = locations.explicit_root(s3root)
        else:
            self._s3root = None
        self._encryption = encryption
        self._tmproot = tmproot
        self._tmpdir: str | None = tempfile.mkdtemp(dir=tmproot, prefix="headwater.s3.")
        self._names = itertools.count()
        self._engine: Transfers | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "S3":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Delete the temporary directory and every file downloaded into it."""
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __del__(self) -> None:  # a client that was never closed still cleans up
        try:
            self.close()
        except Exception:
            pass

    # -- plumbing ------------------------------------------------------------------------------

    def _transfers(self) -> Transfers:
        if self._engine is None:
            self._engine = Transfers(self._settings, self._encryption)
        return self._engine

    def _url(self, key: Any) -> str:
        return locations.key_url(self._s3root, key)

    def _new_path(self) -> str:
        if self._tmpdir is None:
            raise HeadwaterS3Exception("This S3 client is closed; its downloads were deleted.",
                                       hint="Use the client inside its `with S3(...) as s3:` block.")
        return os.path.join(self._tmpdir, f"obj.{next(self._names)}")

    def _run(self, coro: Any) -> Any:
        return run_sync(coro)

    def _object(self, url: str, got: Fetched | None, *, info: bool, prefix: str | None = None) -> S3Object:
        root = self._s3root if prefix is None else prefix
        if got is None:
            return S3Object(root, url, None)
        if not info:
            return S3Object(root, url, got.path, size=got.size)
        return S3Object(root, url, got.path, size=got.size, content_type=got.attributes.get("Content-Type"),
                        metadata=got.attributes, last_modified=got.last_modified,
                        range_info=RangeInfo(got.total_size, got.offset, got.length) if got.path else None)

    def _get_many(self, keys: list[Any], *, missing_ok: bool, info: bool) -> list[S3Object]:
        jobs = [(self._url(k), locations.key_range(k)) for k in keys]
        if not jobs:
            return []
        engine = self._transfers()
        progress = Progress("get", len(jobs))

        async def one(job: tuple[str, Any]) -> Fetched | None:
            return await engine.get(job[0], job[1], self._new_path(), missing_ok=missing_ok, progress=progress)

        try:
            got = self._run(bounded(jobs, one, engine.workers))
        finally:
            progress.close()
        return [self._object(url, g, info=info) for (url, _), g in zip(jobs, got)]

    # -- listing -------------------------------------------------------------------------------

    def list_paths(self, keys: Iterable[str] | None = None) -> list[S3Object]:
        """List the next level under each key, like ``ls``.

        Parameters
        ----------
        keys : iterable of str, optional
            Prefixes to list (keys under the root or full URLs); default: the root.

        Returns
        -------
        list of S3Object
            Objects (``exists`` True) and sub-prefixes (``exists`` False, URL ending in ``/``).
        """
        urls = [self._url(k).rstrip("/") + "/" for k in (list(keys) if keys is not None else [None])]
        engine = self._transfers()
        listed = self._run(bounded(urls, lambda u: engine.list(u, recursive=False), engine.workers))
        return [S3Object(e.prefix, e.url, None, size=e.size) for batch in listed for e in batch]

    def list_recursive(self, keys: Iterable[str] | None = None) -> list[S3Object]:
        """List every object under each key (all levels).

        Parameters
        ----------
        keys : iterable of str, optional
            Prefixes to list (whole path segments); default: the root.

        Returns
        -------
        list of S3Object
            The objects found (``exists`` True, not downloaded).
        """
        return [S3Object(e.prefix, e.url, None, size=e.size) for e in self._list_all(keys)]

    def _list_all(self, keys: Iterable[Any] | None) -> list[Any]:
        urls = [self._url(k) for k in (list(keys) if keys is not None else [None])]
        engine = self._transfers()
        listed = self._run(bounded(urls, lambda u: engine.list(u, recursive=True), engine.workers))
        return [e for batch in listed for e in batch]

    # -- info ----------------------------------------------------------------------------------

    def info(self, key: str | None = None, return_missing: bool = False) -> S3Object:
        """An object's size, content type, metadata and modification time (one HEAD request).

        Parameters
        ----------
        key : str, optional
            A key under the root or a full URL; default: the root itself.
        return_missing : bool, default False
            Return a missing key as an S3Object with ``exists`` False instead of raising
            ``HeadwaterS3NotFound``.

        Returns
        -------
        S3Object
            Not downloaded (``downloaded`` is False).
        """
        return self.info_many([key], return_missing=return_missing)[0]

    def info_many(self, keys: Iterable[str], return_missing: bool = False) -> list[S3Object]:
        """``info`` for many keys in parallel, in the order given.

        Parameters
        ----------
        keys : iterable of str
            Keys under the root or full URLs.
        return_missing : bool, default False
            Return missing keys with ``exists`` False instead of raising.

        Returns
        -------
        list of S3Object
        """
        urls = [self._url(k) for k in keys]
        engine = self._transfers()
        got = self._run(bounded(urls, lambda u: engine.get(u, None, None, missing_ok=return_missing),
                                engine.workers))
        return [self._object(u, g, info=True) for u, g in zip(urls, got)]

    # -- get -----------------------------------------------------------------------------------

    def get(self, key: str | S3GetObject | None = None, return_missing: bool = False,
            return_info: bool = True) -> S3Object:
        """Download one object (or a byte range of it, with ``S3GetObject``).

        Parameters
        ----------
        key : str or S3GetObject, optional
            A key under the root, a full URL, or an ``S3GetObject(key, offset, length)``.
        return_missing : bool, default False
            Return a missing key with ``exists`` False instead of raising ``HeadwaterS3NotFound``.
        return_info : bool, default True
            Also return the content type, metadata, range info and modification time.

        Returns
        -------
        S3Object
            Downloaded: ``path``, ``blob`` and ``text`` hold the content.

        Raises
        ------
        HeadwaterS3NotFound
            The key (or the bucket) does not exist.
        HeadwaterS3InvalidRange
            The byte range starts beyond the end of the object.
        """
        return self._get_many([key], missing_ok=return_missing, info=return_info)[0]

    def get_many(self, keys: Iterable[str | S3GetObject], return_missing: bool = False,
                 return_info: bool = True) -> list[S3Object]:
        """Download many objects in parallel; results in the order of ``keys``.

        Parameters
        ----------
        keys : iterable of str or S3GetObject
            Keys under the root, full URLs, or ``S3GetObject`` ranges.
        return_missing : bool, default False
            Return missing keys with ``exists`` False instead of raising.
        return_info : bool, default True
            Also return content type, metadata, range info and modification time.

        Returns
        -------
        list of S3Object
        """
        return self._get_many(list(keys), missing_ok=return_missing, info=return_info)

    def get_recursive(self, keys: Iterable[str], return_info: bool = False) -> list[S3Object]:
        """Download every object under each prefix, in parallel.

        A key that is itself an object (and no prefix) downloads that object.

        Parameters
        ----------
        keys : iterable of str
            Prefixes under the root or full URLs (matched by whole path segments).
        return_info : bool, default False
            Also return content type, metadata, range info and modification time.

        Returns
        -------
        list of S3Object
            Keys relative to the listed prefix, or to the root with ``return_info``.
        """
        engine = self._transfers()

        async def under(url: str) -> list[Listed]:
            found = await engine.list(url, recursive=True)
            if not found and await engine.exists(url):  # the key is an object, not a prefix
                found = [Listed(url, url, None)]
            return found

        urls = [self._url(k) for k in keys]
        entries = [e for batch in self._run(bounded(urls, under, engine.workers)) for e in batch]
        if not entries:
            return []
        progress = Progress("get", len(entries))

        async def one(entry: Any) -> Fetched | None:
            return await engine.get(entry.url, None, self._new_path(), missing_ok=False, progress=progress)

        try:
            got = self._run(bounded(entries, one, engine.workers))
        finally:
            progress.close()
        if return_info:
            return [self._object(e.url, g, info=True) for e, g in zip(entries, got)]
        return [self._object(e.url, g, info=False, prefix=e.prefix) for e, g in zip(entries, got)]

    def get_all(self, return_info: bool = False) -> list[S3Object]:
        """Download every object under the root (needs ``run`` or ``s3root``).

        Parameters
        ----------
        return_info : bool, default False
            Also return content type, metadata, range info and modification time.

        Returns
        -------
        list of S3Object
        """
        if self._s3root is None:
            raise HeadwaterS3URLException("get_all() needs a root, and this S3 client has none.",
                                          hint="Create it with S3(s3root='s3://bucket/prefix') or S3(run=...).")
        return self.get_recursive([None], return_info)  # type: ignore[list-item]

    # -- put -----------------------------------------------------------------------------------

    def put(self, key: str | S3PutObject, obj: PutValue, overwrite: bool = True, content_type: str | None = None,
            metadata: dict | None = None) -> str:
        """Upload one object.

        Parameters
        ----------
        key : str or S3PutObject
            A key under the root or a full URL.
        obj : str, bytes or binary file object
            The content; text is stored as UTF-8.
        overwrite : bool, default True
            If False and the key exists, keep the existing object and upload nothing.
        content_type : str, optional
            MIME type to store with the object.
        metadata : dict, optional
            JSON-encodable user metadata to store with the object.

        Returns
        -------
        str
            The object's URL.
        """
        name = getattr(key, "key", key)
        source, size = value_source(name, obj)
        url = self._url(key)
        up = Upload(name, url, source, size, attributes(content_type, metadata), self._encryption)
        self._put([up], overwrite)
        return url

    def put_many(self, key_objs: Iterable[tuple[str, PutValue] | S3PutObject],
                 overwrite: bool = True) -> list[tuple[str, str]]:
        """Upload many objects in parallel.

        Parameters
        ----------
        key_objs : iterable of (key, value) or S3PutObject
            What to upload; ``S3PutObject`` adds a content type and metadata.
        overwrite : bool, default True
            If False, keys that exist are left alone (and left out of the result).

        Returns
        -------
        list of (key, url)
            The objects uploaded.
        """
        ups = []
        for item in key_objs:
            key, value = (item.key, item.value) if isinstance(item, S3PutObject) else (item[0], item[1])
            source, size = value_source(key, value)
            ups.append(self._upload(item, key, source, size))
        return self._put(ups, overwrite)

    def put_files(self, key_paths: Iterable[tuple[str, str] | S3PutObject],
                  overwrite: bool = True) -> list[tuple[str, str]]:
        """Upload many local files in parallel (streamed from disk).

        Parameters
        ----------
        key_paths : iterable of (key, local path) or S3PutObject(path=...)
            What to upload.
        overwrite : bool, default True
            If False, keys that exist are left alone (and left out of the result).

        Returns
        -------
        list of (key, url)
            The objects uploaded.
        """
        ups = []
        for item in key_paths:
            key, path = (item.key, item.path) if isinstance(item, S3PutObject) else (item[0], item[1])
            source, size = file_source(key, path)
            ups.append(self._upload(item, key, source, size))
        return self._put(ups, overwrite)

    def _upload(self, item: Any, key: str, source: Any, size: int) -> Upload:
        ctype = getattr(item, "content_type", None)
        meta = getattr(item, "metadata", None)
        enc = getattr(item, "encryption", None) or self._encryption
        return Upload(key, self._url(key), source, size, attributes(ctype, meta), enc)

    def _put(self, ups: list[Upload], overwrite: bool) -> list[tuple[str, str]]:
        if not ups:
            return []
        engine = self._transfers()
        progress = Progress("put", len(ups), sum(u.size for u in ups))
        try:
            done = self._run(bounded(ups, lambda u: engine.put(u, overwrite=overwrite, progress=progress),
                                     engine.workers))
        finally:
            progress.close()
        return [(u.key, u.url) for u, ok in zip(ups, done) if ok]


__all__ = ["S3"]
