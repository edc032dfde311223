"""The index of a remote datastore (index layer, internal): a local SQLite cache of a
URL root's records that brings itself up to date from the store incrementally.

A datastore at ``s3://...`` (any URL root) cannot hold an SQLite file, and reading
every record to build one would take a request per run. ``RemoteIndex`` keeps the
cache under ``$HEADWATER_HOME/index/<hash of the root>/`` and syncs one flow at a time
when its runs are listed: a cold cache reads the flow's catalog segments, then lists
only the runs after them; a warm one lists only the runs after the last it knew
(run ids are time-ordered), re-checks the runs it knew unfinished, and re-reads the
tags of runs that a tag mark says changed. A reader that has synced enough settled
runs past the catalog compacts them into a new segment. Design and proofs:
docs/index-sync.md.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..exceptions import HeadwaterException
from ..store.roots import state_dir
from ..store.catalog import Catalog, is_time_run_id, run_id_at, scan_runs
from ..store.records import DAMAGED, RUN_END_FILE, RUN_FILE, TAGS_DIR, DamagedRecordError, replay_tags
from . import sql
from .index import Index, RunRow, TaskRow, _run_row, _task_params

if TYPE_CHECKING:
    from ..store.records import RecordStore

#: Directory under ``Settings.home`` holding one index cache per remote root.
CACHE_DIR = "index"
#: How long after its id's time a run's record (or a tag mark) is surely in the store.
#: Runs and marks newer than this are listed again at every sync; only older ones are
#: compacted into catalog segments. Covers a run process stalled between choosing its
#: id and writing its record, and clocks of the machines that write runs being apart.
SETTLE_SECONDS = 300.0
#: Runs per catalog segment: a cold reader of N runs makes about N / SEGMENT_RUNS reads.
SEGMENT_RUNS = 100

_RUN_FIELDS = ("run_id", "user", "tags", "system_tags", "created_at", "finished_at", "status",
               "start_step", "end_step", "origin_run_id", "pid", "host")


def cache_dir(home: str, identity: str) -> str:
    """Where the index cache of the store named ``identity`` (``ObjectStore.identity``: its
    URL, and for S3 its endpoint) lives: one directory per store."""
    return state_dir(home, CACHE_DIR, identity)


def _segment_row(row: RunRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _RUN_FIELDS}


@dataclass
class _Pull:
    """What one sync of a flow read from the store, written to the cache in one transaction."""

    runs: list[tuple[dict[str, Any], str, float | None]] = field(default_factory=list)  # rec, status, finished
    segment_tags: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    ends: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    marks: list[tuple[str, str, str]] = field(default_factory=list)  # (stamp, run id, event): settled
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # run records read, by id
    skipped: int = 0


class RemoteIndex(Index):
    """The metadata index of a datastore at a URL root: a local cache that syncs from the store.

    Parameters
    ----------
    root : str
        The datastore's root URL (``s3://bucket/prefix``, ``mem://...``).
    home : str
        ``Settings.home``: the cache lives in ``cache_dir(home, root)``.
    records : RecordStore, optional
        The store's records (opened from ``root`` when first needed if not given).

    Notes
    -----
    Listing a flow's runs (``runs``) syncs that flow first; ``run`` re-checks a run
    the cache holds as running; ``steps`` and ``tasks`` read a run's attempt records
    the first time (and again while the run is unfinished). Writes by the run process
    (``add_run``, ``upsert_attempts``, ...) go to the cache as for the local index.
    """

    def __init__(self, root: str, *, home: str, records: RecordStore | None = None):
        self.root_url = root
        self._store_records = records
        directory = cache_dir(home, self.store_records.objects.identity)
        os.makedirs(directory, exist_ok=True)
        note = os.path.join(directory, "root.txt")
        if not os.path.exists(note):  # for people looking at the cache directory
            with open(note, "w", encoding="utf-8") as f:
                f.write(root + "\n")
        super().__init__(directory)  # no records: a missing cache starts empty, then syncs
        self._sync_lock = threading.RLock()
        self._tables_in: object = None  # the cache file the sync tables were made in
        self._compaction_failed = False  # e.g. read-only credentials: this object stops trying

    @property
    def store_records(self) -> RecordStore:
        """The records of the store this index caches."""
        if self._store_records is None:
            from ..store import open_object_store
            from ..store.records import RecordStore

            self._store_records = RecordStore(open_object_store(self.root_url))
        return self._store_records

    # -- sync state ------------------------------------------------------------------

    def _ensure_tables(self) -> None:
        """Create the sync tables in the cache file in place (once per file: it may be deleted)."""
        if self._tables_in is not None and self._tables_in == self._seen and not self._replaced():
            return

        def create(cur: sqlite3.Cursor) -> None:
            for stmt in sql.SYNC_TABLES:
                cur.execute(stmt)

        self._write(create)
        self._tables_in = self._seen

    def _state(self, flow: str) -> tuple[str, str]:
        rows = self._query(sql.SYNC_STATE, (flow,))
        return (rows[0][0], rows[0][1]) if rows else ("", "")

    # -- syncing runs ----------------------------------------------------------------

    def sync(self, flow: str, records: RecordStore | None = None) -> int:
        """Bring the cached runs of ``flow`` up to date with the store; returns the runs it added.

        Cold (nothing listed yet): the catalog segments, then the runs after them. Warm:
        the runs after the last settled one. Either way one listing of ``runs/<flow>/``
        (more only past runs with many keys), a read of each new run's record, one of
        the end record of each run still unfinished, and the tags of runs marked changed.
        """
        records = self.store_records if records is None else records
        with self._sync_lock:
            self._ensure_tables()
            pull = self._pull(flow, records, *self._state(flow), horizon=run_id_at(time.time() - SETTLE_SECONDS))
            return len(pull.runs)

    def _pull(self, flow: str, records: RecordStore, catalog_last: str, listed_to: str, *, horizon: str,
              use_catalog: bool = True) -> _Pull:
        catalog = Catalog(records.objects)
        pull = _Pull()
        cached = dict(self._query(sql.RUN_STATUSES, (flow,)))
        if not listed_to and use_catalog:  # cold: what the catalog already holds, a few reads for many runs
            for first, last in catalog.segments(flow, catalog_last):
                try:
                    seg = catalog.read_segment(flow, first, last)
                except (KeyError, ValueError):
                    continue  # removed or unreadable: its runs come from the listing below
                for row in seg["runs"]:
                    if row["run_id"] not in cached:
                        pull.runs.append(({**row, "flow": flow}, row["status"], row.get("finished_at")))
                        cached[row["run_id"]] = row["status"]
                pull.segment_tags.update(seg.get("tags") or {})
                catalog_last = max(catalog_last, last)
        after = max(listed_to, catalog_last)
        listing = scan_runs(records.objects, flow, after)
        for run_id, seen in sorted(listing.runs.items()):
            if run_id in cached:
                continue
            partial = run_id in listing.partial
            if RUN_FILE not in seen and not partial:
                pull.skipped += 1  # a directory without a run record is not a run
                continue
            got = _read_run(records, flow, run_id, end_seen=RUN_END_FILE in seen or partial)
            if got is None:
                pull.skipped += 1
                continue
            pull.runs.append(got)
            pull.records[run_id] = got[0]
            cached[run_id] = got[1]
        self._read_marked_tags(flow, records, listing.tag_marks, cached, pull)
        # Runs cached as running, and running ones a segment gave (not those just read).
        running = {r for r, status in cached.items() if status == "running"} - set(pull.records)
        for run_id in sorted(running):
            if (flow, run_id) in self._own:
                continue  # this process runs it: its own rows are the newest
            try:
                end = records.read_run_end(flow, run_id)
            except DamagedRecordError:
                end = {"status": "failed"}
            if end is not None:
                pull.ends[run_id] = (end.get("status", "failed"), end.get("finished_at"))
        listed = max(after, horizon)
        self._write(lambda cur: self._apply(cur, flow, pull, catalog_last, listed))
        if not self._compaction_failed:
            try:
                self._maybe_compact(flow, catalog, catalog_last, min(listed, horizon))
            except (HeadwaterException, OSError):
                # e.g. read-only credentials: compaction is an optimisation; a reader that
                # may write does it, and this one stops asking the store every sync.
                self._compaction_failed = True
        return pull

    def _read_marked_tags(self, flow: str, records: RecordStore, marks: list[tuple[str, str, str]],
                          cached: dict[str, str], pull: _Pull) -> None:
        """Read the tags of the runs named by tag marks not yet settled here.

        A mark is written just before its event: one whose event is not there yet is
        read again at the next sync (it stays in the listing until it has settled).
        """
        pending: dict[str, list[tuple[str, str]]] = {}
        for stamp, run_id, event in marks:
            if run_id in cached and not self._query(sql.TAG_MARK_SEEN, (flow, stamp, run_id, event)):
                pending.setdefault(run_id, []).append((stamp, event))
        for run_id, run_marks in pending.items():
            rec = pull.records.get(run_id)
            if rec is None:
                try:
                    rec = records.read_run(flow, run_id)
                except (KeyError, ValueError):
                    continue
            named = records.read_named_tag_events(flow, run_id)
            pull.tags[run_id] = replay_tags(rec.get("tags") or (), [event for _, event in named])
            there = {name for name, _ in named}
            pull.marks.extend((stamp, run_id, event) for stamp, event in run_marks if event in there)

    def _apply(self, cur: sqlite3.Cursor, flow: str, pull: _Pull, catalog_last: str, listed_to: str) -> None:
        known = dict(cur.execute(sql.RUN_STATUSES, (flow,)).fetchall())
        for rec, status, finished_at in pull.runs:
            if rec["run_id"] not in known:  # a run process (or another sync) may have written it since
                self._insert_run(cur, rec, status, finished_at)
        for tags in (pull.segment_tags, pull.tags):
            for run_id, user_tags in tags.items():
                self._set_tags(cur, flow, run_id, user_tags)
        for run_id, (status, finished_at) in pull.ends.items():
            cur.execute(sql.END_RUN_IF_RUNNING, (status, finished_at, flow, run_id))
        cur.executemany(sql.ADD_TAG_MARK, [(flow, *mark) for mark in pull.marks])
        cur.execute(sql.PUT_SYNC_STATE, (flow, catalog_last, listed_to))

    # -- compaction ------------------------------------------------------------------

    def _maybe_compact(self, flow: str, catalog: Catalog, catalog_last: str, settled: str) -> None:
        """Write a catalog segment for every ``SEGMENT_RUNS`` settled runs past the catalog.

        Only runs whose ids are older than ``SETTLE_SECONDS`` and at or below what this
        cache has listed (so it knows every run of the range) are compacted. Segments are
        cut from the catalog's end in fixed counts: readers that know the same runs write
        the same segment under the same name, and the create-only write keeps the first.
        """
        rows = [r for r in map(_run_row, self._query(sql.RUNS_IN_RANGE, (flow, catalog_last, settled)))
                if is_time_run_id(r.run_id)]
        if len(rows) < SEGMENT_RUNS:
            return
        spans = catalog.segments(flow, catalog_last)  # another reader may have compacted meanwhile
        prev = max([catalog_last, *(last for _, last in spans)])
        rows = [r for r in rows if r.run_id > prev]
        while len(rows) >= SEGMENT_RUNS:
            chunk, rows = rows[:SEGMENT_RUNS], rows[SEGMENT_RUNS:]
            last = chunk[-1].run_id
            marked = [r[0] for r in self._query(sql.MARKED_RUNS, (flow, prev, last))]
            tags = {}
            for run_id in marked:
                row = self.run_row(flow, run_id)
                if row is not None:
                    tags[run_id] = list(row.tags)
            catalog.write_segment(flow, [_segment_row(r) for r in chunk], tags)
            prev = last
        self._write(lambda cur: cur.execute(sql.RAISE_CATALOG_LAST, (prev, flow, prev)))

    def run_row(self, flow: str, run_id: str) -> RunRow | None:
        """The cached row of one run, without syncing."""
        return super().run(flow, run_id)

    # -- syncing attempts ------------------------------------------------------------

    def _sync_attempts(self, flow: str, run_id: str, records: RecordStore | None = None) -> tuple[int, int]:
        """Cache the attempt rows of one run from its records; returns (attempts, damaged).

        One listing of the run's keys, then a read of each attempt record not yet cached
        as ended. A run that had ended is never listed again; nor is one this process
        runs (its own rows are the newest), unless ``records`` is given (a rebuild).
        """
        if records is None:
            if (flow, run_id) in self._own:
                return 0, 0
            records = self.store_records
        self._ensure_tables()
        if self._query(sql.ATTEMPTS_SYNCED, (flow, run_id)):
            return 0, 0
        row = self.run_row(flow, run_id)
        ended = row is not None and row.status != "running"
        settled = {(s, t, int(a)) for s, t, a in self._query(sql.SETTLED_ATTEMPTS, (flow, run_id))}
        prefix = f"runs/{flow}/{run_id}/"
        rows, damaged = [], 0
        for key in records.objects.iter_keys(prefix):
            parts = key[len(prefix):].split("/")
            if len(parts) != 3 or parts[0] == TAGS_DIR:
                continue
            step, task_id, name = parts
            stem, dot, ext = name.partition(".")
            if ext != "json" or not stem.isdigit() or (step, task_id, int(stem)) in settled:
                continue
            try:
                rec = records.read_attempt(flow, run_id, step, task_id, int(stem))
            except KeyError:
                continue
            except DamagedRecordError:
                rec, damaged = {"status": DAMAGED}, damaged + 1
            rows.append(_task_params({**rec, "flow": flow, "run_id": run_id, "step": step,
                                      "task_id": task_id, "attempt": int(stem)}))  # fmt: skip

        def write(cur: sqlite3.Cursor) -> None:
            cur.executemany(sql.UPSERT_TASK, rows)
            if ended:
                cur.execute(sql.MARK_ATTEMPTS_SYNCED, (flow, run_id))

        self._write(write)
        return len(rows), damaged

    # -- the index interface: reads sync first ----------------------------------------

    def runs(self, flow: str, *, tags: Sequence[str] = (), limit: int | None = None) -> list[RunRow]:
        """Runs of ``flow``, newest first, after syncing the flow from the store."""
        self.sync(flow)
        return super().runs(flow, tags=tags, limit=limit)

    def run(self, flow: str, run_id: str) -> RunRow | None:
        """One run; a run cached as running is re-checked against its end record first."""
        row = super().run(flow, run_id)
        if row is None or row.status != "running" or (flow, run_id) in self._own:
            return row
        try:
            end = self.store_records.read_run_end(flow, run_id)
        except DamagedRecordError:
            end = {"status": "failed"}
        if end is None:
            return row
        self._write(lambda cur: cur.execute(
            sql.END_RUN_IF_RUNNING, (end.get("status", "failed"), end.get("finished_at"), flow, run_id)))
        return super().run(flow, run_id)

    def steps(self, flow: str, run_id: str) -> list[str]:
        self._sync_attempts(flow, run_id)
        return super().steps(flow, run_id)

    def tasks(self, flow: str, run_id: str, step: str) -> list[TaskRow]:
        self._sync_attempts(flow, run_id)
        return super().tasks(flow, run_id, step)

    def _forget_statements(self) -> tuple[str, ...]:
        self._ensure_tables()
        return sql.FORGET_RUN + sql.FORGET_SYNCED_RUN

    def reindex(self, records: RecordStore, *,
                on_progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Rebuild the cache from the store's records alone: every run of every flow from a
        full listing (catalog segments are not trusted here, so a segment that missed a run
        cannot hide it), then every run's attempt records. Returns counts as ``Index.reindex``."""
        with self._sync_lock:
            self._ensure_tables()

            def clear(cur: sqlite3.Cursor) -> None:
                for stmt in (*sql.CLEAR, *sql.CLEAR_SYNC):
                    cur.execute(stmt)

            self._write(clear)
            counts = {"runs": 0, "attempts": 0, "skipped": 0, "damaged": 0}
            horizon = run_id_at(time.time() - SETTLE_SECONDS)
            every: list[tuple[str, str]] = []  # every run is listed first, so the total is known
            for flow in records.flows():
                pull = self._pull(flow, records, "", "", horizon=horizon, use_catalog=False)
                counts["skipped"] += pull.skipped
                runs = super().runs(flow)
                every.extend((flow, run.run_id) for run in runs)
            for done, (flow, run_id) in enumerate(every):
                if on_progress is not None:
                    on_progress(done, len(every))
                counts["runs"] += 1
                n, bad = self._sync_attempts(flow, run_id, records)
                counts["attempts"] += n
                counts["damaged"] += bad
            if on_progress is not None:
                on_progress(len(every), len(every))
            return counts


def _read_run(records: RecordStore, flow: str, run_id: str, *,
              end_seen: bool) -> tuple[dict[str, Any], str, float | None] | None:
    """A new run's cache row from its records: (record, status, finished_at); ``None`` if it
    has no readable run record. The end record is read only if the listing showed it."""
    try:
        rec = records.read_run(flow, run_id)
    except (KeyError, ValueError):
        return None
    rec = {**rec, "flow": flow, "run_id": run_id, "created_at": rec.get("created_at") or 0.0}
    end = None
    if end_seen:
        try:
            end = records.read_run_end(flow, run_id)
        except DamagedRecordError:
            end = {"status": "failed"}
    if end is None:
        return rec, "running", None
    return rec, end.get("status", "failed"), end.get("finished_at")


__all__ = ["CACHE_DIR", "SEGMENT_RUNS", "SETTLE_SECONDS", "RemoteIndex", "cache_dir"]
