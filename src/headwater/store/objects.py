"""Object stores: the storage layer's pluggable seam (internal).

``ObjectStore`` is the interface; ``LocalObjectStore`` keeps objects as files under
a directory. Keys are ``/``-separated paths relative to the store's root.
"""

from __future__ import annotations

import abc
import ctypes
import errno
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, BinaryIO

from .full import StoreFullError, no_space
from .tempfiles import owner_stem, sweep_dir

if TYPE_CHECKING:
    from .ranged import RangedObject

Data = bytes | bytearray | memoryview

#: Directory under a local store's root where damaged objects are moved (never read back).
QUARANTINE_DIR = "quarantine"
#: Top-level entries of a local store's directory that are not objects (temp files, damaged
#: objects). The index file is ``meta``'s and not an object either, but harmless to list.
_NOT_KEYS = frozenset({"tmp", QUARANTINE_DIR})

#: Identity of a file: ``(st_dev, st_ino, st_mtime_ns)``. The mtime guards against
#: the inode number being reused once the file it named has been deleted.
FileId = tuple[int, int, int]


def file_id(st: os.stat_result) -> FileId:
    """The ``FileId`` of a file, from its ``stat`` result."""
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


# Linux caps one write(2) at 0x7ffff000 bytes; larger parts are written in slices.
_MAX_WRITE = 1 << 30
# errnos of link(2) on filesystems that lack hard links: fall back to rename.
_NO_LINK_ERRNOS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})
_O_TMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _bind_renameat2() -> Callable[[str, str], int] | None:
    """``renameat2(old, new, RENAME_NOREPLACE)`` from libc, or None where unavailable."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    at_fdcwd, noreplace = -100, 1

    def rename_noreplace(old: str, new: str) -> int:
        return int(fn(at_fdcwd, os.fsencode(old), at_fdcwd, os.fsencode(new), noreplace))

    return rename_noreplace


_renameat2 = _bind_renameat2()


def check_key(key: str) -> str:
    """``key`` itself if it is a valid object key (relative, no ``..`` segment), else ``ValueError``."""
    if key[:1] == "/" or (".." in key and ".." in key.split("/")):
        raise ValueError(f"Invalid object key {key!r}: keys are relative and may not contain '..'.")
    return key


def key_dir(prefix: str) -> str:
    """``prefix`` as the directory part of keys: ``""`` for the root, else ``"a/b/"``."""
    base = prefix.strip("/")
    return f"{base}/" if base else ""


#: Keys per bulk delete request (S3's DeleteObjects takes at most 1,000); gc deletes in
#: batches of this size too, checking its lease between them.
DELETE_BATCH = 1000


class ObjectStore(abc.ABC):
    """A flat key → bytes store with atomic, create-only writes.

    Every implementation guarantees: readers never see a partial object, and an
    existing key is never overwritten (a second write of the same key is a no-op
    that reports ``False``), which is what makes content-addressed blobs and
    attempt records safe to write concurrently.
    """

    #: Where the store lives, e.g. ``local:/abs/root`` or ``s3://bucket/prefix``.
    url: str
    #: Whether a process that has used this store may still fork children that use it.
    #: False for a client with background threads (S3: obstore's Tokio runtime); the run
    #: process then keeps its reads until after the fork pool's zygote exists
    #: (``runtime.prefork``).
    fork_safe: bool = True

    @property
    def identity(self) -> str:
        """What names this store for local state kept about it (index cache, log spool):
        the URL, plus whatever else tells two stores with one URL apart (S3: the endpoint)."""
        return self.url

    @abc.abstractmethod
    def put(self, key: str, data: Data | Sequence[Data]) -> bool:
        """Write ``data`` (one buffer or a sequence of parts) under ``key``.

        Returns ``True`` if written, ``False`` if ``key`` already existed (left as is).
        """

    @abc.abstractmethod
    def open_writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A seekable file to stream an object into; published on clean exit.

        On an exception nothing is published. If ``key`` already exists when the
        writer closes, the existing object is kept and the new bytes are dropped.
        """

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; ``KeyError`` if it does not exist."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""

    @abc.abstractmethod
    def local_path(self, key: str) -> str:
        """Path of a local file holding the object's bytes; ``KeyError`` if missing."""

    @abc.abstractmethod
    def list_dir(self, prefix: str) -> list[str]:
        """Sorted names of the immediate children of ``prefix`` (``[]`` if none)."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    def iter_keys(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[str]:
        """Every key under the directory ``prefix`` (all keys for ``""``), recursively, in key order.

        Parameters
        ----------
        prefix : str
            A directory of keys (``"runs/Flow"``); keys are yielded in full
            (``"runs/Flow/1/start/1/0.json"``), sorted by their UTF-8 bytes.
        start_after : str, optional
            Yield only keys that sort after this key: an incremental listing resumes
            where the previous one stopped (S3 starts the listing there, so a sync of
            new run ids costs requests only for what is new).

        This default walks ``list_dir`` and asks ``exists`` of each name, then sorts
        (a small store's fallback); stores that can list keys in order (a local
        directory, S3) override it.
        """
        keys = sorted(self._walk_default(key_dir(prefix)))
        return iter([k for k in keys if start_after is None or k > start_after])

    def _walk_default(self, base: str) -> Iterator[str]:
        for name in self.list_dir(base):
            key = f"{base}{name}"
            if self.exists(key):
                yield key
            yield from self._walk_default(f"{key}/")

    def iter_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """``(key, size in bytes)`` of every key under the directory ``prefix``, in key order.

        What garbage collection needs to know how much it frees; S3 and a local directory
        list sizes with the keys. This default reads each object (a small store's fallback).
        Keys removed while listing are skipped.
        """
        for key in self.iter_keys(prefix):
            try:
                yield key, len(self.get(key))
            except KeyError:
                continue

    def iter_stats(self, prefix: str = "") -> Iterator[tuple[str, int, float]]:
        """``(key, size in bytes, modified)`` of every key under the directory ``prefix``, in key order.

        ``modified`` is when the object was written, in seconds since the epoch (a local
        file's mtime, S3's LastModified): what garbage collection uses to tell an idle run
        from a running one and an old pin from a fresh one. This default cannot tell and
        says "now" for every key, the cautious answer (nothing looks idle or old).
        """
        now = time.time()
        for key, size in self.iter_sizes(prefix):
            yield key, size, now

    def delete_many(self, keys: Sequence[str]) -> None:
        """Remove every key of ``keys``; missing ones are not an error. S3 removes up to 1,000
        per request; this default deletes one at a time."""
        for key in keys:
            self.delete(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of the object ``key`` from offset ``start``; ``KeyError`` if missing.

        The range is clipped to the object: fewer bytes come back at its end, none
        from a ``start`` at or past it. This default reads the whole object.
        """
        if start < 0 or length < 0:
            raise ValueError(f"Invalid byte range start={start}, length={length} for {key!r}.")
        return bytes(self.get(key)[start : start + length])

    def open_ranged(self, key: str) -> RangedObject:
        """The object as a local file whose byte ranges are fetched on demand; ``KeyError`` if missing.

        What partial reads of large blobs use (``store.views``): the caller asks for the
        ranges it needs with ``ensure`` and reads them from the file. This default fetches
        the whole object through ``local_path``; a store that can read by range (S3)
        fetches only the ranges asked for.
        """
        from .ranged import RangedObject

        try:
            return RangedObject.of_file(self.local_path(key))
        except FileNotFoundError:
            raise KeyError(key) from None

    def root_exists(self) -> bool:
        """Whether the store has been created: reading an absent store finds it empty.

        This default says whether the root holds any object; a store with a real
        container for its root (a directory) answers for the container.
        """
        return bool(self.list_dir(""))

    def quarantine(self, key: str, *, only: FileId | None = None) -> bool:
        """Take a damaged object out of the way so that the next write of ``key`` stores it anew.

        Parameters
        ----------
        key : str
            The damaged object.
        only : FileId, optional
            The file found damaged (``file_id`` of the file ``local_path`` gave). The
            object is taken away only while ``key`` still holds that very file: a
            good copy written since (after another reader quarantined the damaged
            one) is left in place.

        Returns
        -------
        bool
            False when ``key`` holds an object other than ``only`` (left in place),
            True when the damaged object is gone.

        Stores that can keep the damaged bytes for inspection do (the local store
        moves them to ``quarantine/``). This default removes the object, but only
        when ``only`` is not given: it cannot tell which version of ``key`` it holds.
        """
        if only is not None:
            return False
        self.delete(key)
        return True


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; writes go to ``<root>/tmp/`` then link into place.

    There is no fsync: kill -9 safety comes from the atomic rename/link (a reader
    sees the whole file or nothing), and the page cache survives a killed
    process. Durability across power loss is not promised; fsync per blob would
    cost more than the rest of a trivial task.

    Examples
    --------
    >>> store = LocalObjectStore("/tmp/hw-doc")
    >>> store.put("a/b", b"hi")
    True
    >>> store.get("a/b")
    b'hi'
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = os.path.abspath(os.fspath(root))
        self.url = f"local:{self.root}"
        self._tmp = os.path.join(self.root, "tmp")
        # Directories known to exist: saves a mkdir/stat per write.
        self._dirs: set[str] = set()

    # -- paths ---------------------------------------------------------------

    def path(self, key: str) -> str:
        """Absolute path where ``key`` lives, whether or not it exists."""
        return f"{self.root}/{check_key(key)}"

    def _ensure_dir(self, d: str) -> None:
        if d not in self._dirs:
            os.makedirs(d, exist_ok=True)
            self._dirs.add(d)

    def _open_tmp(self) -> tuple[str, int]:
        """Create a fresh temp file in ``<root>/tmp/``; returns its path and fd.

        Named ``<pid>.<start ticks>-<random>`` (``tempfiles.owner_stem``): forked
        workers share the parent's state but not its pid, and a temp file left by
        a killed process names its owner, so ``sweep_temp`` can remove it safely.
        """
        for retry in (False, True):
            if retry:
                self._dirs.discard(self._tmp)  # removed behind our back: recreate it
            self._ensure_dir(self._tmp)
            tmp = f"{self._tmp}/{owner_stem()}-{secrets.token_hex(8)}"
            try:
                return tmp, os.open(tmp, _O_TMP, 0o644)
            except FileNotFoundError:
                if retry:
                    raise
        raise AssertionError("unreachable")

    def _publish(self, tmp: str, dst: str) -> bool:
        """Link ``tmp`` to ``dst`` unless ``dst`` exists; always removes ``tmp``."""
        parent = dst.rpartition("/")[0]
        try:
            self._ensure_dir(parent)
            try:
                os.link(tmp, dst)
            except FileNotFoundError:
                # The cached directory was removed behind our back (gc): recreate it.
                self._dirs.discard(parent)
                self._ensure_dir(parent)
                os.link(tmp, dst)
            return True
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno in _NO_LINK_ERRNOS:
                return self._publish_by_rename(tmp, dst)
            raise
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    @staticmethod
    def _publish_by_rename(tmp: str, dst: str) -> bool:
        # Filesystems without hard links: check, then rename. The window between
        # the two only matters for two writers of one key, and both write the
        # same bytes for blobs; records have a single writer.
        if os.path.exists(dst):
            return False
        os.replace(tmp, dst)
        return True

    # -- writes --------------------------------------------------------------

    def put(self, key: str, data: Data | Sequence[Data]) -> bool:
        try:
            return self._put(key, data)
        except OSError as e:
            if no_space(e):
                raise StoreFullError(self.root, key) from None
            raise

    def _put(self, key: str, data: Data | Sequence[Data]) -> bool:
        dst = self.path(key)
        parts: Sequence[Data] = (data,) if isinstance(data, (bytes, bytearray, memoryview)) else data
        if _renameat2 is not None:
            published = self._put_beside(dst, parts)
            if published is not None:
                return published
        tmp, fd = self._open_tmp()
        try:
            try:
                for part in parts:
                    _write_all(fd, part)
            finally:
                os.close(fd)
        except BaseException:
            os.unlink(tmp)
            raise
        return self._publish(tmp, dst)

    def _put_beside(self, dst: str, parts: Sequence[Data]) -> bool | None:
        """Write a temp file next to ``dst`` and rename it in without replacing.

        One directory instead of two: on ext4 here this is ~0.6 ms against ~1 ms
        for temp-in-tmp/ + link + unlink, and every task commits a record this way.
        Returns None when the filesystem cannot rename without replacing.
        """
        global _renameat2
        parent = dst.rpartition("/")[0]
        tmp = f"{parent}/.{owner_stem()}-{secrets.token_hex(6)}.tmp"  # dot files are not listed
        for retry in (False, True):
            if retry:
                self._dirs.discard(parent)  # removed behind our back: recreate it
            self._ensure_dir(parent)
            try:
                fd = os.open(tmp, _O_TMP, 0o644)
                break
            except FileNotFoundError:
                if retry:
                    raise
        try:
            try:
                for part in parts:
                    _write_all(fd, part)
            finally:
                os.close(fd)
            rc = _renameat2(tmp, dst)
        except BaseException:
            os.unlink(tmp)
            raise
        if rc == 0:
            return True
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            os.unlink(tmp)
            return False
        if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            _renameat2 = None  # this filesystem or kernel cannot: use the link path from now on
            return self._publish(tmp, dst)
        os.unlink(tmp)
        raise OSError(err, os.strerror(err), dst)

    @contextmanager
    def _writer(self, key: str) -> Iterator[BinaryIO]:
        dst = self.path(key)
        try:
            tmp, fd = self._open_tmp()
        except OSError as e:
            if no_space(e):
                raise StoreFullError(self.root, key) from None
            raise
        f = os.fdopen(fd, "wb", buffering=1 << 20)
        try:
            yield f
            f.close()
        except BaseException as e:
            try:
                f.close()  # flushing may fail again on a full disk; the temp file goes either way
            except OSError:
                pass
            os.unlink(tmp)
            if isinstance(e, OSError) and no_space(e):
                raise StoreFullError(self.root, key) from None
            raise
        try:
            self._publish(tmp, dst)
        except OSError as e:
            if no_space(e):
                raise StoreFullError(self.root, key) from None
            raise

    def open_writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self._writer(key)

    # -- reads ---------------------------------------------------------------

    def get(self, key: str) -> bytes:
        try:
            with open(self.path(key), "rb", buffering=0) as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyError(key) from None

    def exists(self, key: str) -> bool:
        return os.path.exists(self.path(key))

    def local_path(self, key: str) -> str:
        p = self.path(key)
        if not os.path.isfile(p):
            raise KeyError(key)
        return p

    def open_ranged(self, key: str) -> RangedObject:
        from .ranged import StoreFile

        try:
            return StoreFile.of_file(self.path(key))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyError(key) from None

    def list_dir(self, prefix: str) -> list[str]:
        try:
            names = os.listdir(self.path(prefix.rstrip("/")) if prefix.strip("/") else self.root)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = [n for n in names if not n.startswith(".")]  # in-flight temp files
        names.sort()
        return names

    def root_exists(self) -> bool:
        return os.path.isdir(self.root)

    def iter_keys(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[str]:
        base = key_dir(prefix)
        top = self.path(base.rstrip("/")) if base else self.root
        yield from self._walk_keys(top, base, start_after, skip_top=not base)

    def _walk_keys(self, path: str, base: str, start_after: str | None, *, skip_top: bool) -> Iterator[str]:
        try:
            with os.scandir(path) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it if not e.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return
        # Key order is byte order of the full key: a directory "a" sorts as "a/...".
        entries.sort(key=lambda e: f"{e[0]}/" if e[1] else e[0])
        for name, is_dir in entries:
            if skip_top and name in _NOT_KEYS:
                continue
            key = f"{base}{name}"
            if is_dir:
                if start_after is None or f"{key}/" > start_after or start_after.startswith(f"{key}/"):
                    yield from self._walk_keys(f"{path}/{name}", f"{key}/", start_after, skip_top=False)
            elif start_after is None or key > start_after:
                yield key

    def iter_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        for key in self.iter_keys(prefix):
            try:
                yield key, os.stat(self.path(key)).st_size
            except FileNotFoundError:
                continue

    def iter_stats(self, prefix: str = "") -> Iterator[tuple[str, int, float]]:
        for key in self.iter_keys(prefix):
            try:
                st = os.stat(self.path(key))
            except FileNotFoundError:
                continue
            yield key, st.st_size, st.st_mtime

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(f"Invalid byte range start={start}, length={length} for {key!r}.")
        try:
            with open(self.path(key), "rb", buffering=0) as f:
                return os.pread(f.fileno(), length, start) if length else b""
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyError(key) from None

    def delete(self, key: str) -> None:
        try:
            os.unlink(self.path(key))
        except (FileNotFoundError, NotADirectoryError):
            pass

    def delete_many(self, keys: Sequence[str]) -> None:
        """Remove the keys, then the directories that held them once empty (a deleted run
        leaves no directory behind: a listing would take it for a run). A writer that
        finds its directory gone recreates it (``_publish``, ``_put_beside``)."""
        parents: set[str] = set()
        for key in keys:
            self.delete(key)
            parents.add(key.rpartition("/")[0])
        for parent in sorted(parents, key=len, reverse=True):
            while parent:
                try:
                    os.rmdir(self.path(parent))
                except OSError:  # not empty (or already gone): its ancestors are not empty either
                    break
                self._dirs.discard(self.path(parent))
                parent = parent.rpartition("/")[0]

    def quarantine(self, key: str, *, only: FileId | None = None) -> bool:
        """Move ``key`` to ``<root>/quarantine/<key with / as _>.<ns>``; a missing key is not an error.

        A rename, never a copy: a reader that has the damaged file mapped keeps its
        pages, and the key is free at once for a writer to store the good bytes.

        With ``only``, a good file is never moved away. Two readers may both find
        a blob damaged; the first moves it and a writer stores the good bytes
        again before the second gets here. Every quarantine holds an exclusive
        lock on the ``quarantine/`` directory while it checks that ``key`` is still the
        file ``only`` and renames it. Nothing else removes blobs, and writers
        never replace an existing key, so under the lock the file checked is the
        file moved, and readers never see the good copy missing. Where the lock
        is not available (no ``flock``, or a quarantiner without it), the moved
        file is checked again and, if it is not ``only``, linked back without
        replacing anything at ``key``.
        """
        src = self.path(key)
        qdir = f"{self.root}/{QUARANTINE_DIR}"
        os.makedirs(qdir, exist_ok=True)  # not cached: quarantine/ may be deleted at any time
        with _exclusive_lock(qdir):
            if only is not None:
                try:
                    if file_id(os.stat(src)) != only:
                        return False
                except FileNotFoundError:
                    return True
            moved = f"{qdir}/{key.replace('/', '_')}.{time.time_ns()}"
            try:
                os.rename(src, moved)
            except FileNotFoundError:
                return True
            if only is None or file_id(os.stat(moved)) == only:
                return True
            self._publish(moved, src)  # link back unless a newer copy is there; removes ``moved``
            return False

    def sweep_temp(self, *, deep: bool = False) -> tuple[int, int]:
        """Remove temp files whose writer process is gone; returns (files, bytes) removed.

        Always ``tmp/`` (where large blobs stream, one directory: cheap enough for
        every run start); with ``deep`` also the ``.<pid>...tmp`` files written
        beside blobs and records (a walk of the store, done by ``reindex``). A
        file of a live writer is never touched, however old.
        """
        removed, freed = sweep_dir(self._tmp)
        if deep:
            for sub in ("blobs", "runs"):
                for dirpath, _dirs, _files in os.walk(f"{self.root}/{sub}"):
                    n, b = sweep_dir(dirpath, dot_only=True)
                    removed, freed = removed + n, freed + b
        return removed, freed

    def __repr__(self) -> str:
        return f"LocalObjectStore({self.root!r})"


@contextmanager
def _exclusive_lock(directory: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``directory`` for the block (no lock file to leave behind);
    a no-op where the platform or filesystem has none (``quarantine`` re-checks after moving)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # e.g. ENOLCK on some network filesystems
            pass
        yield
    finally:
        os.close(fd)


def _write_all(fd: int, data: Data) -> None:
    """Write every byte of ``data`` to ``fd`` without copying it."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    n = mv.nbytes
    pos = os.write(fd, mv if n <= _MAX_WRITE else mv[:_MAX_WRITE])
    while pos < n:
        pos += os.write(fd, mv[pos : pos + _MAX_WRITE])
