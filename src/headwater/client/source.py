"""Where the client reads from (reading layer): the datastore root in effect,
and one lazily opened ``Datastore`` + ``Index`` per root, shared by every object.

The root is ``load_settings().datastore_root`` unless :func:`metadata` pinned
one. Settings are re-read whenever the environment they depend on changes, so a
process that runs flows in several directories reads each from the right place.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ..config import STORE_DIRNAME, Settings, load_settings
from ..exceptions import HeadwaterException, HeadwaterNotFound
from ..store.roots import normalize_root
from ..store.taskmeta import PARAMETERS_STEP

# The environment variables load_settings() (and the default namespace) depend on.

_ENV_KEYS = (
    "HEADWATER_DATASTORE_ROOT",
    "HEADWATER_DATASTORE_SYSROOT_LOCAL",
    "HEADWATER_DATASTORE",
    "HEADWATER_DEFAULT_DATASTORE",
    "HEADWATER_DATASTORE_SYSROOT_S3",
    "HEADWATER_HOME",
    "HEADWATER_USER",
    "USER",
    "USERNAME",
    "LOGNAME",
)

_lock = threading.RLock()
_pinned_root: str | None = None
_pinned_provider: str | None = None  # a metadata provider named by metadata("<provider>@<path>")
_settings_key: tuple[Any, ...] | None = None
_settings: Settings | None = None
_sources: dict[tuple[str, str], Source] = {}
_sources_pid: int = os.getpid()
# Roots kept open at once; a process that reads many stores (a test session) stays bounded.
_MAX_OPEN_SOURCES = 8
# Run records kept per source (each is small; they are immutable once written).
_RUN_RECORDS_CACHED = 256


def current_settings() -> Settings:
    """The ``Settings`` for the current environment (cached until it changes)."""
    global _settings_key, _settings
    key = (os.getcwd(), *(os.environ.get(k) for k in _ENV_KEYS))
    with _lock:
        if _settings is None or key != _settings_key:
            _settings = load_settings()
            _settings_key = key
        return _settings


def current_root() -> str:
    """The datastore root the client reads from right now."""
    return _pinned_root if _pinned_root is not None else current_settings().datastore_root


def current_provider() -> str:
    """The metadata provider the client reads through right now (``local`` unless configured)."""
    return _pinned_provider if _pinned_provider is not None else current_settings().metadata


def source_for(root: str | None = None) -> Source:
    """The shared ``Source`` of ``root`` (default: :func:`current_root`)."""
    global _sources_pid
    root = current_root() if root is None else root
    key = (current_provider(), root)
    with _lock:
        if os.getpid() != _sources_pid:
            # A forked child starts its own cache (Source also refuses the parent's connection).
            _sources.clear()
            _sources_pid = os.getpid()
        src = _sources.pop(key, None)
        if src is None:
            src = Source(root, provider=key[0])
        _sources[key] = src  # most recently used last
        while len(_sources) > _MAX_OPEN_SOURCES:
            # Closing is safe: a Source reopens on its next use.
            _sources.pop(next(iter(_sources))).close()
        return src


def pin_root(root: str, provider: str | None = None) -> None:
    """Read from exactly ``root`` from now on (the CLI's ``--datastore-root``), through
    ``provider`` when given (the CLI's ``--metadata``)."""
    global _pinned_root, _pinned_provider
    with _lock:
        _pinned_root = normalize_root(root)
        if provider is not None:
            _pinned_provider = provider


def root_exists(root: str) -> bool:
    """Whether the datastore at ``root`` (a path or a URL) has been created."""
    from ..store import Datastore

    return Datastore(root).exists()


def _resolve_local_path(path: str) -> str:
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.basename(path) == STORE_DIRNAME:
        return path
    nested = os.path.join(path, STORE_DIRNAME)
    if os.path.isdir(nested):
        return nested
    if os.path.isdir(os.path.join(path, "runs")) or os.path.isfile(os.path.join(path, "index.sqlite")):
        return path
    raise HeadwaterNotFound(
        f"No headwater datastore at {path!r}.",
        hint=f"Pass the datastore directory itself (named {STORE_DIRNAME!r}) or the directory containing it.",
    )


def metadata(ms: str) -> str:
    """Read from an explicit datastore root instead of the configured one.

    Parameters
    ----------
    ms : str
        ``"local@<path>"`` or a bare ``<path>``: the datastore directory
        (``.headwater``) or the directory that contains it.

    Returns
    -------
    str
        The description of the metadata source now in effect, as
        :func:`get_metadata` gives it.

    Examples
    --------
    >>> metadata("local@/data/project")  # doctest: +SKIP
    'local@/data/project/.headwater'
    """
    global _pinned_root, _pinned_provider
    if not isinstance(ms, str) or not ms:
        raise HeadwaterException(f"metadata() expects a string like 'local@/path', got {ms!r}.")
    kind, sep, rest = ms.partition("@")
    provider = None
    if sep:
        from ..meta import metadata_providers

        known = metadata_providers()
        if kind not in known:
            raise HeadwaterException(
                f"Metadata provider {kind!r} is not supported.",
                hint=f"Use '<provider>@/path/to/datastore' with a provider of: {', '.join(known)}.",
            )
        provider = kind
        path = rest
    elif ms.startswith(("http://", "https://")):
        raise HeadwaterException(
            f"A metadata service ({ms}) is not supported.",
            hint="Use 'local@/path/to/datastore' (the only provider headwater has so far).",
        )
    else:
        path = ms
    root = _resolve_local_path(path)
    with _lock:
        _pinned_root = root
        _pinned_provider = provider
    return get_metadata()


def get_metadata() -> str:
    """The metadata source the client reads from.

    Returns
    -------
    str
        ``"<provider>@<datastore root>"``, e.g. ``"local@/data/.headwater"``.
    """
    return f"{current_provider()}@{current_root()}"


def default_metadata() -> str:
    """Forget any root pinned by :func:`metadata`; read from the configured one.

    Returns
    -------
    str
        The description of the default metadata source, as :func:`get_metadata`.
    """
    global _pinned_root, _pinned_provider
    with _lock:
        _pinned_root = _pinned_provider = None
    return get_metadata()


class Source:
    """One datastore root: its record store, content store and index, opened on first use.

    The index answers listings; the records (the source of truth) answer
    everything else, and stand in for the index when it does not know an object
    yet (a run started by another process, a stale cache).
    """

    def __init__(self, root: str, *, provider: str = "local"):
        self.root = root
        self.provider = provider
        self._run_records: dict[tuple[str, str], dict[str, Any]] = {}
        self._datastore: Any = None
        self._index: Any = None
        self._pid = os.getpid()
        self._open_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Source({self.root!r})"

    @property
    def exists(self) -> bool:
        """Whether the datastore has been created; asked of its object store, never of a directory."""
        return root_exists(self.root)

    def _open(self) -> bool:
        if self._index is not None and self._pid == os.getpid():
            return True
        if not self.exists:
            # Never create a store just by reading: an absent root is an empty one.
            return False
        with self._open_lock:
            if self._index is None or self._pid != os.getpid():
                from ..meta import open_index
                from ..store import Datastore

                # After a fork the parent's SQLite connection is dropped, never used or closed.
                ds = Datastore(self.root)
                self._index = open_index(self.root, records=ds.records, provider=self.provider)
                self._datastore = ds
                self._pid = os.getpid()
        return True

    def close(self) -> None:
        """Close the index connection; the next use reopens it."""
        with self._open_lock:
            idx, self._index = self._index, None
            if idx is not None and self._pid == os.getpid():
                idx.close()

    @property
    def records(self) -> Any:
        self._open()
        return self._datastore.records if self._datastore is not None else None

    # listings (index) ---------------------------------------------------------------

    def flows(self) -> list[str]:
        if not self._open():
            return []
        names = set(self._index.flows())
        try:
            names.update(self._datastore.records.flows())
        except (OSError, KeyError):
            pass
        return sorted(names)

    def runs(self, flow: str, tags: tuple[str, ...] = (), limit: int | None = None) -> list[Any]:
        if not self._open():
            return []
        rows = self._index.runs(flow, tags=tuple(tags), limit=limit)
        return list(rows)

    def steps(self, flow: str, run_id: str) -> list[str]:
        """Names of the run's started steps, oldest first, without ``_parameters``."""
        if not self._open():
            return []
        steps = list(self._index.steps(flow, run_id))
        if steps:
            return steps
        try:
            names = [n for n in self._datastore.records.steps(flow, run_id) if n != PARAMETERS_STEP]
        except (OSError, KeyError):
            return []
        first: dict[str, float] = {}
        for name in names:
            times = [t.started_at for t in self.tasks(flow, run_id, name) if t.started_at is not None]
            first[name] = min(times) if times else float("inf")
        return sorted(names, key=lambda n: (first[n], n))

    def tasks(self, flow: str, run_id: str, step: str) -> list[Any]:
        if not self._open():
            return []
        rows = list(self._index.tasks(flow, run_id, step))
        if rows:
            return rows
        try:
            ids = list(self._datastore.records.tasks(flow, run_id, step))
        except (OSError, KeyError):
            return []
        infos = [t for t in (self.task(flow, run_id, step, tid) for tid in ids) if t is not None]
        infos.sort(key=lambda t: _id_key(t.task_id), reverse=True)  # newest task first, as the index
        return infos

    # single objects (index, else records) ---------------------------------------------

    def run(self, flow: str, run_id: str) -> Any | None:
        if not self._open():
            return None
        row = self._index.run(flow, run_id)
        if row is not None:
            return row
        recs = self._datastore.records
        try:
            rec = recs.read_run(flow, run_id)
        except (KeyError, OSError, ValueError):
            return None
        from ..meta.index import RunRow

        rec = {**rec, "flow": flow, "run_id": run_id}
        rec["tags"] = recs.current_tags(flow, run_id, rec)
        return RunRow.from_records(rec, recs.read_run_end(flow, run_id))

    def run_end(self, flow: str, run_id: str) -> dict[str, Any] | None:
        if not self._open():
            return None
        try:
            return self._datastore.records.read_run_end(flow, run_id)
        except (KeyError, OSError, ValueError):
            return None

    def run_record(self, flow: str, run_id: str) -> dict[str, Any] | None:
        # Run records are written once and never rewritten: reading each once is enough
        # (Task.metadata of every task of a run needs it).
        key = (flow, run_id)
        rec = self._run_records.get(key)
        if rec is not None:
            return rec
        if not self._open():
            return None
        try:
            rec = self._datastore.records.read_run(flow, run_id)
        except (KeyError, OSError, ValueError):
            return None
        if len(self._run_records) >= _RUN_RECORDS_CACHED:
            self._run_records.pop(next(iter(self._run_records)))
        self._run_records[key] = rec
        return rec

    def task(self, flow: str, run_id: str, step: str, task_id: str) -> Any | None:
        if not self._open():
            return None
        row = self._index.task(flow, run_id, step, task_id)
        attempts = self.attempts(flow, run_id, step, task_id)
        if row is not None and (not attempts or row.attempt > attempts[-1]):
            return row
        if row is not None and row.attempt == attempts[-1] and row.status != "running":
            return row
        # The record is newer than the index: a task that committed after its
        # run process died (the index row stays "running"), or another process
        # indexing late.
        if not attempts:
            return None
        rec = self.attempt(flow, run_id, step, task_id, attempts[-1])
        if rec is None:
            return row
        from ..meta.index import TaskRow

        return TaskRow.from_record({**rec, "flow": flow, "run_id": run_id, "step": step,
                                    "task_id": task_id, "attempt": attempts[-1]})

    def attempts(self, flow: str, run_id: str, step: str, task_id: str) -> list[int]:
        if not self._open():
            return []
        try:
            return sorted(self._datastore.records.attempts(flow, run_id, step, task_id))
        except (KeyError, OSError):
            return []

    def attempt(self, flow: str, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any] | None:
        if not self._open():
            return None
        from ..store.records import DamagedRecordError, damaged_attempt

        try:
            return self._datastore.records.read_attempt(flow, run_id, step, task_id, attempt)
        except DamagedRecordError as e:
            return damaged_attempt(e)
        except (KeyError, OSError):
            return None

    # tags (the one thing the client writes) ----------------------------------------------

    def current_tags(self, flow: str, run_id: str) -> list[str]:
        """A run's user tags as the store says (record + tag events)."""
        if not self._open():
            return []
        return list(self._datastore.records.current_tags(flow, run_id))

    def change_tags(self, flow: str, run_id: str, event: dict[str, Any]) -> list[str]:
        """Append a tag event to a run and bring the index up to date; returns the user tags now."""
        if not self._open():
            raise HeadwaterNotFound(f"Run '{flow}/{run_id}' does not exist: no datastore at {self.root}.")
        recs = self._datastore.records
        recs.write_tag_event(flow, run_id, event)
        return list(self._index.sync_tags(flow, run_id, recs))

    def log(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> bytes:
        if not self._open():
            return b""
        try:
            return self._datastore.records.read_log(flow, run_id, step, task_id, attempt, stream)
        except (KeyError, OSError):
            return b""

    def load(self, ref: dict[str, Any]) -> Any:
        """The value of one artifact, from its reference in an attempt record."""
        self._open()
        return self._datastore.content.load(ref)

    def view(self, ref: dict[str, Any]) -> Any:
        """A view of one artifact that reads only what is indexed (``store.views``)."""
        self._open()
        return self._datastore.content.view(ref)


def _id_key(task_id: str) -> tuple[int, int | str]:
    """Sort key that puts numeric ids in numeric order."""
    return (0, int(task_id)) if task_id.isdigit() else (1, task_id)
