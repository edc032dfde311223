"""``headwater verify``'s engine (storage layer, internal): prove the store intact.

Walks the records in scope (all, some flows, some runs), gathers every object they
name (artifact blobs, inline artifacts, foreach item tables, code packages), then
checks each blob once, however many runs share it, several at a time: it must exist
and hash to its key (``blobcheck``). Reports each damaged or missing blob with every
run, step, task and artifact that refers to it, and can quarantine the damaged ones.
"""

from __future__ import annotations

import base64
import enum
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import DataCorruptionError, HeadwaterInvalidPathspec, HeadwaterNotFound
from .blobcheck import open_source, verify_source
from .codec import UnsupportedBlobError, _key
from .content import blob_key
from .objects import LocalObjectStore, ObjectStore
from .records import RUN_FILE, TAGS_DIR, DamagedRecordError, RecordStore

#: Blobs checked at once: local checks are CPU and page-cache bound (and blake3 already
#: spreads a large blob over every core); S3 checks wait on the network.
LOCAL_WORKERS = 4
REMOTE_WORKERS = 16
_ATTEMPT = re.compile(r"(\d+)\.json")
_CODE_PACKAGE = "(code package)"
_ITEM_TABLE = "(foreach item table of '{}')"


class Problem(enum.Enum):
    """What is wrong with one object of the store."""

    DAMAGED = "damaged"  # exists, but does not match its key
    MISSING = "missing"  # a record names it, the store does not hold it
    UNREADABLE = "unreadable"  # this version cannot decode it (a newer format): not proven intact
    DAMAGED_RECORD = "damaged record"  # a run or attempt record that is not a JSON object


@dataclass(frozen=True, slots=True)
class Reference:
    """One place a record names an object: a task attempt's artifact, or a run's code package."""

    flow: str
    run_id: str
    step: str | None = None
    task_id: str | None = None
    attempt: int | None = None
    artifact: str | None = None

    @property
    def pathspec(self) -> str:
        parts = [self.flow, self.run_id, self.step, self.task_id]
        return "/".join(p for p in parts if p is not None)

    def describe(self) -> str:
        """``Flow/run/step/task (attempt 1) artifact 'x'``, as the report shows it."""
        text = self.pathspec
        if self.attempt:
            text += f" (attempt {self.attempt})"
        if self.artifact is not None:
            text += f" {self.artifact}" if self.artifact.startswith("(") else f" artifact '{self.artifact}'"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"flow": self.flow, "run_id": self.run_id, "step": self.step, "task_id": self.task_id,
                "attempt": self.attempt, "artifact": self.artifact, "pathspec": self.pathspec}


@dataclass(slots=True)
class Finding:
    """A damaged, missing or unreadable object and everything that refers to it."""

    problem: Problem
    key: str  # content key (a blob) or object key (a record)
    object: str  # the object's key in the store
    reason: str
    references: list[Reference] = field(default_factory=list)
    quarantined: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"problem": self.problem.value, "key": self.key, "object": self.object, "reason": self.reason,
                "quarantined": self.quarantined, "references": [r.as_dict() for r in self.references]}


@dataclass(slots=True)
class Progress:
    """How far a verification has come (handed to the progress callback)."""

    blobs_done: int = 0
    blobs_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def gb_per_s(self) -> float:
        s = self.seconds
        return self.bytes_done / s / 1e9 if s > 0 else 0.0


@dataclass(slots=True)
class Report:
    """What ``verify`` found."""

    root: str
    runs: int = 0
    records: int = 0
    inline: int = 0
    progress: Progress = field(default_factory=Progress)
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def count(self, problem: Problem) -> int:
        return sum(1 for f in self.findings if f.problem is problem)

    def as_dict(self) -> dict[str, Any]:
        p = self.progress
        return {"root": self.root, "ok": self.ok, "runs": self.runs, "records": self.records,
                "inline_artifacts": self.inline, "blobs": p.blobs_done, "bytes": p.bytes_done,
                "seconds": round(p.seconds, 6), "gb_per_s": round(p.gb_per_s, 3),
                "problems": [f.as_dict() for f in self.findings]}


@dataclass(frozen=True, slots=True)
class Scope:
    """Which runs to verify: every run (both empty), or the union of whole flows and single runs."""

    flows: tuple[str, ...] = ()
    runs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, flows: Iterable[str] = (), runs: Iterable[str] = ()) -> Scope:
        """A scope from ``--flow F`` and ``--run FLOW/RUN`` values; a bad pathspec is a user error."""
        pairs = []
        for spec in runs:
            parts = spec.strip("/").split("/")
            if len(parts) != 2 or not all(parts):
                raise HeadwaterInvalidPathspec(f"--run expects FLOW/RUN_ID, got {spec!r}.",
                                               hint="For example: headwater verify --run HelloFlow/1763841234567890.")
            pairs.append((parts[0], parts[1]))
        return cls(tuple(flows), tuple(pairs))

    @property
    def everything(self) -> bool:
        return not self.flows and not self.runs


def verify(objects: ObjectStore, scope: Scope = Scope(), *, quarantine: bool = False, workers: int | None = None,
           on_progress: Callable[[Progress], None] | None = None) -> Report:
    """Check every object that the records in ``scope`` name.

    Parameters
    ----------
    objects : ObjectStore
        The datastore's object store.
    scope : Scope
        The runs whose records are walked; with the whole store in scope, blobs no
        record names are checked too (a later save would reuse a damaged one).
    quarantine : bool
        Move each damaged blob aside (``ObjectStore.quarantine``), so the next save of
        its value stores it again.
    workers : int, optional
        Blobs checked at once (default: 4 locally, 16 on a remote store).
    on_progress : callable, optional
        Called with the ``Progress`` after each blob (from worker threads, one at a time).

    Returns
    -------
    Report
        Counts and one ``Finding`` per damaged, missing or unreadable object.

    Raises
    ------
    HeadwaterNotFound
        A flow or run in ``scope`` has no records.
    """
    report = Report(objects.url)
    refs: dict[str, list[Reference]] = {}
    sizes: dict[str, int] = {}
    for prefix in _prefixes(objects, scope):
        _walk_records(objects, prefix, report, refs, sizes)
    if scope.everything:
        for bkey in objects.iter_keys("blobs"):
            key = bkey.rpartition("/")[2]
            refs.setdefault(key, [])
    if workers is None:
        workers = LOCAL_WORKERS if isinstance(objects, LocalObjectStore) else REMOTE_WORKERS
    _check_blobs(objects, refs, sizes, report, quarantine=quarantine, workers=workers, on_progress=on_progress)
    report.findings.sort(key=lambda f: (f.problem.value, f.object))
    return report


def _prefixes(objects: ObjectStore, scope: Scope) -> list[str]:
    """The ``runs/...`` prefixes to walk; a flow or run with no records is a user error."""
    if scope.everything:
        return ["runs"]
    flows = objects.list_dir("runs")
    out = []
    for flow in scope.flows:
        if flow not in flows:
            raise HeadwaterNotFound(f"Flow '{flow}' has no runs in the datastore {objects.url}.",
                                    hint=_known("Flows in this datastore", flows))
        out.append(f"runs/{flow}")
    for flow, run_id in scope.runs:
        if flow in scope.flows:
            continue  # already walked whole
        if not objects.exists(f"runs/{flow}/{run_id}/{RUN_FILE}") and not objects.list_dir(f"runs/{flow}/{run_id}"):
            if flow not in flows:
                hint = _known("Flows in this datastore", flows)
            else:
                runs = [r for r in objects.list_dir(f"runs/{flow}") if r.isdigit()]
                hint = _known(f"Latest runs of {flow}", runs[-5:][::-1])
            raise HeadwaterNotFound(f"Run '{flow}/{run_id}' does not exist in the datastore {objects.url}.", hint=hint)
        out.append(f"runs/{flow}/{run_id}")
    return out


def _known(what: str, names: list[str]) -> str:
    return f"{what}: {', '.join(names)}." if names else "The datastore holds no runs yet."


def _walk_records(objects: ObjectStore, prefix: str, report: Report, refs: dict[str, list[Reference]],
                  sizes: dict[str, int]) -> None:
    """Read every run and attempt record under ``prefix`` and note what each one names."""
    keys = []
    for key in objects.iter_keys(prefix):
        parts = key.split("/")
        if len(parts) == 4 and parts[3] == RUN_FILE:
            keys.append((key, parts, True))
        elif len(parts) == 6 and parts[3] != TAGS_DIR and _ATTEMPT.fullmatch(parts[5]):
            keys.append((key, parts, False))

    records = RecordStore(objects)

    def read(item: tuple[str, list[str], bool]) -> tuple[str, list[str], bool, Any]:
        key, parts, is_run = item
        try:
            return key, parts, is_run, records.read_key(key)
        except KeyError:
            return key, parts, is_run, None  # removed since it was listed (gc, delete)
        except DamagedRecordError as e:
            return key, parts, is_run, e

    workers = LOCAL_WORKERS if isinstance(objects, LocalObjectStore) else REMOTE_WORKERS
    with ThreadPoolExecutor(workers, thread_name_prefix="hw-verify-rec") as pool:
        for key, parts, is_run, rec in pool.map(read, keys):
            if rec is None:
                continue
            report.records += 1
            flow, run_id = parts[1], parts[2]
            if is_run:
                report.runs += 1
            if isinstance(rec, DamagedRecordError):
                where = Reference(flow, run_id) if is_run else Reference(flow, run_id, parts[3], parts[4],
                                                                          int(parts[5].split(".")[0]))
                report.findings.append(Finding(Problem.DAMAGED_RECORD, key, key, rec.message, [where]))
                continue
            if is_run:
                package = rec.get("code_package")
                if isinstance(package, dict) and isinstance(package.get("ref"), dict):
                    _note(package["ref"], Reference(flow, run_id, artifact=_CODE_PACKAGE), report, refs, sizes)
                continue
            where = Reference(flow, run_id, parts[3], parts[4], int(parts[5].split(".")[0]))
            for name, ref in (rec.get("artifacts") or {}).items():
                if isinstance(ref, dict):
                    _note(ref, _at(where, name), report, refs, sizes)
            table = rec.get("foreach_items")
            if isinstance(table, dict) and "key" in table:
                _note({"key": table["key"], "size": table.get("size", 0)},
                      _at(where, _ITEM_TABLE.format(table.get("var"))), report, refs, sizes)


def _at(where: Reference, artifact: str) -> Reference:
    return Reference(where.flow, where.run_id, where.step, where.task_id, where.attempt, artifact)


def _note(ref: dict[str, Any], where: Reference, report: Report, refs: dict[str, list[Reference]],
          sizes: dict[str, int]) -> None:
    """Record that ``where`` names ``ref``; an inline artifact is checked on the spot (it is tiny)."""
    key = ref.get("key")
    if not isinstance(key, str):
        return
    inline = ref.get("inline")
    if inline is None:
        refs.setdefault(key, []).append(where)
        sizes[key] = int(ref.get("size") or 0)
        return
    report.inline += 1
    try:
        data = base64.b64decode(inline)
        good = _key(data, (), len(data)) == key
    except ValueError:
        good = False
    if not good:
        report.findings.append(Finding(Problem.DAMAGED, key, _record_key(where),
                                       "an inline artifact in its record does not match its key", [where]))


def _record_key(where: Reference) -> str:
    """The key of the record that holds ``where``."""
    if where.step is None:
        return f"runs/{where.flow}/{where.run_id}/{RUN_FILE}"
    return f"runs/{where.flow}/{where.run_id}/{where.step}/{where.task_id}/{where.attempt}.json"


def _check_blobs(objects: ObjectStore, refs: dict[str, list[Reference]], sizes: dict[str, int], report: Report, *,
                 quarantine: bool, workers: int, on_progress: Callable[[Progress], None] | None) -> None:
    progress = report.progress
    progress.blobs_total = len(refs)
    progress.bytes_total = sum(sizes.values())
    lock = threading.Lock()

    def check(key: str) -> Finding | None:
        bkey = blob_key(key)
        finding: Finding | None = None
        hashed = 0
        try:
            source = open_source(objects, bkey)
        except KeyError:
            finding = Finding(Problem.MISSING, key, bkey, "the store does not hold it")
        else:
            try:
                hashed = verify_source(source, key, workers=max(1, 8 // workers))
            except DataCorruptionError as e:
                finding = Finding(Problem.DAMAGED, key, bkey, _reason(e))
                if quarantine:
                    finding.quarantined = objects.quarantine(bkey, only=source.file)
            except UnsupportedBlobError as e:
                finding = Finding(Problem.UNREADABLE, key, bkey, _reason(e))
            finally:
                source.close()
        with lock:
            progress.blobs_done += 1
            progress.bytes_done += hashed
            if on_progress is not None:
                on_progress(progress)
        return finding

    # Largest first: one huge blob started last would leave every other worker idle at the end.
    order = sorted(refs, key=lambda k: sizes.get(k, 0), reverse=True)
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="hw-verify") as pool:
        for key, finding in zip(order, pool.map(check, order)):
            if finding is not None:
                finding.references = sorted(refs[key], key=lambda r: (r.flow, r.run_id, r.step or "",
                                                                      r.task_id or "", r.attempt or 0,
                                                                      r.artifact or ""))
                report.findings.append(finding)


def _reason(e: Exception) -> str:
    """The "why" of a codec error: its message after "is corrupt:" or "cannot be read ...:"."""
    text = getattr(e, "message", None) or str(e)
    for marker in (" is corrupt: ", " by this version of headwater: "):
        if marker in text:
            text = text.split(marker, 1)[1]
    return text.removesuffix(" The store is corrupt.").rstrip(".")


__all__ = ["Finding", "Problem", "Progress", "Reference", "Report", "Scope", "verify"]
