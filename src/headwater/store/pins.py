"""Pins, roots and sweep leases (storage layer, internal): what keeps garbage collection
from deleting a blob that a writer is about to reference.

Three kinds of small objects, all create-only (docs/store.md, "Garbage collection"):

``pins/runs/<Flow>/<run_id>/<content key>``, ``pins/anon/<time_ns>-<hex>/<content key>``
    Written by a writer BEFORE it asks whether a blob exists (the dedup check) or writes
    it, and before a record starts naming a blob it did not write (a clone, a resume's
    parameters). A run's pins stay until ``PIN_GRACE`` seconds after the run has ended
    (or died and gone idle), and go with the run when it is deleted; pins of writers
    outside a run (``anon``, a fresh owner stamped with the time of each ``pin`` call)
    stay for ``PIN_GRACE`` seconds after they were written.
``roots/<kind>/<name>/<content key>``
    A blob referenced from outside the store (a deployed Argo template's code package and
    environment locks): a permanent pin. It stays after the deployment is deleted (runs in
    flight still need it); remove ``roots/<kind>/<name>/`` by hand once they have ended.
``collectors/<expires_ns>-<gc id>``
    A collector's lock, held from its first read to its last delete: one gc at a time,
    because a gc removes the pins of runs that ended, which another gc that read the
    records earlier may still rely on. Writers never look at it.
``sweeps/<expires_ns>-<gc id>``
    A sweep lease: a collector that is about to list pins and delete blobs holds one,
    refreshed while it works. A writer that finds a live lease after pinning waits for
    it to go before its exists() check; a lease past its expiry (a killed collector)
    is ignored.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..exceptions import HeadwaterException
from .objects import ObjectStore

PINS_DIR = "pins"
#: Owners under ``pins/``: a run's writers, and writers outside any run.
RUN_PINS = "runs"
ANON_PINS = "anon"
ROOTS_DIR = "roots"
SWEEPS_DIR = "sweeps"
#: Where a running collector holds its lock (collectors exclude each other; writers ignore it).
COLLECTORS_DIR = "collectors"
#: The collector lock's lease (seconds): how long a killed gc keeps the next one out.
COLLECTOR_LEASE_SECONDS = 300.0
#: How long a pin of a writer outside a run protects its blob (seconds): such a writer
#: names the blob in a run record (a code package, a parameter) or hands its key to a
#: task within seconds; a day leaves room for a slow deployment.
PIN_GRACE = 24 * 3600.0
#: A sweep lease's length (seconds); the collector refreshes it every third of that.
LEASE_SECONDS = 60.0
#: A collector stops deleting when less than this is left of its lease (seconds): covers a
#: delete in flight and clocks of the machines that share a store being slightly apart.
LEASE_MARGIN = 15.0
#: A writer that found a live lease looks again after WAIT_POLL seconds, doubling the
#: wait up to WAIT_POLL_MAX (each look is a LIST on S3; a sweep lasts seconds to minutes).
WAIT_POLL = 0.05
WAIT_POLL_MAX = 2.0
#: How long a process reuses an anonymous pin it wrote instead of writing another
#: (seconds): half of PIN_GRACE, so a reused pin always has half a day left to protect.
ANON_REUSE = PIN_GRACE / 2

#: Test seam: ``CHECKPOINTS[name]()`` runs at each named step of the protocol, so a test
#: can pause a writer or a collector exactly there (``writer-pinned``, ``writer-checked``,
#: ``gc-leased``, ``gc-pins-listed``, ``gc-deleting``, ``clone-pinned``).
CHECKPOINTS: dict[str, Callable[[], None]] = {}


def checkpoint(name: str) -> None:
    """Run the test hook registered for ``name`` (nothing in normal operation)."""
    hook = CHECKPOINTS.get(name)
    if hook is not None:
        hook()


def run_owner(flow: str, run_id: str) -> str:
    """The pin owner of the writers of run ``flow/run_id``."""
    return f"{RUN_PINS}/{flow}/{run_id}"


def anonymous_owner() -> str:
    """A fresh pin owner for a writer outside any run; its name carries its time."""
    return f"{ANON_PINS}/{time.time_ns():020d}-{secrets.token_hex(4)}"


def pin_key(owner: str, key: str) -> str:
    return f"{PINS_DIR}/{owner}/{key}"


def pin(objects: ObjectStore, owner: str, keys: Iterable[str]) -> None:
    """Pin the content keys ``keys`` for ``owner``, then wait while a sweep is under way.

    After this returns, no collector deletes those blobs until the pins are removed, and
    any collector that deleted one before has finished: an exists() check made now is
    the truth (see docs/store.md for the argument).
    """
    for key in keys:
        objects.put(pin_key(owner, key), b"")
    checkpoint("writer-pinned")
    wait_for_sweeps(objects)
    checkpoint("writer-checked")


def live_sweeps(objects: ObjectStore, now: float | None = None, *, directory: str = SWEEPS_DIR,
                margin: float = 0.0) -> list[str]:
    """Names of the sweep leases (or, with ``directory``, collector locks) that had not expired
    ``margin`` seconds ago."""
    now_ns = int(((time.time() if now is None else now) - margin) * 1e9)
    out = []
    for name in objects.list_dir(directory):
        stamp, dash, _ = name.partition("-")
        if dash and stamp.isdigit() and int(stamp) > now_ns:
            out.append(name)
    return out


def wait_for_sweeps(objects: ObjectStore) -> None:
    """Return once no sweep lease in the store is live or expired less than ``LEASE_MARGIN``
    seconds ago (at once when there is none): the collector stops deleting ``LEASE_MARGIN``
    before its lease ends, and the margin on this side covers clocks that are apart."""
    delay = WAIT_POLL
    while live_sweeps(objects, margin=LEASE_MARGIN):
        time.sleep(delay)
        delay = min(delay * 2, WAIT_POLL_MAX)


def write_root(objects: ObjectStore, name: str, key: str) -> None:
    """Record that something outside the store (``name``, e.g. ``argo-workflows/<template>``)
    needs blob ``key``: gc keeps it while the root exists. Written before the blob is saved."""
    objects.put(f"{ROOTS_DIR}/{name}/{key}", b"")


def deployment_root(kind: str, name: str) -> str:
    """The root name of deployment ``name`` on ``kind`` (``argo-workflows``)."""
    return f"{kind}/{name}"


@dataclass(frozen=True, slots=True)
class Pin:
    """One pin object: who holds it and on which content key."""

    object_key: str
    owner_kind: str  # RUN_PINS or ANON_PINS
    owner: tuple[str, ...]  # (flow, run_id) or (stamp,)
    key: str
    #: When the store says the pin was written (seconds since the epoch).
    written: float = 0.0


def list_pins(objects: ObjectStore, *, every_1000: Callable[[], None] | None = None) -> list[Pin]:
    """Every pin in the store; ``every_1000`` is called after each thousand (a collector
    refreshes its lease there)."""
    out = []
    for n, (okey, _, written) in enumerate(objects.iter_stats(PINS_DIR), 1):
        if every_1000 is not None and n % 1000 == 0:
            every_1000()
        parts = okey.split("/")
        if len(parts) == 5 and parts[1] == RUN_PINS:
            out.append(Pin(okey, RUN_PINS, (parts[2], parts[3]), parts[4], written))
        elif len(parts) == 4 and parts[1] == ANON_PINS:
            out.append(Pin(okey, ANON_PINS, (parts[2],), parts[3], written))
    return out


def list_roots(objects: ObjectStore) -> dict[str, list[str]]:
    """Content key -> the ``kind/name`` of every root naming it."""
    out: dict[str, list[str]] = {}
    for okey in objects.iter_keys(ROOTS_DIR):
        head, _, key = okey.rpartition("/")
        out.setdefault(key, []).append(head[len(ROOTS_DIR) + 1:])
    return out


def anon_pin_time(pin: Pin) -> float:
    """When an anonymous pin was written: the later of the writer's stamp in its name and the
    store's write time (seconds since the epoch), so neither clock alone ages it early."""
    stamp = pin.owner[0].partition("-")[0]
    return max(int(stamp) / 1e9 if stamp.isdigit() else 0.0, pin.written)


class SweepLost(HeadwaterException):
    """A collector's lease ran out (it stalled): it must not delete anything more."""

    headline = "Garbage collection stopped"


class CollectorBusy(HeadwaterException):
    """Another collector holds the store's collector lock."""

    headline = "Garbage collection is already running"


class SweepLease:
    """A collector's sweep lease: written before it lists pins, refreshed while it deletes.

    Parameters
    ----------
    objects : ObjectStore
        The store being collected.
    seconds : float
        Length of the lease.
    clock : callable
        Seconds since the epoch (a test may drive it).
    """

    def __init__(self, objects: ObjectStore, *, seconds: float = LEASE_SECONDS,
                 clock: Callable[[], float] = time.time, directory: str = SWEEPS_DIR) -> None:
        self.objects = objects
        self.directory = directory
        self.seconds = seconds
        self.clock = clock
        self.id = secrets.token_hex(6)
        self._name: str | None = None
        self._expires = 0.0

    def acquire(self) -> None:
        self._write()
        checkpoint("gc-leased")

    def _write(self) -> None:
        expires = self.clock() + self.seconds
        name = f"{int(expires * 1e9):020d}-{self.id}"
        self.objects.put(f"{self.directory}/{name}", b"")
        old, self._name, self._expires = self._name, name, expires
        if old is not None:
            self.objects.delete(f"{self.directory}/{old}")

    def ensure(self) -> None:
        """Refresh the lease if a third of it is gone; ``SweepLost`` if too little is left to
        act on (the collector stalled past it, and writers may have stopped waiting)."""
        left = self._expires - self.clock()
        if left < min(LEASE_MARGIN, self.seconds / 4):
            raise self._lost()
        if left < self.seconds * 2 / 3:
            self._write()
            if self._expires - self.clock() < min(LEASE_MARGIN, self.seconds / 4):
                raise self._lost()

    def acquire_alone(self) -> None:
        """Take the lease unless another live one is there (``CollectorBusy``). Two that race
        may both give up; neither goes ahead with another."""
        self._write()
        others = [n for n in live_sweeps(self.objects, self.clock(), directory=self.directory) if n != self._name]
        if others:
            self.release()
            raise CollectorBusy(f"Another headwater gc or delete is running on {self.objects.url} "
                                f"(its lock {self.directory}/{others[0]}).",
                                hint="Wait for it to finish and run the command again. A gc that was killed "
                                     f"holds the lock for at most {self.seconds:.0f} seconds.")

    def _lost(self) -> SweepLost:
        if self.directory == COLLECTORS_DIR:
            return SweepLost(f"The collector lock {self.directory}/{self._name} in {self.objects.url} ran out "
                             "before the gc ended (the process stalled); it stopped, since another gc may "
                             "have started.", hint="Nothing is lost: run headwater gc (or delete) again to finish.")
        return SweepLost(f"The sweep lease {self.directory}/{self._name} in {self.objects.url} ran out before the "
                         "sweep ended (the process stalled); it stopped deleting, since writers no longer wait "
                         "for it.", hint="Nothing is lost: run headwater gc (or delete) again to finish.")

    def release(self) -> None:
        if self._name is not None:
            self.objects.delete(f"{self.directory}/{self._name}")
            self._name = None

    def __enter__(self) -> SweepLease:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


__all__ = ["ANON_PINS", "ANON_REUSE", "CHECKPOINTS", "COLLECTORS_DIR", "COLLECTOR_LEASE_SECONDS", "CollectorBusy", "LEASE_SECONDS", "PINS_DIR", "PIN_GRACE", "Pin", "ROOTS_DIR", "RUN_PINS",
           "SWEEPS_DIR", "SweepLease", "SweepLost", "WAIT_POLL", "WAIT_POLL_MAX", "anon_pin_time", "anonymous_owner", "checkpoint", "list_pins", "list_roots",
           "deployment_root", "live_sweeps", "pin", "run_owner", "wait_for_sweeps", "write_root"]
