"""Content-addressed artifact store (storage layer, internal): values are keyed
by the blake3 of their logical serialized bytes, written once, verified on read.
"""

from __future__ import annotations

import base64
import copy
import io
import time
from typing import TYPE_CHECKING, Any

from ..exceptions import DataMissingError
from .codec import BlobCorruptionError, decode_inline, encode, read_blob, write_blob
from .full import StoreFullError
from .objects import ObjectStore
from .pins import ANON_REUSE, anonymous_owner, pin, run_owner, write_root

if TYPE_CHECKING:
    from .views import ArtifactView

#: Largest payload (bytes, no out-of-band buffers) kept inline in the record.
INLINE_LIMIT = 2048
# Blobs below this are built in memory and written with one put().
_SMALL_BLOB = 256 << 10
_NOT_MOVED_HINT = (
    "The store could not move the damaged blob aside: delete it from the store, then re-run "
    "the step that produced this artifact so that it is stored again."
)


def _size_text(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


def blob_key(key: str) -> str:
    """The object-store key of the blob with content key ``key``."""
    return f"blobs/{key[:2]}/{key}"


def type_name(obj: Any) -> str:
    """``module.QualName`` of ``obj``'s type, as artifact refs record it."""
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


class ContentStore:
    """Saves values as write-once blobs (or inline refs) and loads them back.

    Parameters
    ----------
    objects : ObjectStore
        Where the blobs live (``blobs/<2 hex>/<key>``).

    Examples
    --------
    >>> cs = ContentStore(LocalObjectStore("/tmp/hw-doc"))
    >>> ref = cs.save({"a": 1})
    >>> "inline" in ref, cs.load(ref)
    (True, {'a': 1})
    """

    def __init__(self, objects: ObjectStore):
        self.objects = objects
        #: Who pins the blobs this store writes (``store.pins``): a run for a store that
        #: ``for_run`` made, else None (each pin then gets a fresh anonymous owner, stamped
        #: with the time it is written).
        self.owner: str | None = None
        #: A root (``store.pins.write_root``) every blob saved from now on is recorded under, for
        #: blobs that something outside the store names (a deployed template's code package).
        self.root_name: str | None = None
        #: (owner, content key) -> when this process pinned it, shared with the stores
        #: ``for_run`` derives: a pin that exists keeps protecting, so it is written once.
        self._pinned: dict[tuple[str | None, str], float] = {}

    def for_run(self, flow: str, run_id: str) -> ContentStore:
        """A store like this one whose writes are pinned as run ``flow/run_id``'s (kept until the
        run has ended, see docs/store.md); this store is left as it is.

        Examples
        --------
        >>> cs = ContentStore(LocalObjectStore("/tmp/hw-doc"))
        >>> cs.for_run("HelloFlow", "1").owner, cs.owner
        ('runs/HelloFlow/1', None)
        """
        derived = copy.copy(self)
        derived.owner = run_owner(flow, run_id)
        return derived

    def pin(self, keys: Any) -> None:
        """Pin the content keys ``keys`` (blobs about to be written, found, or named by a new
        record) and wait out a sweep under way: gc never deletes them after this returns.

        A key this store (or one derived from it) pinned before for the same owner is not
        pinned again: the pin is still there, and any sweep that could have missed it ended
        before the first ``pin`` returned. An anonymous pin is reused for ``ANON_REUSE``
        seconds only, well within the time it protects (``PIN_GRACE``).
        """
        now = time.time()
        fresh = []
        for key in keys:
            when = self._pinned.get((self.owner, key))
            if when is None or (self.owner is None and now - when > ANON_REUSE):
                fresh.append(key)
        if not fresh:
            return
        pin(self.objects, self.owner or anonymous_owner(), fresh)
        for key in fresh:
            self._pinned[(self.owner, key)] = now

    def adopt(self, keys: list[str], source: str) -> None:
        """Pin the blobs ``keys`` that a new record will name without having written them (a
        clone of an attempt, a resume's parameters), then make sure they were not collected.

        ``source`` is the object key of the record they are taken from. If it still exists
        once the pins are in place and no sweep is under way, so do its blobs: a collector
        deletes a removed run's records before its blobs, and any collector that starts
        later sees the pins (docs/store.md, "Garbage collection").

        Raises
        ------
        DataMissingError
            ``source`` was removed (by ``headwater gc`` or ``delete``) before the pins were set.
        """
        if not keys:
            return
        self.pin(keys)
        if not self.objects.exists(source):
            raise DataMissingError(
                f"The record {source} in {self.objects.url} was removed (headwater gc or delete) while it was "
                "being cloned; its artifacts may be gone.",
                hint="Run the flow again (or resume from a run that still exists).")

    def save(self, obj: Any, *, what: str | None = None, inline: bool = True) -> dict[str, Any]:
        """Serialize ``obj`` and return its artifact ref.

        The ref is ``{"key", "size", "type"}`` plus ``"inline"`` (base64 of the
        pickle) when the value has no out-of-band buffers and at most
        ``INLINE_LIMIT`` bytes; otherwise the blob is written unless it already
        exists. Pickling errors propagate unchanged; a full disk raises
        ``StoreFullError`` naming ``what`` (e.g. ``artifact 'x' of step 'start'``)
        and leaves nothing behind. ``inline=False`` always writes the blob (for a
        value fetched by its key alone, like a code package).
        """
        enc = encode(obj)
        t = type(obj)
        ref: dict[str, Any] = {"key": enc.key, "size": enc.size, "type": f"{t.__module__}.{t.__qualname__}"}
        if inline and not enc.buffers and enc.size <= INLINE_LIMIT:
            ref["inline"] = base64.b64encode(enc.pickled).decode("ascii")
            return ref
        bkey = blob_key(enc.key)
        try:
            if self.root_name is not None:
                write_root(self.objects, self.root_name, enc.key)
            self.pin((enc.key,))  # before the exists() check: gc may be sweeping a blob we would reuse
            if self.objects.exists(bkey):
                return ref  # dedup hit: identical content is already stored
            if enc.size < _SMALL_BLOB:
                buf = io.BytesIO()
                write_blob(enc, buf)
                self.objects.put(bkey, buf.getbuffer())
            else:
                with self.objects.open_writer(bkey) as f:
                    write_blob(enc, f)
        except StoreFullError as e:
            raise StoreFullError(e.root, f"{what or 'a value'} ({_size_text(enc.size)})") from None
        return ref

    def load(self, ref: dict[str, Any], *, verify: bool = True) -> Any:
        """The value a ref names.

        Raises ``DataMissingError`` if its blob is gone, ``DataCorruptionError``
        (a ``BlobCorruptionError``) if, with ``verify``, the blob is damaged: bad
        magic, truncated, or its bytes do not match its key; and
        ``UnsupportedBlobError`` if this version cannot decode it (a newer format
        or codec), which leaves the blob in place for readers that can.

        A damaged blob is quarantined (moved out of ``blobs/``) before the error
        is raised, so the next save of the same value writes it again: re-running
        the step that produced it repairs every run that refers to it."""
        key = ref["key"]
        inline = ref.get("inline")
        if inline is not None:
            return decode_inline(base64.b64decode(inline), key if verify else None)
        bkey = blob_key(key)
        try:
            return self._read(bkey, key, verify)
        except BlobCorruptionError:
            pass
        # Read once more: another process may have quarantined it and stored good
        # bytes since, and those must not be reported as corrupt.
        try:
            return self._read(bkey, key, verify)
        except BlobCorruptionError as e:
            # Free the key: saving skips keys that exist, so only with the damaged
            # blob out of the way does re-running the step store it again. Only the
            # file that failed is moved: a good copy stored since stays, and is read.
            if self.objects.quarantine(bkey, only=e.file):
                raise
        # The key holds another file now (a good copy stored since), or the store
        # cannot tell which file it holds and left it: read what is there.
        try:
            return self._read(bkey, key, verify)
        except BlobCorruptionError as e:
            e.hint = _NOT_MOVED_HINT
            raise

    def view(self, ref: dict[str, Any]) -> ArtifactView:
        """A view of the value a ref names that reads only what is indexed (see ``store.views``).

        A large numpy array is read chunk by chunk, each verified against the blob's
        digests; anything else loads whole on first use. Raises ``DataMissingError``
        if the blob is gone.
        """
        from .views import open_view

        try:
            return open_view(self.objects, blob_key(ref["key"]), ref, lambda: self.load(ref))
        except KeyError:
            raise self._missing(ref["key"]) from None

    def _read(self, bkey: str, key: str, verify: bool) -> Any:
        try:
            path = self.objects.local_path(bkey)
        except KeyError:
            raise self._missing(key) from None  # never stored, or quarantined by another reader
        try:
            return read_blob(path, key, verify=verify)
        except FileNotFoundError as e:
            if e.filename != path:
                raise
            raise self._missing(key) from None  # quarantined between the lookup and the open

    def _missing(self, key: str) -> DataMissingError:
        return DataMissingError(
            f"Blob {key} is missing from the store {self.objects.url}.",
            hint="The blob was deleted (garbage collection, a partial copy of the store, or moved to "
            "quarantine/ because it was damaged); re-run the step that produced this artifact.",
        )

    def has(self, key: str) -> bool:
        """Whether the blob for content key ``key`` is stored."""
        return self.objects.exists(blob_key(key))
