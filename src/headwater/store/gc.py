"""Garbage collection and run deletion (storage layer, internal): mark and sweep over the
attempt records, safe while runs execute.

``plan`` decides which runs go (a retention policy, or named runs for ``delete``) and marks
every blob that a kept record or a root names; ``collect`` then, holding the collector lock,
deletes the removed runs' pins, records, logs and cards, then, under a sweep lease
(``store.pins``), every blob that nothing names or pins. The safety argument is in
docs/store.md ("Garbage collection").
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import HeadwaterNotFound
from .catalog import CATALOG_DIR, TAG_MARK_SUFFIX, parse_segment_name
from .content import blob_key
from .objects import DELETE_BATCH, LocalObjectStore, ObjectStore
from .pins import (ANON_PINS, COLLECTOR_LEASE_SECONDS, COLLECTORS_DIR, PIN_GRACE, RUN_PINS, Pin, SweepLease,
                   anon_pin_time, checkpoint, list_pins, list_roots)
from .records import RUN_FILE, TAGS_DIR, DamagedRecordError, RecordStore, replay_tags
from .refs import attempt_blob_refs, run_blob_refs
from .retention import GcError, Keep, Retention, parse_duration, parse_run, parse_runs

#: Records read at once (local: page cache bound; S3: waits on the network).
LOCAL_WORKERS = 4
REMOTE_WORKERS = 16
#: A run without an end record whose process looks gone (``DeadFn``) may be removed only
#: once nothing under ``runs/<Flow>/<run>/`` was written for this long (seconds): liveness
#: is a heuristic (a container shares a host name, not a pid namespace; a killed run process
#: may leave Kubernetes pods or Ray tasks writing), and an hour of silence is not.
IDLE_SECONDS = 3600.0
#: ``deleting/<Flow>/<run_id>``: the blobs a ``delete`` frees, written before it deletes
#: anything and removed once it is done, so a delete cut short can be finished.
DELETING_DIR = "deleting"
_ATTEMPT = re.compile(r"\d+\.json")


@dataclass(slots=True)
class RunInfo:
    """One run as gc sees it."""

    flow: str
    run_id: str
    created_at: float = 0.0
    tags: frozenset[str] = frozenset()
    ended: bool = False
    in_progress: bool = False
    record: dict[str, Any] | None = None
    keep: Keep | None = None  # None: removed
    objects: list[tuple[str, int]] = field(default_factory=list)  # (key, size) under runs/<flow>/<run>/
    #: When anything under runs/<flow>/<run>/ was last written (seconds since the epoch; 0: nothing).
    last_write: float = 0.0
    #: A run a ``delete`` was cut short on: its run record is gone, its delete manifest is not.
    half_deleted: bool = False
    #: Content keys the run's records name (filled for removed runs: a delete's manifest).
    refs: set[str] = field(default_factory=set)

    @property
    def pathspec(self) -> str:
        return f"{self.flow}/{self.run_id}"


@dataclass(slots=True)
class Plan:
    """What a gc or delete would do: computed from the store without changing it."""

    root: str
    runs: list[RunInfo] = field(default_factory=list)
    #: Content keys named by the records that stay (and by roots): never deleted.
    marked: set[str] = field(default_factory=set)
    #: Content key -> stored size of each blob that would be deleted (before pins are consulted).
    blobs: dict[str, int] = field(default_factory=dict)
    #: Object keys (records, logs, cards, tag events) of the removed runs, run records last.
    records: list[str] = field(default_factory=list)
    record_bytes: int = 0
    #: Content keys named by the removed runs' records (a delete frees only these).
    removed_refs: set[str] = field(default_factory=set)
    planned_at: float = field(default_factory=time.time)
    #: The pins listed before any record was read: only these may be removed as settled
    #: (a pin written later may protect a blob that the records read did not name yet).
    pins_seen: list[Pin] = field(default_factory=list)
    #: Whether this is a ``delete`` (it frees only the removed runs' blobs, and keeps a manifest).
    is_delete: bool = False
    #: Delete manifests (``DELETING_DIR``) to remove once the blobs are gone.
    manifests: list[str] = field(default_factory=list)

    @property
    def removed(self) -> list[RunInfo]:
        return [r for r in self.runs if r.keep is None]

    @property
    def kept(self) -> list[RunInfo]:
        return [r for r in self.runs if r.keep is not None]

    @property
    def blob_bytes(self) -> int:
        return sum(self.blobs.values())


@dataclass(slots=True)
class Result:
    """What a sweep did."""

    runs_removed: int = 0
    records_deleted: int = 0
    record_bytes: int = 0
    blobs_deleted: int = 0
    blob_bytes: int = 0
    blobs_spared: int = 0  # candidates a run in progress (or ended < PIN_GRACE ago) or another writer pinned
    pins_removed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class Progress:
    """How far a gc or delete has come (handed to the progress callback)."""

    phase: str = ""
    done: int = 0
    total: int | None = None  # None: not known in advance (a listing)


ProgressFn = Callable[[Progress], None]
#: Whether a run that has no end record lost its process (given its run record). The index
#: layer's ``meta.liveness.run_is_dead`` is the definition; the CLI passes it in.
DeadFn = Callable[[dict[str, Any]], bool]


def never_dead(run_record: dict[str, Any]) -> bool:
    """The cautious default: a run without an end record is in progress."""
    return False


def _workers(objects: ObjectStore) -> int:
    return LOCAL_WORKERS if isinstance(objects, LocalObjectStore) else REMOTE_WORKERS


def _read_json(records: RecordStore, key: str) -> dict[str, Any] | None:
    try:
        return records.read_key(key)
    except (KeyError, DamagedRecordError):
        return None


def _run_infos(records: RecordStore, *, want_tags: bool, is_dead: DeadFn, now: float,
               on_progress: ProgressFn | None) -> list[RunInfo]:
    """Every run directory of the store, with its record, end and liveness (a run without an
    end record is in progress unless ``is_dead`` says so AND it has been idle ``IDLE_SECONDS``)."""
    objects = records.objects
    dirs = [(flow, run_id) for flow in records.flows() for run_id in records.runs(flow)]
    progress = Progress("reading runs", 0, len(dirs))

    def read(item: tuple[str, str]) -> RunInfo:
        flow, run_id = item
        info = RunInfo(flow, run_id)
        # One listing per run: its objects (sizes for the report) and whether it has ended.
        stats = list(objects.iter_stats(f"runs/{flow}/{run_id}"))
        info.objects = [(key, size) for key, size, _ in stats]
        info.last_write = max((mtime for _, _, mtime in stats), default=0.0)
        rec = _read_json(records, records.run_key(flow, run_id))
        if rec is None:
            return info
        info.record = rec
        info.created_at = float(rec.get("created_at") or 0.0)
        end = records.run_end_key(flow, run_id)
        info.ended = any(key == end for key, _ in info.objects)
        idle = now - info.last_write > IDLE_SECONDS
        info.in_progress = not info.ended and not (idle and is_dead(rec))
        tags = set(rec.get("system_tags") or ())
        if want_tags:
            tags.update(replay_tags(rec.get("tags") or (), records.read_tag_events(flow, run_id)))
        info.tags = frozenset(tags)
        return info

    out = []
    with ThreadPoolExecutor(_workers(objects), thread_name_prefix="hw-gc-runs") as pool:
        for info in pool.map(read, dirs):
            out.append(info)
            progress.done += 1
            if on_progress is not None:
                on_progress(progress)
    return out


def _decide(runs: list[RunInfo], retention: Retention, now: float) -> None:
    """Set each run's ``keep`` (None: it goes)."""
    delete = set(retention.delete)
    by_flow: dict[str, list[RunInfo]] = {}
    for r in runs:
        by_flow.setdefault(r.flow, []).append(r)
    newest: set[tuple[str, str]] = set()
    if retention.keep_last is not None:
        for flow_runs in by_flow.values():
            flow_runs.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
            newest.update((r.flow, r.run_id) for r in flow_runs[: retention.keep_last])
    keep_runs = set(retention.keep_runs)
    for r in runs:
        ident = (r.flow, r.run_id)
        if r.half_deleted:
            r.keep = None  # named by a delete that was cut short: finish it
        elif r.record is None:
            r.keep = Keep.NO_RUN_RECORD  # not ours to judge (being written, or not a run)
        elif r.in_progress:
            r.keep = Keep.IN_PROGRESS
        elif delete:
            r.keep = None if ident in delete else Keep.NOT_NAMED
        elif retention.flows and r.flow not in retention.flows:
            r.keep = Keep.NOT_IN_SCOPE
        elif ident in keep_runs:
            r.keep = Keep.NAMED
        elif ident in newest:
            r.keep = Keep.LAST
        elif retention.keep_newer_than is not None and now - r.created_at < retention.keep_newer_than:
            r.keep = Keep.NEWER
        elif retention.keep_tags and r.tags.intersection(retention.keep_tags):
            r.keep = Keep.TAG
        else:
            r.keep = None


def _check_names(runs: list[RunInfo], retention: Retention, root: str) -> None:
    """Refuse flows and runs named on the command line that the store does not hold."""
    flows = {r.flow for r in runs}
    idents = {(r.flow, r.run_id): r for r in runs}
    for flow in retention.flows:
        if flow not in flows:
            raise HeadwaterNotFound(f"Flow '{flow}' has no runs in the datastore {root}.",
                                    hint=f"Flows in this datastore: {', '.join(sorted(flows)) or 'none'}.")
    for option, named in (("--keep-run", retention.keep_runs), ("delete", retention.delete)):
        for flow, run_id in named:
            info = idents.get((flow, run_id))
            if info is None or (info.record is None and not info.half_deleted):
                raise HeadwaterNotFound(f"Run '{flow}/{run_id}' does not exist in the datastore {root}.",
                                        hint=f"Check the run id with `headwater runs {flow} --all` ({option}).")
            if option == "delete" and info.in_progress:
                raise GcError(f"Run '{flow}/{run_id}' is in progress (it has no end record, and its process is "
                              f"alive or it wrote less than {IDLE_SECONDS / 60:.0f} minutes ago); it cannot be "
                              "deleted while it runs.",
                              hint="Wait for it to end (or stop it), then delete it. A run whose process was "
                                   f"killed can be deleted once it has written nothing for {IDLE_SECONDS / 60:.0f} "
                                   "minutes.")


def plan(objects: ObjectStore, retention: Retention, *, now: float | None = None, is_dead: DeadFn = never_dead,
         on_progress: ProgressFn | None = None) -> Plan:
    """Decide what ``retention`` removes and what that frees, without changing the store.

    Parameters
    ----------
    objects : ObjectStore
        The datastore's object store.
    retention : Retention
        The policies (or, for ``delete``, the runs to delete).
    now : float, optional
        The time ``keep_newer_than`` and ``IDLE_SECONDS`` count back from (default: now).
    is_dead : callable
        Whether a run without an end record has lost its process (such a run may go once
        it has been idle ``IDLE_SECONDS``); default: never, so every such run counts as in
        progress and stays.
    on_progress : callable, optional
        Called with a ``Progress`` as runs and records are read.

    Raises
    ------
    GcError
        No policy was given (gc never removes everything by default), ``keep_last`` is
        below 1, or a run to delete is in progress.
    HeadwaterNotFound
        A flow or run named in ``retention`` does not exist.
    """
    if not retention.has_policy:
        raise GcError("headwater gc needs at least one retention policy; without one it would delete every run.",
                      hint="Name what to keep: --keep-last N, --keep-newer-than 30d, --keep-tag TAG or "
                           "--keep-run FLOW/RUN (they combine: a run stays when any of them keeps it).")
    if retention.keep_last is not None and retention.keep_last < 1:
        raise GcError(f"--keep-last {retention.keep_last} would keep no run of any flow.",
                      hint="Give --keep-last 1 or more. To remove every run that has ended, say so "
                           "explicitly: --keep-newer-than 0s.")
    now = time.time() if now is None else now
    records = RecordStore(objects)
    result = Plan(objects.url, is_delete=bool(retention.delete))
    listing = Progress("listing pins", 0, None)

    def tick() -> None:  # a collector renews its lock from the progress callback
        listing.done += 1000
        if on_progress is not None:
            on_progress(listing)

    result.pins_seen = list_pins(objects, every_1000=tick)  # before any record is read (see _sweep)
    result.runs = _run_infos(records, want_tags=bool(retention.keep_tags), is_dead=is_dead, now=now,
                             on_progress=on_progress)
    manifests = _manifests(objects, result.runs, retention)
    _check_names(result.runs, retention, objects.url)
    _decide(result.runs, retention, now)
    _mark(objects, records, result, on_progress)
    for run in result.removed:
        run.refs.update(manifests.get((run.flow, run.run_id), ()))
        result.removed_refs.update(run.refs)
    # A delete writes one manifest per run (``_sweep``) and removes it once its blobs are gone.
    result.manifests = [f"{DELETING_DIR}/{r.flow}/{r.run_id}" for r in result.removed] if retention.delete else []
    for key in list_roots(objects):
        result.marked.add(key)
    if retention.delete:  # a delete frees what the deleted runs named, nothing else
        shards: dict[str, set[str]] = {}
        for key in result.removed_refs - result.marked:
            shards.setdefault(blob_key(key).rpartition("/")[0], set()).add(key)
        for shard, keys in sorted(shards.items()):
            for bkey, size in objects.iter_sizes(shard):
                key = bkey.rpartition("/")[2]
                if key in keys:
                    result.blobs[key] = size
    else:
        listing = Progress("listing blobs", 0, None)
        for bkey, size in objects.iter_sizes("blobs"):
            key = bkey.rpartition("/")[2]
            if key not in result.marked:
                result.blobs[key] = size
            listing.done += 1
            if on_progress is not None and listing.done % 1000 == 0:
                on_progress(listing)
        # A full listing frees whatever a delete cut short left behind: its manifests can go.
        result.manifests = [f"{DELETING_DIR}/{flow}/{run_id}" for flow, run_id in manifests]
    return result


def _manifests(objects: ObjectStore, runs: list[RunInfo], retention: Retention) -> dict[tuple[str, str], list[str]]:
    """The delete manifests in the store, as (flow, run_id) -> content keys. A run that
    ``retention`` deletes whose run record is gone but whose manifest is not (a delete cut
    short) joins ``runs`` as ``half_deleted``, so this delete finishes it."""
    out: dict[tuple[str, str], list[str]] = {}
    for key in objects.iter_keys(DELETING_DIR):
        parts = key.split("/")
        if len(parts) != 3:
            continue
        try:
            out[(parts[1], parts[2])] = list(json.loads(objects.get(key))["blobs"])
        except (KeyError, ValueError, TypeError):
            out[(parts[1], parts[2])] = []  # unreadable: what the records still name is freed
    known = {(r.flow, r.run_id): r for r in runs}
    for ident in retention.delete:
        if ident in out:
            info = known.get(ident)
            if info is None:
                info = RunInfo(*ident)
                runs.append(info)
            if info.record is None:
                info.half_deleted = True
    return out


def _mark(objects: ObjectStore, records: RecordStore, result: Plan, on_progress: ProgressFn | None) -> None:
    """Read every record under each run: what the kept ones name is marked; the removed ones'
    objects are listed for deletion."""
    jobs: list[tuple[RunInfo, str]] = []
    removed_objects: list[tuple[str, int]] = []
    empty: list[RunInfo] = []
    for run in result.runs:
        prefix = f"runs/{run.flow}/{run.run_id}"
        run_file = f"{prefix}/{RUN_FILE}"
        last: list[tuple[str, int]] = []
        listed = run.objects
        if not listed and run.record is None and not run.half_deleted:
            empty.append(run)  # an empty directory (a local store), not a run
        for key, size in listed:
            parts = key.split("/")
            is_attempt = len(parts) == 6 and parts[3] != TAGS_DIR and _ATTEMPT.fullmatch(parts[5])
            if run.keep is None:
                (last if key == run_file else removed_objects).append((key, size))
            if is_attempt or key == run_file:
                jobs.append((run, key))
        removed_objects.extend(last)  # the run record goes last: a gc cut short leaves a run to retry
    gone = {id(r) for r in empty}
    result.runs = [r for r in result.runs if id(r) not in gone]
    removed_ids: dict[str, set[str]] = {}
    for run in result.removed:
        removed_ids.setdefault(run.flow, set()).add(run.run_id)
    for flow, ids in removed_ids.items():  # tag marks: runs/<Flow>/<time>.tags/<run_id>/<event>
        for mark in objects.list_dir(f"runs/{flow}"):
            if mark.endswith(TAG_MARK_SUFFIX):
                for run_id in set(objects.list_dir(f"runs/{flow}/{mark}")) & ids:
                    removed_objects[:0] = list(objects.iter_sizes(f"runs/{flow}/{mark}/{run_id}"))
    result.records = [k for k, _ in removed_objects]
    result.record_bytes = sum(s for _, s in removed_objects)
    progress = Progress("reading records", 0, len(jobs))

    def read(job: tuple[RunInfo, str]) -> tuple[RunInfo, str, dict[str, Any] | None]:
        run, key = job
        return run, key, _read_json(records, key)

    with ThreadPoolExecutor(_workers(objects), thread_name_prefix="hw-gc-mark") as pool:
        for run, key, rec in pool.map(read, jobs):
            progress.done += 1
            if on_progress is not None:
                on_progress(progress)
            if rec is None:
                continue
            refs = run_blob_refs(rec) if key.endswith(f"/{RUN_FILE}") else attempt_blob_refs(rec)
            target = result.marked if run.keep is not None else run.refs
            target.update(k for k, _ in refs)


def _sweep(objects: ObjectStore, the_plan: Plan, *, index: Any = None, lease_seconds: float | None = None,
           clock: Callable[[], float] = time.time, on_progress: ProgressFn | None = None) -> Result:
    """Carry out ``the_plan``: delete the removed runs' pins and records, then (under a sweep
    lease) every planned blob that no pin or root protects, then the pins nobody needs any more.

    Private: only safe under the collector lock, which ``collect`` holds (a second collector
    could remove pins that this one's plan relies on).

    Parameters
    ----------
    objects : ObjectStore
        The store ``the_plan`` was made for.
    the_plan : Plan
        From ``plan``.
    index : MetadataIndex, optional
        Forgets the removed runs (an index without ``forget_runs`` is left alone).
    lease_seconds : float, optional
        Length of the sweep lease (``pins.LEASE_SECONDS``).
    clock : callable
        Seconds since the epoch (tests drive it).
    on_progress : callable, optional
        Called with a ``Progress`` as objects are deleted.
    """
    started = time.perf_counter()
    result = Result()
    removed = the_plan.removed
    gone = {(r.flow, r.run_id) for r in removed}
    # 0. A delete first writes down what it frees: cut short, `delete` again finishes it.
    if the_plan.is_delete:
        for r in removed:
            objects.put(f"{DELETING_DIR}/{r.flow}/{r.run_id}", json.dumps({"blobs": sorted(r.refs)}).encode())
    # 1. The removed runs' pins, before their records: cut short after this, the next plan no
    # longer sees the runs, and no pin of theirs is left to keep their blobs forever.
    early = [p.object_key for p in the_plan.pins_seen if p.owner_kind == RUN_PINS and p.owner in gone]
    _delete_batches(objects, early, None, Progress("deleting pins", 0, len(early)), on_progress)
    checkpoint("gc-run-pins-deleted")
    # 2. The removed runs' records, logs, cards and tag events (each run's record last).
    _delete_batches(objects, the_plan.records, None, Progress("deleting records", 0, len(the_plan.records)),
                    on_progress)
    result.records_deleted, result.record_bytes = len(the_plan.records), the_plan.record_bytes
    result.runs_removed = len(removed)
    _forget(objects, removed, index)
    # 3. Blobs, under a lease: pins listed after it is taken protect everything a writer
    # may still reference; a writer pinning later waits for the lease to go.
    kwargs = {} if lease_seconds is None else {"seconds": lease_seconds}
    lease = SweepLease(objects, clock=clock, **kwargs)
    with lease:
        pins = list_pins(objects, every_1000=lease.ensure)
        roots = list_roots(objects)
        checkpoint("gc-pins-listed")
        protected, stale = _judge_pins(pins, the_plan, gone, clock())
        protected.update(roots)
        doomed = [k for k in sorted(the_plan.blobs) if k not in protected]
        result.blobs_spared = len(the_plan.blobs) - len(doomed)
        checkpoint("gc-deleting")
        _delete_batches(objects, [blob_key(k) for k in doomed], lease, Progress("deleting blobs", 0, len(doomed)),
                        on_progress)
        result.blobs_deleted = len(doomed)
        result.blob_bytes = sum(the_plan.blobs[k] for k in doomed)
    # 4. Pins nobody needs, then the delete manifests (their blobs are gone).
    _delete_batches(objects, [*stale, *the_plan.manifests], None,
                    Progress("deleting pins", 0, len(stale) + len(the_plan.manifests)), on_progress)
    result.pins_removed = len(early) + len(stale)
    result.seconds = time.perf_counter() - started
    return result


def _judge_pins(pins: list[Pin], the_plan: Plan, gone: set[tuple[str, str]],
                now: float) -> tuple[set[str], list[str]]:
    """(content keys the pins protect, object keys of the pins that can go).

    A run's pin goes with the run when it is deleted. A kept run's pin goes once the run
    has ended (or died and gone idle) ``PIN_GRACE`` ago, and only if it was listed before
    the plan read the records (so those records name what it protected); until then a
    straggling task of the run (a pod past its timeout) may still commit what it pinned.
    A pin whose run has no run record (left by a collector cut short, or never a run),
    and an anonymous pin, go ``PIN_GRACE`` after they were written.
    """
    with_record = {(r.flow, r.run_id): r for r in the_plan.runs if r.record is not None}
    seen = {p.object_key for p in the_plan.pins_seen}
    protected: set[str] = set()
    stale: list[str] = []
    for p in pins:
        if p.owner_kind == RUN_PINS and p.owner in gone:
            stale.append(p.object_key)  # the run is deleted: nothing may rely on its blobs
            continue
        if p.owner_kind == ANON_PINS:
            expired = now - anon_pin_time(p) > PIN_GRACE
        else:
            run = with_record.get(p.owner)  # type: ignore[arg-type]
            if run is None:
                expired = now - p.written > PIN_GRACE
            else:
                if (not run.in_progress and now - run.last_write > PIN_GRACE and p.object_key in seen):
                    stale.append(p.object_key)  # its records name what it protected; it protects this sweep
                protected.add(p.key)
                continue
        if expired:
            stale.append(p.object_key)
        else:
            protected.add(p.key)
    return protected, stale


def _delete_batches(objects: ObjectStore, keys: Sequence[str], lease: SweepLease | None,
                    progress: Progress | None, on_progress: ProgressFn | None) -> None:
    """Delete ``keys`` DELETE_BATCH at a time; with ``lease``, only while it has time left for
    another batch (``SweepLease.ensure`` raises ``SweepLost`` otherwise)."""
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        if lease is not None:
            lease.ensure()
        objects.delete_many(batch)
        if progress is not None:
            progress.done += len(batch)
            if on_progress is not None:
                on_progress(progress)


def _forget(objects: ObjectStore, removed: Sequence[RunInfo], index: Any) -> None:
    """The removed runs leave the index and the catalog segments that list them."""
    by_flow: dict[str, list[str]] = {}
    for r in removed:
        by_flow.setdefault(r.flow, []).append(r.run_id)
    forget = getattr(index, "forget_runs", None)
    for flow, run_ids in by_flow.items():
        if forget is not None:
            forget(flow, run_ids)
        # A segment is a cache of index rows: one that lists a removed run goes (a reader
        # then lists those runs instead, and a later reader compacts them again).
        doomed = []
        for name in objects.list_dir(f"{CATALOG_DIR}/{flow}"):
            span = parse_segment_name(name)
            if span is not None and any(span[0] <= r <= span[1] for r in run_ids):
                doomed.append(f"{CATALOG_DIR}/{flow}/{name}")
        objects.delete_many(doomed)


def collect(objects: ObjectStore, retention: Retention, *, index: Any = None, dry_run: bool = False,
            now: float | None = None, is_dead: DeadFn = never_dead,
            on_progress: ProgressFn | None = None) -> tuple[Plan, Result | None]:
    """``plan`` then (unless ``dry_run``) ``sweep``, holding the store's collector lock throughout.

    One collector at a time: a sweep removes the pins of runs that ended, which a collector
    that read the records before they ended would still need.

    Raises
    ------
    CollectorBusy
        Another ``gc`` or ``delete`` is running on the store.
    """
    if dry_run:
        return plan(objects, retention, now=now, is_dead=is_dead, on_progress=on_progress), None
    lock = SweepLease(objects, seconds=COLLECTOR_LEASE_SECONDS, directory=COLLECTORS_DIR)
    lock.acquire_alone()
    try:
        def beat(p: Progress) -> None:
            lock.ensure()
            if on_progress is not None:
                on_progress(p)

        the_plan = plan(objects, retention, now=now, is_dead=is_dead, on_progress=beat)
        return the_plan, _sweep(objects, the_plan, index=index, on_progress=beat)
    finally:
        lock.release()


__all__ = ["GcError", "Keep", "Plan", "Progress", "Result", "Retention", "RunInfo", "collect", "parse_duration",
           "parse_run", "parse_runs", "plan"]
