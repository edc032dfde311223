"""The metadata index contract: runs, tags, task attempts, and rebuilding from the
store's records. Every implementation passes it: the SQLite index (``local``), the same
over a URL root (``remote``: a cache that syncs from the store) and the example plugin's
provider (``audit``, examples/plugin), opened through ``open_index``."""

from __future__ import annotations

import os

import pytest

from headwater import plugins
from headwater.meta import Index, MetadataIndex, RunRow, TaskRow, open_index
from headwater.meta.remote import RemoteIndex
from headwater.store import Datastore
from memstore import serve_mem_scheme


def _run(flow: str, run_id: str, created_at: float, tags=("t",), **kw) -> dict:
    rec = {"version": 1, "flow": flow, "run_id": run_id, "user": "alice", "tags": list(tags),
           "system_tags": ["user:alice", "runtime:dev"], "created_at": created_at,
           "start_step": "start", "end_step": "end", "parameters": [], "origin_run_id": None,
           "pid": 42, "host": "box", "script": "/f.py"}  # fmt: skip
    rec.update(kw)
    return rec


def _attempt(flow, run_id, step, task_id, attempt=0, status="ok", started_at=1.0, finished_at=2.0) -> dict:
    return {"version": 1, "flow": flow, "run_id": run_id, "step": step, "task_id": task_id,
            "attempt": attempt, "status": status, "started_at": started_at, "finished_at": finished_at,
            "input_paths": [], "artifacts": {}, "exception": None, "metadata": {}}  # fmt: skip


@pytest.fixture(params=["local", "audit", "remote"])
def open_idx(request, monkeypatch, tmp_path_factory):
    """Opens an index of one implementation: ``open_idx(root, records=None)``. ``remote`` is
    the local provider over a URL root (``mem://<root>``): its synced cache under a home."""
    if request.param == "remote":
        serve_mem_scheme(monkeypatch)
        home = tmp_path_factory.mktemp("home")

        def remote(root, records=None) -> MetadataIndex:
            index = open_index(f"mem:/{root}", records=records, home=str(home))
            assert isinstance(index, RemoteIndex)
            return index

        return remote
    if request.param != "local":
        monkeypatch.syspath_prepend(str(request.getfixturevalue("plugin_site")))
        plugins._reset()
        request.addfinalizer(plugins._reset)

    def make(root, records=None) -> MetadataIndex:
        index = open_index(root, records=records, provider=request.param)
        assert isinstance(index, MetadataIndex)
        return index

    return make


@pytest.fixture
def idx(tmp_path, open_idx):
    with open_idx(tmp_path) as index:
        yield index


def test_add_and_end_runs(idx: MetadataIndex) -> None:
    idx.add_run(_run("F", "1", 10.0, origin_run_id="0"))
    row = idx.run("F", "1")
    assert row == RunRow("F", "1", "alice", ("t",), ("user:alice", "runtime:dev"), 10.0, None,
                         "running", "start", "end", "0", 42, "box")  # fmt: skip
    idx.end_run("F", "1", "successful", 12.5)
    row = idx.run("F", "1")
    assert row is not None and row.status == "successful" and row.finished_at == 12.5
    assert idx.run("F", "2") is None and idx.run("G", "1") is None
    assert idx.flows() == ["F"]


def test_runs_newest_first_with_limit(idx: MetadataIndex) -> None:
    for i, t in enumerate([5.0, 1.0, 9.0, 3.0]):
        idx.add_run(_run("F", f"r{i}", t))
    idx.add_run(_run("G", "x", 100.0))
    assert [r.run_id for r in idx.runs("F")] == ["r2", "r0", "r3", "r1"]
    assert [r.run_id for r in idx.runs("F", limit=2)] == ["r2", "r0"]
    assert idx.runs("Nope") == []
    assert idx.flows() == ["F", "G"]


def test_tag_filter_is_and_over_user_and_system_tags(idx: MetadataIndex) -> None:
    idx.add_run(_run("F", "1", 1.0, tags=["a", "b"]))
    idx.add_run(_run("F", "2", 2.0, tags=["a"]))
    idx.add_run(_run("F", "3", 3.0, tags=[], system_tags=["user:bob"]))
    idx.add_run(_run("G", "4", 4.0, tags=["a", "b"]))

    def ids(*tags: str) -> list[str]:
        return [r.run_id for r in idx.runs("F", tags=tags)]

    assert ids("a") == ["2", "1"]
    assert ids("a", "b") == ["1"]
    assert ids("a", "a", "b") == ["1"]
    assert ids("a", "user:alice") == ["2", "1"]
    assert ids("user:bob") == ["3"]
    assert ids("a", "missing") == []
    assert [r.run_id for r in idx.runs("F", tags=["a"], limit=1)] == ["2"]


def test_set_tags(idx: MetadataIndex) -> None:
    idx.add_run(_run("F", "1", 1.0, tags=["old"]))
    idx.set_tags("F", "1", ["new", "other", "new"])
    row = idx.run("F", "1")
    assert row is not None and row.tags == ("new", "other")
    assert row.system_tags == ("user:alice", "runtime:dev")
    assert idx.runs("F", tags=["old"]) == []
    assert [r.run_id for r in idx.runs("F", tags=["new", "runtime:dev"])] == ["1"]


def test_tasks_latest_attempt(idx: MetadataIndex) -> None:
    idx.add_run(_run("F", "1", 1.0))
    idx.upsert_attempts(
        [
            _attempt("F", "1", "_parameters", "0", started_at=0.5),
            _attempt("F", "1", "start", "1", started_at=1.0),
            _attempt("F", "1", "a", "2", 0, "failed", started_at=2.0),
            _attempt("F", "1", "a", "2", 1, "running", started_at=5.0, finished_at=None),
            _attempt("F", "1", "a", "3", started_at=3.0),
            _attempt("F", "1", "a", "10", started_at=3.0),
            _attempt("F", "1", "end", "9", started_at=6.0),
        ]
    )
    assert idx.steps("F", "1") == ["start", "a", "end"]
    tasks = idx.tasks("F", "1", "a")
    # Newest task first by id (Metaflow's creation order): a retry does not move task 2 ahead.
    assert [(t.task_id, t.attempt, t.status) for t in tasks] == [("10", 0, "ok"), ("3", 0, "ok"), ("2", 1, "running")]
    assert idx.task("F", "1", "a", "2") == TaskRow("F", "1", "a", "2", 1, "running", 5.0, None)
    assert [t.attempt for t in idx.attempt_rows("F", "1", "a", "2")] == [0, 1]
    # The scheduler updates a running attempt in place when it ends.
    idx.upsert_attempts([_attempt("F", "1", "a", "2", 1, "ok", started_at=5.0, finished_at=7.0)])
    assert idx.task("F", "1", "a", "2") == TaskRow("F", "1", "a", "2", 1, "ok", 5.0, 7.0)
    assert idx.task("F", "1", "a", "404") is None and idx.tasks("F", "1", "zz") == []
    idx.upsert_attempts([])


def _populate(ds: Datastore, open_idx=Index) -> MetadataIndex:
    """Write records to the store and mirror them into an index, as a run does."""
    idx = open_idx(ds.root)
    for run_id, t, ended in [("1", 1.0, "successful"), ("2", 2.0, "failed"), ("3", 3.0, None)]:
        rec = _run("F", run_id, t, tags=[f"n{run_id}"])
        ds.records.write_run(rec)
        idx.add_run(rec)
        rows = [_attempt("F", run_id, "_parameters", "0", started_at=t),
                _attempt("F", run_id, "start", "1", started_at=t + 0.1),
                _attempt("F", run_id, "a", "2", 0, "failed", started_at=t + 0.2),
                _attempt("F", run_id, "a", "2", 1, "ok", started_at=t + 0.3)]  # fmt: skip
        for r in rows:
            ds.records.write_attempt(r)
        idx.upsert_attempts(rows)
        if ended:
            ds.records.write_run_end("F", run_id, {"status": ended, "finished_at": t + 1, "failed": []})
            idx.end_run("F", run_id, ended, t + 1)
    ds.records.write_run(_run("G", "7", 7.0, tags=[]))
    idx.add_run(_run("G", "7", 7.0, tags=[]))
    return idx


def _snapshot(idx: MetadataIndex) -> dict:
    out: dict = {}
    for flow in idx.flows():
        for run in idx.runs(flow):
            steps = idx.steps(flow, run.run_id)
            out[(flow, run.run_id)] = (
                run, steps,
                {s: idx.tasks(flow, run.run_id, s) for s in [*steps, "_parameters"]},
                {s: [idx.attempt_rows(flow, run.run_id, s, t.task_id) for t in idx.tasks(flow, run.run_id, s)]
                 for s in steps},
            )  # fmt: skip
    return out


def test_reindex_reproduces_rows(tmp_path, open_idx) -> None:
    ds = Datastore(tmp_path)
    live = _populate(ds, open_idx)
    before = _snapshot(live)
    assert before[("F", "3")][0].status == "running"
    stats = live.reindex(ds.records)
    assert stats == {"runs": 4, "attempts": 12, "skipped": 0, "damaged": 0}
    assert _snapshot(live) == before
    live.close()


def test_reindex_skips_runs_without_a_record(tmp_path, open_idx) -> None:
    ds = Datastore(tmp_path)
    ds.records.write_attempt(_attempt("F", "orphan", "start", "1"))
    with open_idx(tmp_path) as idx:
        assert idx.reindex(ds.records) == {"runs": 0, "attempts": 0, "skipped": 1, "damaged": 0}
        assert idx.runs("F") == []


def test_auto_reindex_when_index_file_is_missing(tmp_path) -> None:
    ds = Datastore(tmp_path)
    live = _populate(ds)
    before = _snapshot(live)
    live.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(tmp_path / f"index.sqlite{suffix}"):
            os.unlink(tmp_path / f"index.sqlite{suffix}")
    with Index(tmp_path) as empty:  # no records given: nothing to rebuild from
        assert empty.flows() == []
    os.unlink(tmp_path / "index.sqlite")
    with Index(tmp_path, records=ds.records) as rebuilt:
        assert _snapshot(rebuilt) == before
    with Index(tmp_path, records=ds.records) as reopened:  # existing file: no rebuild, same rows
        assert _snapshot(reopened) == before


def test_concurrent_connections_see_each_others_writes(tmp_path, open_idx) -> None:
    with open_idx(tmp_path) as writer, open_idx(tmp_path) as reader:
        writer.add_run(_run("F", "1", 1.0))
        assert [r.run_id for r in reader.runs("F")] == ["1"]


def test_local_index_is_one_sqlite_file_in_the_root(tmp_path) -> None:
    with open_index(tmp_path) as idx:
        assert isinstance(idx, Index)
        idx.add_run(_run("F", "1", 1.0))
    with open(tmp_path / "index.sqlite", "rb") as f:
        assert f.read(16) == b"SQLite format 3\x00"
