"""Pins that gc must not remove too early, runs it must not take for dead, and a gc or delete
cut short (issue 12 review): each test drives the protocol to the exact step with checkpoint
hooks and an injected clock, never with sleeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from headwater.exceptions import HeadwaterNotFound
from headwater.store import ContentStore, ObjectStore, RecordStore
from headwater.store import pins
from headwater.store.content import blob_key
from headwater.store.gc import IDLE_SECONDS, GcError, Keep, Retention, collect, plan
from headwater.store.gc import _sweep as sweep
from headwater.store.objects import LocalObjectStore
from gcstores import pin_test_store

VALUE = np.arange(50_000, dtype=np.float64)  # out of band: always a blob
OTHER = np.arange(60_000, dtype=np.float64)


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
    """Run F/<run_id> with one task naming ``refs``; its process is gone (``pid`` None)."""
    records = RecordStore(objects)
    records.write_run({"flow": "F", "run_id": run_id, "created_at": time.time(), "pid": None,
                       "tags": [], "system_tags": []})
    if refs is not None:
        records.write_attempt({"flow": "F", "run_id": run_id, "step": "start", "task_id": "1", "attempt": 0,
                               "status": "ok", "artifacts": refs})
    if ended:
        records.write_run_end("F", run_id, {"status": "failed", "finished_at": time.time(), "failed": []})


def _commit(objects: ObjectStore, run_id: str, task_id: str, ref: dict[str, Any]) -> None:
    RecordStore(objects).write_attempt({"flow": "F", "run_id": run_id, "step": "train", "task_id": task_id,
                                        "attempt": 0, "status": "ok", "artifacts": {"model": ref}})


KEEP_1 = Retention(keep_runs=(("F", "1"),))


# -- 3. a straggler of an ended run -------------------------------------------------------


def test_a_straggler_of_an_ended_run_keeps_its_blob_through_two_gcs(objects: ObjectStore) -> None:
    """The run process wrote the end record; a task of it (a pod past its timeout) pinned and
    stored a blob and commits later. No gc in between may delete that blob."""
    _run(objects, "1", ended=True)
    ref = ContentStore(objects).for_run("F", "1").save(VALUE)  # pinned, not yet committed
    for _ in range(2):
        _, result = collect(objects, KEEP_1)
        assert result is not None and result.blobs_deleted == 0 and result.blobs_spared == 1
    _commit(objects, "1", "2", ref)
    np.testing.assert_array_equal(ContentStore(objects).load(ref), VALUE)


def test_a_settled_run_loses_only_the_pins_listed_before_its_records_were_read(objects: ObjectStore) -> None:
    """A day after the run ended its pins may go, but not one written after the plan read
    the records (those records cannot name what it protects)."""
    _run(objects, "1", ended=True)
    early = ContentStore(objects).for_run("F", "1").save(VALUE)
    _commit(objects, "1", "2", early)
    later = time.time() + pins.PIN_GRACE + 1
    the_plan = plan(objects, KEEP_1, now=later)
    late = ContentStore(objects).for_run("F", "1").save(OTHER)  # a straggler pins after the plan read
    result = sweep(objects, the_plan, clock=lambda: later, lease_seconds=1e12)
    assert result.pins_removed == 1 and result.blobs_deleted == 0
    assert [k.rpartition("/")[2] for k in objects.iter_keys("pins/runs/F/1")] == [late["key"]]
    assert objects.exists(blob_key(late["key"])) and objects.exists(blob_key(early["key"]))


# -- 4. a run whose process looks dead --------------------------------------------------


def test_a_run_that_looks_dead_but_wrote_recently_is_in_progress(objects: ObjectStore) -> None:
    """Liveness is a heuristic (another container on the same host name, pods of a killed run):
    a run is dead for gc only once nothing was written under it for IDLE_SECONDS."""
    ref = ContentStore(objects).for_run("F", "1").save(VALUE)
    _run(objects, "1", ended=False, refs={"x": ref})
    dead = lambda rec: True  # noqa: E731 - liveness says its process is gone
    the_plan = plan(objects, Retention(keep_newer_than=0.0), is_dead=dead)
    assert [r.keep for r in the_plan.runs] == [Keep.IN_PROGRESS] and not the_plan.blobs
    with pytest.raises(GcError, match=r"Run 'F/1' is in progress .* wrote less than 60 minutes ago"):
        plan(objects, Retention(delete=(("F", "1"),)), is_dead=dead)
    later = time.time() + IDLE_SECONDS + 1
    idle = plan(objects, Retention(keep_newer_than=0.0), is_dead=dead, now=later)
    assert [r.keep for r in idle.runs] == [None] and set(idle.blobs) == {ref["key"]}


# -- 5. a gc or delete cut short ---------------------------------------------------------


def _killed_at(name: str) -> None:
    def killed() -> None:
        raise KeyboardInterrupt

    pins.CHECKPOINTS[name] = killed


def test_a_delete_cut_short_after_the_records_is_finished_by_delete_again(objects: ObjectStore) -> None:
    ref = ContentStore(objects).for_run("F", "1").save(VALUE)
    _run(objects, "1", ended=True, refs={"x": ref})
    delete = Retention(delete=(("F", "1"),))
    _killed_at("gc-leased")  # the records are gone, the blobs are not
    with pytest.raises(KeyboardInterrupt):
        collect(objects, delete)
    pins.CHECKPOINTS.clear()
    assert RecordStore(objects).runs("F") == [] and objects.exists(blob_key(ref["key"]))
    assert list(objects.iter_keys("deleting")) == ["deleting/F/1"]
    assert not list(objects.iter_keys("pins/runs"))  # its pins went before its records
    _, result = collect(objects, delete)
    assert result is not None and result.blobs_deleted == 1 and not objects.exists(blob_key(ref["key"]))
    assert not list(objects.iter_keys("deleting"))
    with pytest.raises(HeadwaterNotFound, match="Run 'F/1' does not exist"):
        collect(objects, delete)  # done: now it is gone


def test_a_delete_that_ends_leaves_no_manifest(objects: ObjectStore) -> None:
    ref = ContentStore(objects).for_run("F", "1").save(VALUE)
    _run(objects, "1", ended=True, refs={"x": ref})
    _, result = collect(objects, Retention(delete=(("F", "1"),)))
    assert result is not None and result.blobs_deleted == 1
    assert list(objects.iter_keys("")) == []  # nothing left: no record, pin, manifest or blob


def test_a_gc_cut_short_after_the_records_leaves_no_pin_protecting_their_blobs(objects: ObjectStore) -> None:
    ref = ContentStore(objects).for_run("F", "1").save(VALUE)
    _run(objects, "1", ended=True, refs={"x": ref})
    _run(objects, "2", ended=True)
    _killed_at("gc-leased")
    with pytest.raises(KeyboardInterrupt):
        collect(objects, Retention(keep_runs=(("F", "2"),)))
    pins.CHECKPOINTS.clear()
    _, result = collect(objects, Retention(keep_runs=(("F", "2"),)))
    assert result is not None and result.blobs_deleted == 1 and not objects.exists(blob_key(ref["key"]))


def test_pins_of_a_run_that_has_no_run_record_expire_after_the_grace(objects: ObjectStore) -> None:
    """Pins left under a run that is gone (a straggler of a deleted run, a collector cut short
    before this fix) protect for PIN_GRACE, then go."""
    ref = ContentStore(objects).for_run("F", "9").save(VALUE)
    _run(objects, "2", ended=True)
    keep = Retention(keep_runs=(("F", "2"),))
    assert sweep(objects, plan(objects, keep)).blobs_spared == 1
    later = time.time() + pins.PIN_GRACE + 1
    result = sweep(objects, plan(objects, keep, now=later), clock=lambda: later, lease_seconds=1e12)
    assert result.blobs_deleted == 1 and result.pins_removed == 1 and not objects.exists(blob_key(ref["key"]))


# -- 6. anonymous pins are aged from their own write -------------------------------------


def test_an_anonymous_pin_is_stamped_when_written_not_when_the_store_was_made(
        objects: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ContentStore(objects)
    long_ago = time.time_ns() - int((pins.PIN_GRACE + 3600) * 1e9)
    with monkeypatch.context() as m:
        m.setattr(time, "time_ns", lambda: long_ago)
        store.save(OTHER)  # its first pin, a day and more ago
    ref = store.save(VALUE)  # a pin written now: it must protect now
    _run(objects, "2", ended=True)
    _, result = collect(objects, Retention(keep_runs=(("F", "2"),)))
    assert result is not None and result.blobs_spared == 2 and objects.exists(blob_key(ref["key"]))
    stamps = sorted(pins.anon_pin_time(p) for p in pins.list_pins(objects))
    assert len(stamps) == 2 and time.time() - stamps[1] < 600  # each pin has its own stamp


# -- 10, 17. pins written once; for_run derives a store -----------------------------------


class Counting(LocalObjectStore):
    """A local store that counts pin writes and looks at sweeps/."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pin_puts = 0
        self.sweep_lists = 0

    def put(self, key: str, data: Any) -> bool:
        self.pin_puts += key.startswith("pins/")
        return super().put(key, data)

    def list_dir(self, prefix: str) -> list[str]:
        self.sweep_lists += prefix == pins.SWEEPS_DIR
        return super().list_dir(prefix)


def test_a_pin_is_written_once_per_owner_and_key(tmp_path: Path) -> None:
    objects = Counting(tmp_path / "root")
    base = ContentStore(objects)
    first = base.for_run("F", "1")
    first.save(VALUE)
    base.for_run("F", "1").save(VALUE)  # another derived store of the same process: no second pin
    assert (objects.pin_puts, objects.sweep_lists) == (1, 1)
    base.for_run("F", "2").save(VALUE)  # another owner pins for itself
    assert (objects.pin_puts, objects.sweep_lists) == (2, 2)


def test_for_run_leaves_the_shared_store_as_it_was(tmp_path: Path) -> None:
    base = ContentStore(LocalObjectStore(tmp_path / "root"))
    run = base.for_run("F", "1")
    assert run is not base and run.owner == "runs/F/1" and base.owner is None
    base.save(VALUE)
    assert list(LocalObjectStore(tmp_path / "root").iter_keys("pins/anon"))  # still anonymous


# -- 9. writers back off, and wait out the margin ----------------------------------------


def test_a_writer_backs_off_and_waits_a_margin_past_a_lease(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = LocalObjectStore(tmp_path / "root")
    lease = f"{pins.SWEEPS_DIR}/{int((time.time() - 1) * 1e9):020d}-gone"  # expired a second ago
    objects.put(lease, b"")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 8:
            objects.delete(lease)

    monkeypatch.setattr(pins.time, "sleep", sleep)
    pins.wait_for_sweeps(objects)
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


# -- 19, 22. messages and options --------------------------------------------------------


def test_a_lost_collector_lock_says_so(tmp_path: Path) -> None:
    now = [time.time()]
    lock = pins.SweepLease(LocalObjectStore(tmp_path / "root"), seconds=pins.COLLECTOR_LEASE_SECONDS,
                           directory=pins.COLLECTORS_DIR, clock=lambda: now[0])
    lock.acquire_alone()
    now[0] += pins.COLLECTOR_LEASE_SECONDS
    with pytest.raises(pins.SweepLost, match="The collector lock collectors/.* ran out before the gc ended"):
        lock.ensure()


def test_keep_last_zero_is_refused(tmp_path: Path) -> None:
    objects = LocalObjectStore(tmp_path / "root")
    _run(objects, "1", ended=True)
    with pytest.raises(GcError, match="--keep-last 0 would keep no run of any flow"):
        plan(objects, Retention(keep_last=0))


def test_durations_may_combine_units_with_spaces() -> None:
    from headwater.store.gc import parse_duration

    assert parse_duration("1d 12h") == parse_duration("1d12h") == 36 * 3600
    with pytest.raises(GcError, match="'1d x' is not a duration"):
        parse_duration("1d x")


def test_a_resume_pins_the_origin_blobs_once_for_all_its_clones(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from headwater.runtime.resume import ResumePlan, write_clone
    from headwater.store import Datastore

    objects = Counting(tmp_path / "root")
    origins = []
    for task in "123":
        ref = ContentStore(objects).for_run("F", "1").save(np.full(50_000, int(task), dtype=np.float64))
        rec = {"flow": "F", "run_id": "1", "step": "start", "task_id": task, "attempt": 0, "status": "ok",
               "artifacts": {"x": ref}}
        RecordStore(objects).write_attempt(rec)
        origins.append(rec)
    ds = Datastore.__new__(Datastore)
    ds.objects, ds.content, ds.records = objects, ContentStore(objects), RecordStore(objects)
    resume = ResumePlan("1", frozenset(), None, {},
                        _by_identity={("start", (), i): rec for i, rec in enumerate(origins)})
    before = (objects.pin_puts, objects.sweep_lists)
    resume.pin_origin_blobs(ds, "F", "2")
    for rec in origins:
        spec = SimpleNamespace(flow_name="F", run_id="2", task_id=rec["task_id"], input_paths=(), foreach_stack=())
        write_clone(ds, spec, rec, "1")  # type: ignore[arg-type]
    assert (objects.pin_puts - before[0], objects.sweep_lists - before[1]) == (3, 1)
    assert len(list(objects.iter_keys("pins/runs/F/2"))) == 3
