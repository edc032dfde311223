"""gc never takes a blob from a run in progress: each interleaving of a writer (a dedup hit,
a clone) with a collector, forced step by step with the protocol's checkpoints
(``store.pins.CHECKPOINTS``), on the local and the S3 datastore. No sleeps decide an order:
each side waits on an event the test sets."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from headwater.exceptions import DataMissingError
from headwater.meta.liveness import this_host
from headwater.store import ContentStore, ObjectStore, RecordStore
from headwater.store import pins
from headwater.store.content import blob_key
from headwater.store.gc import Retention, plan
from headwater.store.gc import _sweep as sweep
from gcstores import pin_test_store

VALUE = np.arange(50_000, dtype=np.float64)  # out of band: always a blob
WAIT = 30.0  # seconds before a test that would hang fails instead


@pytest.fixture(params=["local", "s3"])
def objects(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ObjectStore:
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    kind = "local" if request.param == "local" else f"s3:{request.getfixturevalue('s3_bucket')}"
    return pin_test_store(kind, tmp_path)


@pytest.fixture(autouse=True)
def no_hooks() -> Iterator[None]:
    yield
    pins.CHECKPOINTS.clear()


def _run(objects: ObjectStore, run_id: str, *, ended: bool, refs: dict[str, Any] | None = None) -> None:
    """A run of flow F with one task whose record names ``refs`` (in progress unless ``ended``:
    its process is this one)."""
    records = RecordStore(objects)
    records.write_run({"flow": "F", "run_id": run_id, "created_at": time.time(), "pid": os.getpid(),
                       "host": this_host(), "tags": [], "system_tags": []})
    if refs is not None:
        records.write_attempt({"flow": "F", "run_id": run_id, "step": "start", "task_id": "1", "attempt": 0,
                               "status": "ok", "artifacts": refs})
    if ended:
        records.write_run_end("F", run_id, {"status": "successful", "finished_at": time.time()})


def _old_run(objects: ObjectStore) -> str:
    """Run F/1, ended, whose only task stored VALUE: gc --keep-newer-than 0s removes it."""
    ref = ContentStore(objects).for_run("F", "1").save(VALUE)
    _run(objects, "1", ended=True, refs={"x": ref})
    return ref["key"]


def _gc(objects: ObjectStore, **kwargs: Any) -> Any:
    return sweep(objects, plan(objects, Retention(keep_newer_than=0.0)), **kwargs)


class Pause:
    """Stop the thread named ``thread`` at checkpoint ``name`` until ``go`` is set."""

    def __init__(self, name: str, thread: str, also: Callable[[], None] | None = None) -> None:
        self.reached, self.go = threading.Event(), threading.Event()
        self.thread, self.also = thread, also
        previous = pins.CHECKPOINTS.get(name)

        def hook() -> None:
            if previous is not None:
                previous()
            if threading.current_thread().name == self.thread:
                if self.also is not None:
                    self.also()
                self.reached.set()
                assert self.go.wait(WAIT)

        pins.CHECKPOINTS[name] = hook

    def wait(self) -> None:
        assert self.reached.wait(WAIT), "the thread never reached its checkpoint"


class Worker(threading.Thread):
    def __init__(self, name: str, fn: Callable[[], Any]) -> None:
        super().__init__(name=name, daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def finish(self) -> Any:
        self.join(WAIT)
        assert not self.is_alive(), f"{self.name} did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def test_a_dedup_hit_pinned_before_the_sweep_keeps_its_blob(objects: ObjectStore) -> None:
    """writer pins -> gc plans, leases, lists pins, sweeps -> writer's exists() says yes, it commits."""
    key = _old_run(objects)
    _run(objects, "2", ended=False)
    pause = Pause("writer-checked", "writer")
    writer = Worker("writer", lambda: ContentStore(objects).for_run("F", "2").save(VALUE))
    writer.start()
    pause.wait()  # pinned, and no sweep under way: the next step is its exists() check
    result = _gc(objects)
    assert result.runs_removed == 1 and result.blobs_spared == 1 and result.blobs_deleted == 0
    pause.go.set()
    ref = writer.finish()
    assert ref["key"] == key and objects.exists(blob_key(key))
    RecordStore(objects).write_attempt({"flow": "F", "run_id": "2", "step": "start", "task_id": "1",
                                        "attempt": 0, "status": "ok", "artifacts": {"x": ref}})
    np.testing.assert_array_equal(ContentStore(objects).load(ref), VALUE)
    # Once its run has ended, a later gc keeps the blob because the run's record names it.
    RecordStore(objects).write_run_end("F", "2", {"status": "successful", "finished_at": time.time()})
    again = sweep(objects, plan(objects, Retention(keep_last=1)))
    assert again.blobs_deleted == 0 and objects.exists(blob_key(key))
    assert list(objects.iter_keys("pins/runs/F/2"))  # its pins stay PIN_GRACE after the run ended
    later = time.time() + pins.PIN_GRACE + 1
    again = sweep(objects, plan(objects, Retention(keep_last=1), now=later), clock=lambda: later, lease_seconds=1e12)
    assert again.blobs_deleted == 0 and objects.exists(blob_key(key))
    assert not list(objects.iter_keys("pins/runs/F/2"))  # its pins went: the record protects the blob now


def test_a_writer_that_pins_during_a_sweep_waits_and_stores_the_blob_again(objects: ObjectStore) -> None:
    """gc leases and lists pins -> writer pins, finds the lease, waits -> gc deletes the blob and
    ends -> writer's exists() says no: it writes the blob again."""
    key = _old_run(objects)
    _run(objects, "2", ended=False)
    listed = Pause("gc-pins-listed", "gc")
    collector = Worker("gc", lambda: _gc(objects))
    collector.start()
    listed.wait()
    seen: dict[str, Any] = {}
    pinned = Pause("writer-pinned", "writer")
    pinned.go.set()  # only record that it got there

    def checked() -> None:
        seen["sweeps"] = pins.live_sweeps(objects)
        seen["blob"] = objects.exists(blob_key(key))

    pins.CHECKPOINTS["writer-checked"] = lambda: checked() if threading.current_thread().name == "writer" else None
    writer = Worker("writer", lambda: ContentStore(objects).for_run("F", "2").save(VALUE))
    writer.start()
    pinned.wait()
    assert pins.live_sweeps(objects) and "sweeps" not in seen  # it waits for the lease
    listed.go.set()
    result = collector.finish()
    ref = writer.finish()
    assert result.blobs_deleted == 1  # its pin came after the listing: the old blob went
    assert seen == {"sweeps": [], "blob": False}  # checked only after the sweep: found it gone
    assert ref["key"] == key and objects.exists(blob_key(key))
    np.testing.assert_array_equal(ContentStore(objects).load(ref), VALUE)


def test_a_lease_left_by_a_killed_collector_is_ignored(objects: ObjectStore) -> None:
    stale = f"{pins.SWEEPS_DIR}/{int((time.time() - 1) * 1e9):020d}-dead"
    objects.put(stale, b"")
    writer = Worker("writer", lambda: ContentStore(objects).save(VALUE))
    writer.start()
    ref = writer.finish()
    assert objects.exists(blob_key(ref["key"]))
    assert list(objects.iter_keys("pins/anon"))  # outside a run: an anonymous pin


def test_a_collector_whose_lease_ran_out_deletes_nothing(objects: ObjectStore) -> None:
    key = _old_run(objects)
    now = [time.time()]
    # Stalled between listing pins and deleting: by then writers no longer wait for it.
    pins.CHECKPOINTS["gc-deleting"] = lambda: now.__setitem__(0, now[0] + pins.LEASE_SECONDS)
    with pytest.raises(pins.SweepLost, match="ran out before the sweep ended"):
        _gc(objects, clock=lambda: now[0])
    assert objects.exists(blob_key(key)) and not pins.live_sweeps(objects)


def _clone(objects: ObjectStore, origin: dict[str, Any]) -> dict[str, Any]:
    """What resume does for one task: ``runtime.resume.write_clone`` into run F/2."""
    from headwater.runtime.resume import write_clone
    from headwater.store import Datastore

    ds = Datastore.__new__(Datastore)
    ds.objects, ds.content, ds.records = objects, ContentStore(objects), RecordStore(objects)
    spec = SimpleNamespace(flow_name="F", run_id="2", task_id="1", input_paths=(), foreach_stack=())
    return write_clone(ds, spec, origin, "1")  # type: ignore[arg-type]


def test_a_clone_written_before_gc_keeps_the_origin_blobs(objects: ObjectStore) -> None:
    key = _old_run(objects)
    _run(objects, "2", ended=False)
    origin = RecordStore(objects).read_attempt("F", "1", "start", "1", 0)
    clone = _clone(objects, origin)
    result = _gc(objects)
    assert result.runs_removed == 1 and result.blobs_deleted == 0
    np.testing.assert_array_equal(ContentStore(objects).load(clone["artifacts"]["x"]), VALUE)
    assert objects.exists(blob_key(key))


@pytest.mark.parametrize("where", ["writer-checked", "writer-pinned"])
def test_a_clone_racing_the_removal_of_its_origin_is_refused_never_dangling(objects: ObjectStore,
                                                                            where: str) -> None:
    """The cloner read the origin record, then gc removed the origin run: whether the cloner
    pinned before the sweep (its blobs are spared) or during it (it waits), it finds the origin
    record gone and refuses to clone; no record ever names a deleted blob."""
    _old_run(objects)
    _run(objects, "2", ended=False)
    origin = RecordStore(objects).read_attempt("F", "1", "start", "1", 0)
    if where == "writer-checked":  # pinned and past the lease check before gc starts
        pause = Pause(where, "cloner")
        cloner = Worker("cloner", lambda: _clone(objects, origin))
        cloner.start()
        pause.wait()
        result = _gc(objects)
        assert result.blobs_spared == 1
        pause.go.set()
    else:  # gc holds its lease when the cloner pins
        listed = Pause("gc-pins-listed", "gc")
        collector = Worker("gc", lambda: _gc(objects))
        collector.start()
        listed.wait()
        pinned = Pause(where, "cloner")
        pinned.go.set()
        cloner = Worker("cloner", lambda: _clone(objects, origin))
        cloner.start()
        pinned.wait()
        listed.go.set()
        assert collector.finish().blobs_deleted == 1
    with pytest.raises(DataMissingError, match="was removed .headwater gc or delete. while it was being cloned"):
        cloner.finish()
    assert RecordStore(objects).attempts("F", "2", "start", "1") == []


def test_pins_of_writers_outside_a_run_expire_after_the_grace(objects: ObjectStore) -> None:
    key = ContentStore(objects).save(VALUE)["key"]  # an orphan, pinned anonymously
    assert _gc(objects).blobs_spared == 1 and objects.exists(blob_key(key))
    later = time.time() + pins.PIN_GRACE + 1
    result = _gc(objects, clock=lambda: later, lease_seconds=1e12)
    assert result.blobs_deleted == 1 and result.pins_removed == 1
    assert not objects.exists(blob_key(key))


def test_one_collector_at_a_time(objects: ObjectStore) -> None:
    """A collector removes the pins of runs that ended; another one that read the records
    before they ended would then miss them. So a second gc is refused while one runs."""
    from headwater.store.gc import collect

    key = _old_run(objects)
    first = pins.SweepLease(objects, seconds=pins.COLLECTOR_LEASE_SECONDS, directory=pins.COLLECTORS_DIR)
    first.acquire_alone()
    try:
        with pytest.raises(pins.CollectorBusy, match="Another headwater gc or delete is running on"):
            collect(objects, Retention(keep_newer_than=0.0))
        assert objects.exists(blob_key(key))
    finally:
        first.release()
    # A lock left by a killed collector stops nobody once it has expired.
    objects.put(f"{pins.COLLECTORS_DIR}/{int((time.time() - 1) * 1e9):020d}-dead", b"")
    the_plan, result = collect(objects, Retention(keep_newer_than=0.0))
    assert result is not None and result.blobs_deleted == 1 and not objects.exists(blob_key(key))
    assert pins.live_sweeps(objects, directory=pins.COLLECTORS_DIR) == []
