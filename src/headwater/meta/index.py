"""The SQLite metadata index (index layer, internal): a cache of the store's run
and attempt records for fast listings. Written by run processes, read by the
client, and rebuildable at any time from the records (``Index.reindex``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..store.records import DAMAGED, DamagedRecordError
from ..store.taskmeta import PARAMETERS_STEP
from . import sql
from .files import FileId, file_id, file_lock, index_full, unlink_quietly

if TYPE_CHECKING:
    from ..store.records import RecordStore

INDEX_FILE = "index.sqlite"


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run as the index knows it."""

    flow: str
    run_id: str
    user: str | None
    tags: tuple[str, ...]
    system_tags: tuple[str, ...]
    created_at: float
    finished_at: float | None
    status: str  # "running" | "successful" | "failed"
    start_step: str
    end_step: str
    origin_run_id: str | None
    pid: int | None
    host: str | None

    @classmethod
    def from_records(cls, rec: dict[str, Any], end: dict[str, Any] | None) -> "RunRow":
        """The row a run's ``_run.json`` (and ``_run_end.json``, if any) describe."""
        return cls(
            flow=rec["flow"], run_id=rec["run_id"], user=rec.get("user"),
            tags=tuple(rec.get("tags") or ()), system_tags=tuple(rec.get("system_tags") or ()),
            created_at=rec.get("created_at") or 0.0,
            finished_at=end.get("finished_at") if end else None,
            status=end.get("status", "failed") if end else "running",
            start_step=rec.get("start_step") or "start", end_step=rec.get("end_step") or "end",
            origin_run_id=rec.get("origin_run_id"), pid=rec.get("pid"), host=rec.get("host"),
        )


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One task attempt as the index knows it."""

    flow: str
    run_id: str
    step: str
    task_id: str
    attempt: int
    status: str  # "running" | "ok" | "failed" | "damaged" (its record cannot be read)
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> "TaskRow":
        """The row an attempt record describes."""
        return cls(
            flow=rec["flow"], run_id=rec["run_id"], step=rec["step"], task_id=str(rec["task_id"]),
            attempt=int(rec["attempt"]), status=rec.get("status", "failed"),
            started_at=rec.get("started_at"), finished_at=rec.get("finished_at"),
        )


def _run_row(r: tuple[Any, ...]) -> RunRow:
    return RunRow(
        r[0], r[1], r[2], tuple(json.loads(r[3])), tuple(json.loads(r[4])),
        r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
    )  # fmt: skip


def _task_params(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        row["flow"], row["run_id"], row["step"], str(row["task_id"]), int(row["attempt"]),
        row["status"], row.get("started_at"), row.get("finished_at"),
    )  # fmt: skip


class Index:
    """The metadata index of one datastore root (``<root>/index.sqlite``).

    One object may be shared by threads: every call, read or write, holds its lock
    while it uses the connection, so a thread that reopens the file never closes
    the connection under another one.

    Parameters
    ----------
    root : str
        The datastore root.
    records : RecordStore, optional
        When given and the index file does not exist yet, the new index is
        filled from these records (so deleting the file loses nothing).

    Examples
    --------
    >>> idx = Index("/tmp/hw-doc")
    >>> [r.run_id for r in idx.runs("HelloFlow", limit=10)]  # newest first
    []
    """

    def __init__(self, root: str | os.PathLike[str], *, records: RecordStore | None = None):
        root = os.fspath(root)
        os.makedirs(root, exist_ok=True)
        self.path = os.path.join(root, INDEX_FILE)
        self._dir = root
        self._records = records
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        # The file at self.path when this object last looked: the one self._db has open
        # while attached, or (detached) the file it could not use, None if there was none.
        self._seen: FileId | None = None
        self._attached = False
        # Runs this object added (it is their run process): the rows it alone knows
        # (running attempts) and carries into any index file that replaces its own.
        self._own: set[tuple[str, str]] = set()
        #: Whether this index lives in memory because the disk is full.
        self.in_memory = False
        self._connect()

    # -- the file, and noticing that it was replaced -------------------------------

    def _connect(self) -> None:
        """(Re)open the index file, first building it from the records if it is missing.

        On a full disk SQLite cannot even open the file for reading (it must create
        its shared-memory file): the index is then built in memory from the records,
        so that read-only commands keep working, until another file appears.
        """
        if self._db is not None:
            self._db.close()
            self._db = None
        try:
            while (opened := self._open_file()) is None:
                self._build()
        except (sqlite3.OperationalError, OSError) as e:
            if not index_full(e, self._dir):
                raise
            self._seen = file_id(self.path)
            self._connect_memory()
            return
        self._db, self._seen = opened
        self._attached, self.in_memory = True, False

    def _connect_memory(self) -> None:
        db = _memory_db()
        self._load(db)
        self._db, self._attached, self.in_memory = db, False, True

    def _open_file(self) -> tuple[sqlite3.Connection, FileId] | None:
        """A connection to the index file in place and its identity; ``None`` if there is none.

        ``mode=rw``: never creates the file (an empty index would hide every run).
        """
        uri = f"file:{urllib.parse.quote(self.path)}?mode=rw"
        while True:
            before = file_id(self.path)
            if before is None:
                return None
            try:
                db = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
            except sqlite3.OperationalError:
                if file_id(self.path) is not None:
                    raise
                return None
            try:
                db.execute("PRAGMA busy_timeout = 30000")
                db.execute("PRAGMA schema_version").fetchone()  # opens the file now
                if file_id(self.path) != before:
                    db.close()  # deleted or replaced while we opened it: open the one now in place
                    continue
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                if db.execute("PRAGMA user_version").fetchone()[0] != sql.SCHEMA_VERSION:
                    db.executescript(sql.SCHEMA)
            except BaseException:
                db.close()
                raise
            return db, before

    def _load(self, db: sqlite3.Connection) -> None:
        """Create the tables in the new, private database ``db`` and fill them from the records."""
        db.executescript(sql.SCHEMA)
        if self._records is None:
            return
        runs, attempts, _ = _collect(self._records)
        cur = db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        self._fill(cur, runs, attempts)
        cur.execute("COMMIT")

    def _build(self) -> None:
        """Create the index file from the records: built aside, then renamed into place.

        Under an exclusive lock on ``.index.lock`` so that of several processes that
        find the file missing one builds it and the others open it. A reader never
        sees a half-built index, and the WAL and shared-memory files of a deleted
        index are removed before the new one appears: a connection still holding
        the old file keeps them (unlinked) and cannot mix them into the new one.
        """
        with file_lock(self._lock_path):
            if os.path.exists(self.path):
                return  # another process built it while we waited
            tmp = f"{self.path}.{os.getpid()}.tmp"
            for stale in (tmp, f"{tmp}-journal"):
                unlink_quietly(stale)
            db = sqlite3.connect(tmp, isolation_level=None, check_same_thread=False)
            try:
                self._load(db)
                db.execute("PRAGMA journal_mode = WAL")
            finally:
                db.close()  # the last connection: checkpoints and removes tmp's WAL
            for side in ("-wal", "-shm"):
                unlink_quietly(self.path + side)
            os.rename(tmp, self.path)

    @property
    def _lock_path(self) -> str:
        return os.path.join(self._dir, ".index.lock")

    def _replaced(self) -> bool:
        """Whether the file in place is not the one this object last saw (one ``stat``):
        deleted or replaced, e.g. by ``rm index.sqlite`` and another process rebuilding it,
        or, while detached, a file that appeared."""
        return file_id(self.path) != self._seen

    def _current(self) -> sqlite3.Connection:
        """The connection, moved to the file in place first if that changed; callers hold the lock."""
        if self._replaced():
            if self._own:
                self._adopt()
            else:
                self._connect()
        assert self._db is not None
        return self._db

    def _adopt(self) -> None:
        """A run process moves to the index file now in place, carrying its own runs' rows.

        It never builds a missing file itself (that scans the whole store, and would
        stall its scheduler): it goes on detached, its rows kept in its connection,
        and the next reader builds the file from the records. When a file appears
        (or one that could not be used is replaced), this run's rows go into it.
        A file it cannot write on a full disk is removed, never left to show a
        stale status.
        """
        opened = None
        try:
            opened = self._open_file()
            if opened is not None:
                self._carry_own_rows(opened[0])
        except (sqlite3.OperationalError, OSError) as e:
            if opened is not None:
                opened[0].close()
            if not index_full(e, self._dir):
                raise
            self._remove_file()
            opened = None
        if opened is None:
            self._seen, self._attached = None, False
            return
        assert self._db is not None
        self._db.close()
        self._db, self._seen = opened
        self._attached, self.in_memory = True, False

    def _carry_own_rows(self, dst: sqlite3.Connection) -> None:
        """Copy this object's own runs' rows from its connection into ``dst``, in one transaction.

        What ``dst`` already knows from the records wins over a row still ``running``
        here (a rebuild read a record committed after this object's row); a run's tags
        are ``dst``'s when it has the run (tag events are in the records).
        """
        assert self._db is not None
        cur = dst.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for flow, run_id in sorted(self._own):
                run = self._db.execute(sql.RUN, (flow, run_id)).fetchone()
                if run is None:
                    continue
                if cur.execute(sql.RUN, (flow, run_id)).fetchone() is None:
                    cur.execute(sql.INSERT_RUN, run)
                    cur.executemany(sql.INSERT_TAG, self._db.execute(sql.RUN_TAG_ROWS, (flow, run_id)).fetchall())
                else:
                    cur.execute(sql.END_RUN_IF_RUNNING, (run[7], run[6], flow, run_id))
                cur.executemany(sql.MERGE_TASK, self._db.execute(sql.RUN_TASK_ROWS, (flow, run_id)).fetchall())
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _remove_file(self) -> None:
        with file_lock(self._lock_path):
            for path in (self.path, self.path + "-wal", self.path + "-shm"):
                unlink_quietly(path)

    def _settle(self) -> None:
        """A detached run process, before its last write returns: wait for a rebuild in
        progress (it may have read the records before this run's last ones), then carry
        this run's rows into the file it made. A later rebuild reads them from the records."""
        if self._attached or not self._own:
            return
        try:
            with file_lock(self._lock_path):
                pass
            with self._lock:
                self._current()
        except (sqlite3.OperationalError, OSError) as e:
            if not index_full(e, self._dir):
                raise

    # -- writes ----------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        # IMMEDIATE takes the write lock up front: no deadlock-prone upgrade
        # from a read transaction when two run processes write at once. The
        # lock keeps threads sharing this connection out of each other's
        # transactions.
        with self._lock:
            cur = self._current().cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _write(self, fn: Callable[[sqlite3.Cursor], object], *, last: bool = False) -> None:
        """Run ``fn`` in a write transaction that reaches the index file now in place.

        If the file was replaced while ``fn`` wrote (a write into a deleted file is
        lost), the new file is opened and ``fn`` runs again: every write here is
        idempotent. A missing file is built from the records, except by a run
        process, which writes on detached (``_adopt``); with ``last`` (the run's
        end) it first makes sure that a file rebuilt meanwhile gets its rows.
        """
        while True:
            try:
                with self._transaction() as cur:
                    fn(cur)
            except sqlite3.OperationalError as e:
                if not index_full(e, self._dir):
                    raise
                self._drop_for_full_disk()
                continue
            if not self._replaced():
                break
        if last:
            self._settle()

    def _drop_for_full_disk(self) -> None:
        """The disk is full and the index file can no longer be kept up to date: remove it
        (a stale index would show wrong status; the next process to open it after space
        is freed rebuilds it from the records) and go on in memory: a run process with
        its own rows, any other user with all rows, from the records."""
        with self._lock:
            mem: sqlite3.Connection | None = None
            if self._own and self._db is not None:
                mem = _memory_db()
                try:
                    mem.executescript(sql.SCHEMA)
                    self._carry_own_rows(mem)
                except sqlite3.Error:  # the full disk's file cannot even be read: the records, then
                    mem.close()
                    mem = None
            if self._db is not None:
                self._db.close()
            self._remove_file()
            if mem is None:
                mem = _memory_db()
                self._load(mem)
            self._db, self._seen, self._attached, self.in_memory = mem, None, False, True

    def _insert_run(self, cur: sqlite3.Cursor, rec: dict[str, Any], status: str, finished_at: float | None,
                    tags: Sequence[str] | None = None) -> None:
        flow, run_id = rec["flow"], str(rec["run_id"])
        tags = list(rec.get("tags") or ()) if tags is None else list(tags)
        system_tags = list(rec.get("system_tags") or ())
        cur.execute(
            sql.INSERT_RUN,
            (
                flow, run_id, rec.get("user"), json.dumps(tags), json.dumps(system_tags),
                rec["created_at"], finished_at, status, rec.get("start_step", "start"),
                rec.get("end_step", "end"), rec.get("origin_run_id"), rec.get("pid"), rec.get("host"),
            ),
        )  # fmt: skip
        cur.execute(sql.DELETE_TAGS, (flow, run_id))
        cur.executemany(
            sql.INSERT_TAG,
            [(flow, run_id, 0, t) for t in tags] + [(flow, run_id, 1, t) for t in system_tags],
        )

    def add_run(self, run_record: dict[str, Any]) -> None:
        """Index a run that just started (status ``running``) from its run record.

        This object is then that run's writer: should the index file be deleted, it
        goes on without rebuilding the file and carries the run's rows into the next.
        """
        self._own.add((run_record["flow"], str(run_record["run_id"])))
        self._write(lambda cur: self._insert_run(cur, run_record, "running", None))

    def end_run(self, flow: str, run_id: str, status: str, finished_at: float) -> None:
        """Record how a run ended (``successful`` or ``failed``)."""
        self._write(lambda cur: cur.execute(sql.END_RUN, (status, finished_at, flow, run_id)), last=True)

    def upsert_attempts(self, rows: Iterable[dict[str, Any]]) -> None:
        """Insert or replace task attempt rows (keys as ``TaskRow`` fields), atomically."""
        params = [_task_params(r) for r in rows]
        if not params:
            return
        self._write(lambda cur: cur.executemany(sql.UPSERT_TASK, params))

    @staticmethod
    def _set_tags(cur: sqlite3.Cursor, flow: str, run_id: str, tags: Sequence[str]) -> None:
        tags = list(dict.fromkeys(tags))
        cur.execute(sql.SET_TAGS, (json.dumps(tags), flow, run_id))
        if cur.rowcount:  # no tag rows for a run the index does not know
            cur.execute(sql.DELETE_USER_TAGS, (flow, run_id))
            cur.executemany(sql.INSERT_TAG, [(flow, run_id, 0, t) for t in tags])

    def set_tags(self, flow: str, run_id: str, tags: Sequence[str]) -> None:
        """Replace a run's user tags (system tags are unchanged)."""
        self._write(lambda cur: self._set_tags(cur, flow, run_id, tags))

    def sync_tags(self, flow: str, run_id: str, records: RecordStore) -> list[str]:
        """Set a run's user tags to what its record and tag events say; returns them.

        The events are read inside the index's write lock, so of several
        processes changing tags at once the last to get the lock sees every
        event and the index ends up matching the store.
        """
        tags: list[str] = []

        def sync(cur: sqlite3.Cursor) -> None:
            tags[:] = records.current_tags(flow, run_id)
            self._set_tags(cur, flow, run_id, tags)

        self._write(sync)
        return tags

    def forget_runs(self, flow: str, run_ids: Sequence[str]) -> None:
        """Drop every row of the runs ``run_ids`` of ``flow`` (their records were deleted:
        ``headwater gc`` or ``delete``)."""

        statements = self._forget_statements()

        def forget(cur: sqlite3.Cursor) -> None:
            for statement in statements:
                cur.executemany(statement, [(flow, r) for r in run_ids])

        self._write(forget)

    def _forget_statements(self) -> tuple[str, ...]:
        return sql.FORGET_RUN

    def reindex(self, records: RecordStore, *,
                on_progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Rebuild the whole index from the store's records, in one transaction.

        A run without an end record is ``running``; a directory without a run
        record (or an unreadable one) is skipped; an attempt whose record is
        damaged is indexed with status ``damaged``; a run's user tags are its
        record's with its tag events applied. Returns counts: ``runs``,
        ``attempts``, ``skipped``, ``damaged``. ``on_progress(done, total)`` is called
        after each run directory is read.
        """
        runs, attempts, counts = _collect(records, on_progress)
        self._write(lambda cur: self._fill(cur, runs, attempts))
        return counts

    def _fill(self, cur: sqlite3.Cursor, runs: list[tuple[dict[str, Any], str, float | None, list[str]]],
              attempts: list[tuple[Any, ...]]) -> None:
        for stmt in sql.CLEAR:  # one by one: executescript() would commit
            cur.execute(stmt)
        for rec, status, finished_at, tags in runs:
            self._insert_run(cur, rec, status, finished_at, tags)
        cur.executemany(sql.UPSERT_TASK, attempts)

    # -- reads -----------------------------------------------------------------

    def _query(self, statement: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of one statement, read under the lock (no other thread reopens meanwhile)."""
        with self._lock:
            return self._current().execute(statement, params).fetchall()

    def flows(self) -> list[str]:
        """Names of the flows with at least one run, sorted."""
        return [r[0] for r in self._query(sql.FLOWS)]

    def runs(self, flow: str, *, tags: Sequence[str] = (), limit: int | None = None) -> list[RunRow]:
        """Runs of ``flow``, newest first, having every tag in ``tags`` (user or system)."""
        lim = -1 if limit is None else limit
        if tags:
            tag_list = json.dumps(list(dict.fromkeys(tags)))
            rows = self._query(sql.RUNS_TAGGED, {"flow": flow, "tags": tag_list, "limit": lim})
        else:
            rows = self._query(sql.RUNS, (flow, lim))
        return [_run_row(r) for r in rows]

    def run(self, flow: str, run_id: str) -> RunRow | None:
        """One run, or ``None``."""
        rows = self._query(sql.RUN, (flow, run_id))
        return _run_row(rows[0]) if rows else None

    def steps(self, flow: str, run_id: str) -> list[str]:
        """Steps of a run that have started, in order of first start (no ``_parameters``)."""
        return [r[0] for r in self._query(sql.STEPS, (flow, run_id, PARAMETERS_STEP))]

    def tasks(self, flow: str, run_id: str, step: str) -> list[TaskRow]:
        """The latest attempt of each task of a step, newest first."""
        return [TaskRow(*r) for r in self._query(sql.TASKS, (flow, run_id, step))]

    def task(self, flow: str, run_id: str, step: str, task_id: str) -> TaskRow | None:
        """The latest attempt of one task, or ``None``."""
        rows = self._query(sql.TASK, (flow, run_id, step, task_id))
        return TaskRow(*rows[0]) if rows else None

    def attempt_rows(self, flow: str, run_id: str, step: str, task_id: str) -> list[TaskRow]:
        """Every attempt of one task, by attempt number."""
        return [TaskRow(*r) for r in self._query(sql.ATTEMPTS, (flow, run_id, step, task_id))]

    def close(self) -> None:
        """Close the connection; a run process whose file was deleted first gives its rows
        to a file rebuilt meanwhile."""
        if self._db is None:
            return
        self._settle()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _memory_db() -> sqlite3.Connection:
    """A new, empty in-memory database that threads may share (under the index's lock)."""
    return sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)


def _collect(records: RecordStore, on_progress: Callable[[int, int], None] | None = None
             ) -> tuple[list[tuple[dict[str, Any], str, float | None, list[str]]], list[tuple[Any, ...]], dict[str, int]]:
    """Every run and attempt row the records describe, and the counts ``reindex`` returns."""
    runs: list[tuple[dict[str, Any], str, float | None, list[str]]] = []
    attempts: list[tuple[Any, ...]] = []
    skipped = damaged = 0
    dirs = [(flow, run_id) for flow in records.flows() for run_id in records.runs(flow)]
    for done, (flow, run_id) in enumerate(dirs):
        if on_progress is not None:
            on_progress(done, len(dirs))
        try:
            rec = records.read_run(flow, run_id)
        except (KeyError, ValueError):
            skipped += 1
            continue
        try:
            end = records.read_run_end(flow, run_id)
        except DamagedRecordError:  # it ended, but how cannot be read
            end, damaged = {"status": "failed"}, damaged + 1
        status = end["status"] if end else "running"
        rec = {**rec, "flow": flow, "run_id": run_id}
        tags = records.current_tags(flow, run_id, rec)
        runs.append((rec, status, end.get("finished_at") if end else None, tags))
        for step in records.steps(flow, run_id):
            for task_id in records.tasks(flow, run_id, step):
                for n in records.attempts(flow, run_id, step, task_id):
                    try:
                        a = records.read_attempt(flow, run_id, step, task_id, n)
                    except KeyError:  # removed while listing (gc)
                        continue
                    except DamagedRecordError:
                        a, damaged = {"status": DAMAGED}, damaged + 1
                    attempts.append(_task_params({**a, "flow": flow, "run_id": run_id, "step": step,
                                                  "task_id": task_id, "attempt": n}))  # fmt: skip
    return runs, attempts, {"runs": len(runs), "attempts": len(attempts), "skipped": skipped, "damaged": damaged}
