"""The index of a remote (URL) datastore: a local cache under HEADWATER_HOME that syncs
incrementally from the store's records and catalog segments.

Runs are written straight through RecordStore into an in-memory ``mem://`` store (as a
run process on another machine would) and read through the real client API from a
process whose cache starts empty. A counting wrapper around the store counts requests
the way S3 bills them (a listing page holds 1,000 keys).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, BinaryIO

import pytest

from headwater import plugins as hw_plugins
from headwater.client import Flow, Headwater, Run, namespace
from headwater.meta import Index, open_index
from headwater.meta.remote import SEGMENT_RUNS, RemoteIndex, cache_dir
from headwater.plugins import PluginKind
from headwater.store import Datastore
from headwater.store.catalog import CATALOG_DIR, parse_segment_name, run_id_at, tag_mark_key
from headwater.store.objects import Data, ObjectStore
from headwater.store.records import RecordStore
from memstore import MemoryObjectStore, serve_mem_scheme

PAGE = 1000  # keys per listing request, as on S3
OLD = 1_600_000_000.0  # a time long settled: runs then may be compacted


class Crash(BaseException):
    """A process dying mid-way (not an error anything may catch and carry on from)."""


class CountingStore(ObjectStore):
    """Forwards to ``inner`` and counts requests: one per get/put/exists/delete/list_dir,
    and one per listing page of ``iter_keys`` begun."""

    def __init__(self, inner: ObjectStore):
        self.inner, self.url = inner, inner.url
        self.requests = 0
        self.pages = 0  # listing pages alone
        self.keys_read: list[str] = []
        self.on_put: Any = None  # called with the key before each put
        self.puts: list[tuple[str, bool]] = []  # (key, written) of every put

    def put(self, key: str, data: Data | Sequence[Data]) -> bool:
        self.requests += 1
        if self.on_put is not None:
            self.on_put(key)
        written = self.inner.put(key, data)
        self.puts.append((key, written))
        return written

    def open_writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        self.requests += 1
        return self.inner.open_writer(key)

    def get(self, key: str) -> bytes:
        self.requests += 1
        self.keys_read.append(key)
        return self.inner.get(key)

    def exists(self, key: str) -> bool:
        self.requests += 1
        return self.inner.exists(key)

    def local_path(self, key: str) -> str:
        self.requests += 1
        return self.inner.local_path(key)

    def list_dir(self, prefix: str) -> list[str]:
        self.requests += 1
        return self.inner.list_dir(prefix)

    def delete(self, key: str) -> None:
        self.requests += 1
        self.inner.delete(key)

    def iter_keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        self.requests, self.pages = self.requests + 1, self.pages + 1  # the first page, even if empty
        for n, key in enumerate(self.inner.iter_keys(prefix, start_after=start_after)):
            if n and n % PAGE == 0:  # the next page is asked for only when a key of it is wanted
                self.requests, self.pages = self.requests + 1, self.pages + 1
            yield key

    def take(self) -> int:
        """Requests counted since the last ``take``."""
        n, self.requests = self.requests, 0
        self.keys_read.clear()
        return n


@pytest.fixture
def store(monkeypatch, tmp_path) -> CountingStore:
    """A ``mem://`` datastore served (to the client too) through a counting wrapper; the
    client's root and an empty HEADWATER_HOME are set in the environment."""
    serve_mem_scheme(monkeypatch)
    url = f"mem://bucket{tmp_path}"
    counting = CountingStore(MemoryObjectStore(url))
    monkeypatch.setitem(hw_plugins._loaded, (PluginKind.OBJECT_STORE, "mem"),
                        lambda u: counting if u == url else MemoryObjectStore(u))
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", url)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_USER", "alice")
    namespace(None)
    yield counting
    namespace(None)


def new_home(monkeypatch, tmp_path, name: str) -> str:
    """Point the client at another, empty cache (another machine)."""
    home = str(tmp_path / name)
    monkeypatch.setenv("HEADWATER_HOME", home)
    return home


def write_run(records: RecordStore, flow: str, run_id: str, *, ended: str | None = "successful",
              tags: Sequence[str] = (), tasks: int = 0, content: Any = None) -> None:
    """A run as a run process writes it: run record, attempts (with logs), end record."""
    created = int(run_id) / 1e6 if run_id.isdigit() else time.time()
    records.write_run({"version": 1, "flow": flow, "run_id": run_id, "user": "alice", "tags": list(tags),
                       "system_tags": ["user:alice", "runtime:dev"], "created_at": created,
                       "start_step": "start", "end_step": "end", "parameters": [], "origin_run_id": None,
                       "pid": 1, "host": "elsewhere"})  # fmt: skip
    steps = [("start", "1")] + [("work", str(2 + i)) for i in range(tasks)]
    if ended:
        steps.append(("end", str(2 + tasks)))
    for i, (step, task_id) in enumerate(steps):
        artifacts = {"x": content.save(f"{run_id}:{step}")} if content is not None else {}
        records.write_attempt({"version": 1, "flow": flow, "run_id": run_id, "step": step, "task_id": task_id,
                               "attempt": 0, "status": "ok", "started_at": created + i, "finished_at": created + i,
                               "input_paths": [], "split_index": None, "foreach_stack": [],
                               "transition": {"next": [], "foreach": None, "num_splits": None,
                                              "switch_case": None},
                               "artifacts": artifacts, "exception": None, "metadata": {}})  # fmt: skip
        records.objects.put(records.log_key(flow, run_id, step, task_id, 0, "stdout"), f"hi from {step}\n".encode())
    if ended:
        records.write_run_end(flow, run_id, {"status": ended, "finished_at": created + 10, "failed": []})


def old_ids(n: int, start: float = OLD) -> list[str]:
    return [run_id_at(start + i) for i in range(n)]


def fresh_ids(n: int) -> list[str]:
    base = int(run_id_at(time.time()))
    return [f"{base + i:016d}" for i in range(n)]


def listed(flow: str = "F") -> list[str]:
    return [r.id for r in Flow(flow).runs()]


def segments(store: CountingStore, flow: str = "F") -> list[tuple[str, str]]:
    return sorted(s for s in (parse_segment_name(k.rsplit("/", 1)[1]) for k in store.inner.objects
                              if k.startswith(f"{CATALOG_DIR}/{flow}/")) if s)


# -- where the cache lives ------------------------------------------------------------


def test_url_root_gets_a_cache_under_home_and_local_root_keeps_its_file(tmp_path, monkeypatch) -> None:
    stores = serve_mem_scheme(monkeypatch)
    home = str(tmp_path / "home")
    with open_index("mem://b/one", home=home) as one, open_index("mem://b/two", home=home) as two:
        assert isinstance(one, RemoteIndex) and isinstance(two, RemoteIndex)
        assert one.path == f"{cache_dir(home, 'mem://b/one')}/index.sqlite" != two.path
        assert one.path.startswith(f"{home}/index/")
        assert cache_dir(home, "mem://b/one/") == cache_dir(home, "mem://b/one")
    with open(cache_dir(home, "mem://b/one") + "/root.txt") as f:
        assert f.read() == "mem://b/one\n"
    assert not any("index.sqlite" in k for s in stores.values() for k in s.objects)  # nothing in the store
    with open_index(tmp_path / "local") as local:
        assert type(local) is Index and local.path == str(tmp_path / "local" / "index.sqlite")


# -- a second machine reads everything through the client -------------------------------


def test_cold_client_lists_and_reads_runs_steps_tasks_artifacts_logs(store, monkeypatch, tmp_path) -> None:
    ds = Datastore(store.url)
    ids = old_ids(3)
    for i, run_id in enumerate(ids):
        write_run(ds.records, "F", run_id, tags=[f"n{i}"], tasks=2, content=ds.content)
    write_run(ds.records, "F", fresh_ids(1)[0], ended=None, tags=["live"])
    write_run(ds.records, "G", ids[0])
    runs = list(Flow("F").runs())
    assert [r.id for r in runs][1:] == list(reversed(ids))
    assert runs[0].status == "running" and runs[0].tags >= {"live"}
    run = Run(f"F/{ids[1]}")
    assert run.successful and "n1" in run.tags
    assert [s.id for s in run] == ["end", "work", "start"]
    assert sorted(t.id for t in run["work"]) == ["2", "3"]
    task = run["work"]["3"]
    assert task.data.x == f"{ids[1]}:work" and task.stdout == "hi from work\n"
    assert sorted(f.id for f in Headwater()) == ["F", "G"]


def test_finished_run_records_are_read_once_unfinished_ones_rechecked(store, monkeypatch, tmp_path) -> None:
    ds = Datastore(store.url)
    done, live = old_ids(1)[0], fresh_ids(1)[0]
    write_run(ds.records, "F", done)
    write_run(ds.records, "F", live, ended=None)
    assert listed() == [live, done]
    assert Run(f"F/{live}").status == "running"
    store.take()
    assert listed() == [live, done]
    assert not any(done in k for k in store.keys_read)  # a finished run is never read again
    assert f"runs/F/{live}/_run_end.json" in store.keys_read  # an unfinished one is re-checked
    ds.records.write_run_end("F", live, {"status": "failed", "finished_at": time.time(), "failed": []})
    assert Run(f"F/{live}").status == "failed"


# -- the requirement: 1,000 runs from a cold cache, few requests -------------------------------


def test_thousand_runs_from_cold_cache_take_few_requests(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(1000)
    for run_id in ids:
        write_run(records, "F", run_id)
    # The first reader ever pays a read per run, and compacts what it read for everyone after.
    assert listed() == list(reversed(ids))
    assert segments(store) == [(ids[i], ids[i + SEGMENT_RUNS - 1]) for i in range(0, 1000, SEGMENT_RUNS)]
    new_home(monkeypatch, tmp_path, "cold")
    store.take()
    runs = list(Flow("F").runs())
    assert store.take() < 50  # a catalog listing, 10 segments, a listing past them: 12 here
    assert [r.id for r in runs] == list(reversed(ids)) and {r.status for r in runs} == {"successful"}
    assert store.take() == 0
    # Warm: nothing new is one listing per sync (Flow() and runs() sync once each, and the
    # client checks that the root exists); three new runs are a handful more.
    listed()
    assert store.take() <= 3
    new = fresh_ids(3)
    for run_id in new:
        write_run(records, "F", run_id)
    assert listed()[:3] == list(reversed(new))
    assert store.take() <= 9  # + a run record and an end record each


def test_large_runs_are_skipped_in_the_listing(store, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(3)
    for run_id in ids:
        write_run(records, "F", run_id, tasks=1500)  # 3,000 keys a run: 9 pages to list them all
    with open_index(store.url, home=str(tmp_path / "h")) as idx:
        assert [r.run_id for r in idx.runs("F")] == list(reversed(ids))
    # The (empty) catalog, then a listing restarted past each run, and the last, empty one.
    assert store.pages == 5


# -- tags -------------------------------------------------------------------------------


def test_tag_changes_reach_warm_and_cold_caches(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(2 * SEGMENT_RUNS)
    for run_id in ids:
        write_run(records, "F", run_id, tags=["orig"])
    assert len(listed()) == 2 * SEGMENT_RUNS  # this reader compacts two segments
    new_home(monkeypatch, tmp_path, "b")
    listed()  # machine B, warm from now on
    Run(f"F/{ids[5]}").add_tag("blue")  # written by B: a tag event and its mark
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))  # machine A, warm
    store.take()
    assert [r.id for r in Flow("F").runs("blue")] == [ids[5]]
    assert store.take() <= 6  # a listing, then the run record and its events
    assert set(Run(f"F/{ids[5]}").tags) >= {"orig", "blue"}
    new_home(monkeypatch, tmp_path, "c")  # cold: the mark is after the catalog, in the listing
    assert [r.id for r in Flow("F").runs("blue")] == [ids[5]]


def test_tag_mark_older_than_the_catalog_is_folded_into_a_segment(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    first = old_ids(SEGMENT_RUNS)
    event_at = OLD + 10_000
    later = old_ids(SEGMENT_RUNS, start=event_at + 1)
    for run_id in first + later:
        write_run(records, "F", run_id)
    # Between the two, run first[3] got a tag (its mark and event, as write_tag_event writes them).
    name = f"{int(event_at * 1e9):020d}-abc.json"
    store.inner.put(tag_mark_key("F", first[3], name, at=event_at), b"")
    store.inner.put(f"runs/F/{first[3]}/_tags/{name}", json.dumps({"add": ["gold"], "remove": []}).encode())
    assert [r.id for r in Flow("F").runs("gold")] == [first[3]]
    assert segments(store) == [(first[0], first[-1]), (later[0], later[-1])]
    new_home(monkeypatch, tmp_path, "cold")
    store.take()
    assert [r.id for r in Flow("F").runs("gold")] == [first[3]]
    assert not any("_tags" in k for k in store.keys_read)  # the tag came with the second segment


# -- compaction is safe --------------------------------------------------------------------


def cold_ids(monkeypatch, tmp_path, name: str) -> list[str]:
    new_home(monkeypatch, tmp_path, name)
    return listed()


def test_two_compacting_readers_lose_and_duplicate_nothing(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(3 * SEGMENT_RUNS + 7)
    for run_id in ids:
        write_run(records, "F", run_id)
    homes = [str(tmp_path / "a"), str(tmp_path / "b")]
    both_compacting = threading.Barrier(2, timeout=30)
    first_put = threading.local()

    def meet(key: str) -> None:  # both readers reach their first segment write, then both write
        if key.startswith(CATALOG_DIR) and not getattr(first_put, "done", False):
            first_put.done = True
            both_compacting.wait()

    store.on_put = meet
    errors: list[BaseException] = []

    def reader(home: str) -> None:
        try:
            with open_index(store.url, home=home, records=RecordStore(store)) as idx:
                assert [r.run_id for r in idx.runs("F")] == list(reversed(ids))
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(h,)) for h in homes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    # Both wrote the first segment at once: one write made it, the other found it there.
    firsts = [ok for key, ok in store.puts if key == f"{CATALOG_DIR}/F/{ids[0]}-{ids[SEGMENT_RUNS - 1]}.json"]
    assert sorted(firsts) == [False, True]
    spans = segments(store)
    assert spans == [(ids[i], ids[i + SEGMENT_RUNS - 1]) for i in range(0, 3 * SEGMENT_RUNS, SEGMENT_RUNS)]
    got = cold_ids(monkeypatch, tmp_path, "cold")
    assert got == list(reversed(ids)) and len(set(got)) == len(ids)


def test_runs_created_during_compaction_are_not_lost(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(SEGMENT_RUNS + 5)
    for run_id in ids:
        write_run(records, "F", run_id)
    during = fresh_ids(2)

    def create_runs(key: str) -> None:
        if key.startswith(CATALOG_DIR) and not records.objects.exists(f"runs/F/{during[0]}/_run.json"):
            for run_id in during:
                write_run(records, "F", run_id)

    store.on_put = create_runs
    with open_index(store.url, home=str(tmp_path / "home"), records=RecordStore(store)) as idx:
        assert [r.run_id for r in idx.runs("F")] == list(reversed(ids))  # listed before they existed
        store.on_put = None
        assert [r.run_id for r in idx.runs("F")][:2] == list(reversed(during))
    assert len(segments(store)) == 1
    got = cold_ids(monkeypatch, tmp_path, "cold")
    assert got == list(reversed(ids + during))


def test_crash_mid_compaction_loses_nothing(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(3 * SEGMENT_RUNS)
    for run_id in ids:
        write_run(records, "F", run_id)
    puts: list[str] = []

    def crash_on_second_segment(key: str) -> None:
        if key.startswith(CATALOG_DIR):
            puts.append(key)
            if len(puts) == 2:
                raise Crash
    store.on_put = crash_on_second_segment
    with pytest.raises(Crash):
        with open_index(store.url, home=str(tmp_path / "crashed"), records=RecordStore(store)) as idx:
            idx.runs("F")
    store.on_put = None
    assert len(segments(store)) == 1  # the first segment is whole; the second never appeared
    assert cold_ids(monkeypatch, tmp_path, "next") == list(reversed(ids))  # reads one, compacts the rest
    assert len(segments(store)) == 3
    assert cold_ids(monkeypatch, tmp_path, "cold") == list(reversed(ids))


def test_fresh_runs_are_not_compacted(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = fresh_ids(SEGMENT_RUNS + 1)
    for run_id in ids:
        write_run(records, "F", run_id)
    assert listed() == list(reversed(ids))
    assert segments(store) == []  # a run record of their time might still be on its way


def test_read_only_reader_still_lists(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(SEGMENT_RUNS)
    for run_id in ids:
        write_run(records, "F", run_id)

    tried: list[str] = []

    def denied(key: str) -> None:
        tried.append(key)
        raise PermissionError(f"access denied: {key}")

    store.on_put = denied
    assert listed() == list(reversed(ids))
    assert listed() == list(reversed(ids))
    assert segments(store) == [] and len(tried) == 1  # tried once, not at every sync


# -- the run process on a remote root ---------------------------------------------------------


def test_run_process_writes_the_local_cache(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store)
    run_id = fresh_ids(1)[0]
    rec = {"version": 1, "flow": "F", "run_id": run_id, "user": "alice", "tags": [], "system_tags": [],
           "created_at": time.time(), "start_step": "start", "end_step": "end"}
    home = str(tmp_path / "home")
    with open_index(store.url, home=home, records=records) as writer:
        records.write_run(rec)
        writer.add_run(rec)
        store.take()
        with open_index(store.url, home=home, records=records) as reader:
            assert [r.run_id for r in reader.runs("F")] == [run_id]
        assert f"runs/F/{run_id}/_run.json" not in store.keys_read  # the cache knew it
        records.write_run_end("F", run_id, {"status": "successful", "finished_at": time.time()})
        writer.end_run("F", run_id, "successful", time.time())
    with open_index(store.url, home=home, records=records) as reader:
        assert reader.run("F", run_id).status == "successful"


def test_reindex_rebuilds_from_the_store(store, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(3)
    for run_id in ids:
        write_run(records, "F", run_id, tasks=2)
    store.inner.put("runs/F/orphan/start/1/0.json", b"{}")
    with open_index(store.url, home=str(tmp_path / "h"), records=records) as idx:
        assert idx.reindex(records) == {"runs": 3, "attempts": 12, "skipped": 1, "damaged": 0}
        assert [t.task_id for t in idx.tasks("F", ids[0], "work")] == ["3", "2"]


def test_reindex_progress_counts_every_run_of_every_flow_against_one_total(store, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(4)
    for run_id in ids[:3]:
        write_run(records, "F", run_id)
    write_run(records, "G", ids[3])  # flows of different sizes: no per-flow estimate fits both
    seen: list[tuple[int, int]] = []
    with open_index(store.url, home=str(tmp_path / "h"), records=records) as idx:
        idx.reindex(records, on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_run_unfinished_when_compacted_is_rechecked_by_cold_readers(store, monkeypatch, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(SEGMENT_RUNS)
    for run_id in ids:
        write_run(records, "F", run_id, ended=None if run_id == ids[7] else "successful")
    assert len(listed()) == SEGMENT_RUNS and Run(f"F/{ids[7]}").status == "running"
    assert len(segments(store)) == 1  # holds ids[7] as running
    records.write_run_end("F", ids[7], {"status": "successful", "finished_at": OLD + 99})
    new_home(monkeypatch, tmp_path, "cold")
    assert {r.id: r.status for r in Flow("F").runs()}[ids[7]] == "successful"


def test_a_tag_mark_whose_event_is_not_there_yet_is_read_again(store, tmp_path) -> None:
    records = RecordStore(store.inner)
    run_id = old_ids(1)[0]
    write_run(records, "F", run_id, tags=["a"])
    name = f"{time.time_ns():020d}-abc.json"
    store.inner.put(tag_mark_key("F", run_id, name), b"")  # the writer is between mark and event
    with open_index(store.url, home=str(tmp_path / "h"), records=RecordStore(store)) as idx:
        assert idx.runs("F")[0].tags == ("a",)
        store.inner.put(f"runs/F/{run_id}/_tags/{name}", json.dumps({"add": ["b"], "remove": ["a"]}).encode())
        assert idx.runs("F")[0].tags == ("b",)
        store.take()
        assert idx.runs("F")[0].tags == ("b",)
        assert store.take() == 1  # read, the mark is done with: one listing


def test_attempts_of_a_finished_run_are_read_once(store, tmp_path) -> None:
    records = RecordStore(store.inner)
    run_id = old_ids(1)[0]
    write_run(records, "F", run_id, tasks=3)
    with open_index(store.url, home=str(tmp_path / "h"), records=RecordStore(store)) as idx:
        idx.runs("F")
        store.take()
        assert [t.task_id for t in idx.tasks("F", run_id, "work")] == ["4", "3", "2"]
        assert idx.steps("F", run_id) == ["start", "work", "end"]
        assert store.take() == 1 + 5  # one listing of the run, a read per attempt record
        assert [t.status for t in idx.tasks("F", run_id, "work")] == ["ok"] * 3
        assert store.take() == 0


def test_a_deleted_cache_fills_again(store, tmp_path) -> None:
    records = RecordStore(store.inner)
    ids = old_ids(3)
    for run_id in ids:
        write_run(records, "F", run_id)
    with open_index(store.url, home=str(tmp_path / "h")) as idx:
        assert len(idx.runs("F")) == 3
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(idx.path + suffix):
                os.unlink(idx.path + suffix)
        assert [r.run_id for r in idx.runs("F")] == list(reversed(ids))


def test_reindex_finds_a_run_that_a_catalog_segment_missed(store, tmp_path) -> None:
    """The records are the truth: a segment written without one of its range's runs (a
    compactor that could not read it) hides it from cold readers, never from reindex."""
    from headwater.store.catalog import Catalog

    records = RecordStore(store.inner)
    ids = old_ids(3)
    for run_id in ids:
        write_run(records, "F", run_id, tasks=1)
    rows = [{"run_id": r, "status": "successful", "finished_at": OLD, "created_at": OLD, "user": "alice",
             "tags": [], "system_tags": [], "parameters": []} for r in (ids[0], ids[2])]  # ids[1] missed
    assert Catalog(store.inner).write_segment("F", rows, {})
    with open_index(store.url, home=str(tmp_path / "h"), records=records) as idx:
        assert idx.reindex(records)["runs"] == 3
        assert sorted(r.run_id for r in idx.runs("F")) == sorted(ids)
