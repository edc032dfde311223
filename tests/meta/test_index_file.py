"""The SQLite index's file under change: threads sharing one index while it reopens,
an in-memory index (full disk) returning to the file, and a run process whose index
file is deleted going on without scanning the store, its rows reaching the next file."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

import headwater.meta.index as index_module
from headwater.meta import files
from headwater.meta.index import Index
from headwater.store import Datastore

WAIT = 30  # seconds: a safety net for a hung test, never reached when it passes


def _run(run_id: str = "1") -> dict:
    return {"version": 1, "flow": "F", "run_id": run_id, "user": "alice", "tags": ["t"],
            "system_tags": ["user:alice"], "created_at": 1.0, "start_step": "start", "end_step": "end",
            "parameters": [], "origin_run_id": None, "pid": 42, "host": "box", "script": "/f.py"}  # fmt: skip


def _attempt(step: str, task_id: str, status: str = "ok") -> dict:
    return {"version": 1, "flow": "F", "run_id": "1", "step": step, "task_id": task_id, "attempt": 0,
            "status": status, "started_at": 1.0, "finished_at": None if status == "running" else 2.0,
            "input_paths": [], "artifacts": {}, "exception": None, "metadata": {}}  # fmt: skip


def _delete_index(root: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        files.unlink_quietly(str(root / f"index.sqlite{suffix}"))


def _status(ds: Datastore, run_id: str = "1") -> str | None:
    """The run's status in the index file now in place, read by a fresh reader
    (which builds the file from the records if there is none)."""
    with Index(ds.root, records=ds.records) as reader:
        row = reader.run("F", run_id)
        return row.status if row else None


class _ContentionLock:
    """An RLock that says when a thread had to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.waited = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        self.waited.set()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_read_is_never_cut_off_by_another_threads_reconnect(tmp_path) -> None:
    ds = Datastore(tmp_path)
    ds.records.write_run(_run())
    idx = Index(tmp_path, records=ds.records)
    idx._lock = lock = _ContentionLock()
    reconnected = threading.Event()
    real_current, real_connect = idx._current, idx._connect
    reader = threading.get_ident()
    others: list[threading.Thread] = []

    def connect() -> None:
        real_connect()
        reconnected.set()

    def current() -> sqlite3.Connection:
        db = real_current()
        if threading.get_ident() == reader and not reconnected.is_set():
            # The reader holds its connection: another thread now finds the file
            # deleted and reopens. It must wait for the reader (the lock), never
            # close the connection under it.
            _delete_index(tmp_path)
            other = threading.Thread(target=idx.flows)
            other.start()
            while not (lock.waited.is_set() or reconnected.is_set()):
                assert other.is_alive() or reconnected.is_set()
                reconnected.wait(0.001)
            others.append(other)
        return db

    idx._current, idx._connect = current, connect  # type: ignore[method-assign]
    assert idx.flows() == ["F"]  # ProgrammingError "closed database" if the read were cut off
    others[0].join(WAIT)
    assert reconnected.is_set() and os.path.exists(idx.path)  # the other thread rebuilt and reopened
    assert idx.run("F", "1") is not None
    idx.close()


def test_an_in_memory_index_returns_to_the_file_once_it_is_back(tmp_path, monkeypatch) -> None:
    ds = Datastore(tmp_path)
    ds.records.write_run(_run())
    real_open = Index._open_file

    def full_disk(self: Index):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Index, "_open_file", full_disk)
    idx = Index(tmp_path, records=ds.records)  # the file cannot even be created: in memory
    assert idx.in_memory and idx.run("F", "1").status == "running"
    monkeypatch.setattr(Index, "_open_file", real_open)
    ds.records.write_run_end("F", "1", {"status": "successful", "finished_at": 3.0, "failed": []})
    assert idx.run("F", "1").status == "running"  # still no file: the snapshot it has
    assert _status(ds) == "successful"  # space is back: another process builds the file
    assert idx.run("F", "1").status == "successful" and not idx.in_memory  # and this one moves to it
    idx.close()


def test_an_unusable_index_file_is_not_retried_on_every_call(tmp_path, monkeypatch) -> None:
    ds = Datastore(tmp_path)
    ds.records.write_run(_run())
    Index(tmp_path, records=ds.records).close()
    loads = []
    real_load = Index._load
    monkeypatch.setattr(Index, "_load", lambda self, db: (loads.append(1), real_load(self, db)))

    def full_disk(self: Index):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Index, "_open_file", full_disk)
    idx = Index(tmp_path, records=ds.records)
    assert idx.in_memory and len(loads) == 1
    for _ in range(3):
        assert idx.flows() == ["F"]
    assert len(loads) == 1  # the same file as before: one stat per call, no rebuild
    os.replace(idx.path, f"{idx.path}.moved")
    os.replace(f"{idx.path}.moved", idx.path)  # same inode: still the file it could not use
    assert idx.flows() == ["F"] and len(loads) == 1
    idx.close()


def test_a_run_process_goes_on_without_scanning_the_store_when_its_index_is_deleted(tmp_path, monkeypatch) -> None:
    ds = Datastore(tmp_path)
    ds.records.write_run(_run())
    writer = Index(tmp_path, records=ds.records)
    writer.add_run(_run())
    writer.upsert_attempts([_attempt("start", "1")])
    ds.records.write_attempt(_attempt("start", "1"))

    def scan(records):
        raise AssertionError("the run process scanned the whole store")

    monkeypatch.setattr(index_module, "_collect", scan)
    _delete_index(tmp_path)
    writer.upsert_attempts([_attempt("a", "2", "running")])  # no scan, no error
    assert not os.path.exists(writer.path)  # the rebuild is left to readers
    assert [t.status for t in writer.tasks("F", "1", "a")] == ["running"]  # its own rows go on
    monkeypatch.undo()

    assert _status(ds) == "running"  # a reader rebuilds the file from the records
    with Index(tmp_path) as reader:
        assert reader.tasks("F", "1", "a") == []  # a running attempt has no record yet
        ds.records.write_attempt(_attempt("a", "2"))
        writer.upsert_attempts([_attempt("a", "2"), _attempt("a", "3", "running")])  # moves to the new file
        assert [(t.task_id, t.status) for t in reader.tasks("F", "1", "a")] == [("3", "running"), ("2", "ok")]
        assert [t.status for t in reader.tasks("F", "1", "start")] == ["ok"]
    ds.records.write_run_end("F", "1", {"status": "successful", "finished_at": 3.0, "failed": []})
    writer.end_run("F", "1", "successful", 3.0)
    assert _status(ds) == "successful"
    writer.close()


def test_a_rebuild_racing_the_run_end_still_shows_the_end(tmp_path, monkeypatch) -> None:
    ds = Datastore(tmp_path)
    ds.records.write_run(_run())
    writer = Index(tmp_path, records=ds.records)
    writer.add_run(_run())
    _delete_index(tmp_path)
    writer.upsert_attempts([_attempt("start", "1", "running")])  # detached: no file
    # Another process's rebuild read the records before the end record was written...
    Index(tmp_path / "elsewhere", records=ds.records).close()
    ds.records.write_run_end("F", "1", {"status": "successful", "finished_at": 3.0, "failed": []})
    settling = threading.Event()
    real_lock = files.file_lock

    def file_lock(path: str):
        settling.set()
        return real_lock(path)

    monkeypatch.setattr(index_module, "file_lock", file_lock)
    with real_lock(str(tmp_path / ".index.lock")):  # ...and is still renaming its file into place
        ender = threading.Thread(target=writer.end_run, args=("F", "1", "successful", 3.0))
        ender.start()
        assert settling.wait(WAIT)  # the run's end waits for the rebuild in progress
        os.rename(tmp_path / "elsewhere" / "index.sqlite", tmp_path / "index.sqlite")
    ender.join(WAIT)
    assert not ender.is_alive()
    assert _status(ds) == "successful"  # not "running" forever
    with Index(tmp_path) as reader:
        assert [t.status for t in reader.tasks("F", "1", "start")] == ["running"]
    writer.close()


def test_a_rebuilt_index_keeps_tags_another_process_set(tmp_path) -> None:
    ds = Datastore(tmp_path)
    ds.records.write_run(_run())
    writer = Index(tmp_path, records=ds.records)
    writer.add_run(_run())
    _delete_index(tmp_path)
    writer.upsert_attempts([_attempt("start", "1", "running")])
    with Index(tmp_path, records=ds.records) as other:
        other.set_tags("F", "1", ["t", "added"])
        writer.upsert_attempts([_attempt("start", "1")])  # carries its rows into the new file
        assert other.run("F", "1").tags == ("t", "added")
        assert [r.run_id for r in other.runs("F", tags=["added"])] == ["1"]
    writer.close()


@pytest.mark.parametrize("text", ["database or disk is full", "disk I/O error"])
def test_sqlite_full_disk_errors_are_recognised_by_the_index(tmp_path, monkeypatch, text) -> None:
    err = sqlite3.OperationalError(text)
    monkeypatch.setattr(files, "free_bytes", lambda root: 0)
    assert files.index_full(err, str(tmp_path))
    monkeypatch.setattr(files, "free_bytes", lambda root: 1 << 40)
    assert files.index_full(err, str(tmp_path)) is (text == "database or disk is full")
    assert not files.index_full(sqlite3.OperationalError("database is locked"), str(tmp_path))
    assert files.index_full(OSError(28, "No space left on device"), str(tmp_path))


def test_a_run_process_on_a_full_disk_keeps_its_rows_in_memory_without_scanning(tmp_path, monkeypatch) -> None:
    ds = Datastore(tmp_path)
    ds.records.write_run(_run())
    writer = Index(tmp_path, records=ds.records)
    writer.add_run(_run())
    writer.upsert_attempts([_attempt("start", "1", "running")])
    real_transaction = Index._transaction
    failures = [sqlite3.OperationalError("database or disk is full")]

    def transaction(self: Index):
        if failures:
            raise failures.pop()
        return real_transaction(self)

    def scan(records):
        raise AssertionError("the run process scanned the whole store")

    monkeypatch.setattr(Index, "_transaction", transaction)
    monkeypatch.setattr(index_module, "_collect", scan)
    writer.upsert_attempts([_attempt("a", "2", "running")])
    assert writer.in_memory and not os.path.exists(writer.path)  # no stale file left behind
    assert [t.status for s in ("start", "a") for t in writer.tasks("F", "1", s)] == ["running", "running"]
    monkeypatch.undo()
    assert _status(ds) == "running"  # space is back: a reader builds the file from the records
    ds.records.write_run_end("F", "1", {"status": "failed", "finished_at": 3.0, "failed": []})
    writer.end_run("F", "1", "failed", 3.0)
    assert not writer.in_memory and _status(ds) == "failed"
    with Index(tmp_path) as reader:  # the rows only the run process knew reached the file
        assert [t.status for s in ("start", "a") for t in reader.tasks("F", "1", s)] == ["running", "running"]
    writer.close()
