"""Run and attempt records (storage layer, internal): the store's source of truth.

Layout (docs/internals.md): ``runs/<Flow>/<run_id>/_run.json``, ``_run_end.json``
and ``<step>/<task_id>/<attempt>.json`` (+ ``.stdout``/``.stderr`` logs). Tag events
live in ``runs/<Flow>/<run_id>/_tags/``, each preceded by a tag mark in
``runs/<Flow>/<time>.tags/`` (store/catalog.py, docs/index-sync.md).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..exceptions import DataCorruptionError
from .catalog import TAG_MARK_SUFFIX, Catalog
from .full import StoreFullError
from .objects import ObjectStore

RUN_FILE = "_run.json"
RUN_END_FILE = "_run_end.json"
#: Directory of a run's tag events (``runs/<Flow>/<run>/_tags/``); not a step.
TAGS_DIR = "_tags"
#: ``status`` of an attempt whose record is damaged (in index rows and placeholder records).
DAMAGED = "damaged"
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class DamagedRecordError(DataCorruptionError, ValueError):
    """A run or attempt record exists but is not readable JSON (truncated or overwritten).

    A ``ValueError`` too, so code that skips unreadable records keeps doing so.
    """

    headline = "Damaged record in the store"


def _loads(data: bytes, store: ObjectStore, key: str) -> dict[str, Any]:
    """A record's JSON object; ``DamagedRecordError`` naming ``key`` if it is not one."""
    try:
        rec = json.loads(data)
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        why = f"it is not valid JSON ({e})"
    else:
        if isinstance(rec, dict):
            return rec
        why = f"it holds a JSON {type(rec).__name__}, not an object"
    raise DamagedRecordError(
        f"The record {key} in {store.url} is damaged ({len(data)} bytes): {why}.",
        hint="A process was killed or the disk filled while it was written, or the file was edited. "
        "Re-run (or resume) the run: a damaged attempt counts as not done. Delete the file to let "
        "`headwater reindex` forget it.",
    )


def damaged_attempt(error: DamagedRecordError) -> dict[str, Any]:
    """A stand-in for an attempt record that cannot be read: not ok, no artifacts, and an
    ``exception`` that names the damage, so every reader shows it as damaged."""
    return {"status": DAMAGED, "artifacts": {}, "damaged": error.message,
            "exception": {"type": f"{__name__}.DamagedRecordError", "message": error.message, "traceback": ""}}


def unsafe_component(part: str) -> str | None:
    """Why ``part`` cannot name anything in the store (``'.'``, ``'..'``, a NUL byte), or ``None``.

    Such a component would otherwise reach the filesystem as a path and fail there
    with a ``ValueError``; no flow, run, step, task or artifact can carry it.
    """
    if part in (".", ".."):
        return "is a relative path, not a name"
    if "\x00" in part:
        return "contains a NUL byte"
    return None


def _numeric_order(name: str) -> tuple[int, int, str]:
    # Task ids and attempts are decimal strings: "10" sorts after "9".
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


class RecordStore:
    """Reads and writes the JSON records of runs and task attempts.

    Records are written once (create-only); a write that finds the record
    already there returns ``False`` and changes nothing.

    Parameters
    ----------
    objects : ObjectStore
        The store the records live in.
    """

    def __init__(self, objects: ObjectStore):
        self.objects = objects

    def _put(self, key: str, rec: dict[str, Any], what: str) -> bool:
        try:
            return self.objects.put(key, _dumps(rec).encode())
        except StoreFullError as e:
            raise StoreFullError(e.root, what) from None

    # -- keys ------------------------------------------------------------------

    @staticmethod
    def run_key(flow: str, run_id: str) -> str:
        return f"runs/{flow}/{run_id}/{RUN_FILE}"

    @staticmethod
    def run_end_key(flow: str, run_id: str) -> str:
        return f"runs/{flow}/{run_id}/{RUN_END_FILE}"

    @staticmethod
    def attempt_key(flow: str, run_id: str, step: str, task_id: str, attempt: int) -> str:
        return f"runs/{flow}/{run_id}/{step}/{task_id}/{attempt}.json"

    @staticmethod
    def tags_dir(flow: str, run_id: str) -> str:
        return f"runs/{flow}/{run_id}/{TAGS_DIR}"

    @staticmethod
    def log_key(flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> str:
        if stream != "stdout" and stream != "stderr":
            raise ValueError(f"Unknown log stream {stream!r}: expected 'stdout' or 'stderr'.")
        return f"runs/{flow}/{run_id}/{step}/{task_id}/{attempt}.{stream}"

    def read_key(self, key: str) -> dict[str, Any]:
        """The record stored under the object key ``key`` (a run, end or attempt record, found
        by a listing); ``KeyError`` if missing, ``DamagedRecordError`` if unreadable."""
        return _loads(self.objects.get(key), self.objects, key)

    # -- runs ------------------------------------------------------------------

    def write_run(self, rec: dict[str, Any]) -> bool:
        """Write the run record (``rec`` names its ``flow`` and ``run_id``)."""
        return self._put(self.run_key(rec["flow"], rec["run_id"]), rec, f"the run record of {rec['flow']}/{rec['run_id']}")

    def read_run(self, flow: str, run_id: str) -> dict[str, Any]:
        """The run record; ``KeyError`` if the run has none, ``DamagedRecordError`` if unreadable."""
        key = self.run_key(flow, run_id)
        return _loads(self.objects.get(key), self.objects, key)

    def write_run_end(self, flow: str, run_id: str, rec: dict[str, Any]) -> bool:
        """Write the run end record (``status``, ``finished_at``, ``failed``)."""
        return self._put(self.run_end_key(flow, run_id), rec, f"the end record of run {flow}/{run_id}")

    def read_run_end(self, flow: str, run_id: str) -> dict[str, Any] | None:
        """The run end record, or ``None`` while the run has not ended."""
        key = self.run_end_key(flow, run_id)
        try:
            data = self.objects.get(key)
        except KeyError:
            return None
        return _loads(data, self.objects, key)

    # -- tag events ------------------------------------------------------------

    def write_tag_event(self, flow: str, run_id: str, event: dict[str, Any]) -> None:
        """Append one tag mutation (``add``, ``remove``, ``at``, ``user``) to a run.

        Records are never rewritten, so tags change by events: each is a new
        object ``_tags/<time_ns>-<random hex>.json``, and the name order is the
        order they apply in (the random part keeps two writers apart).
        """
        name = f"{time.time_ns():020d}-{secrets.token_hex(6)}.json"
        # The mark first: a reader that sees it re-reads the run's events, and it is never
        # missing for an event that exists (docs/index-sync.md).
        Catalog(self.objects).write_tag_mark(flow, run_id, name)
        if not self.objects.put(f"{self.tags_dir(flow, run_id)}/{name}", _dumps(event).encode()):
            raise FileExistsError(f"Tag event {name} of {flow}/{run_id} already exists.")

    def read_tag_events(self, flow: str, run_id: str) -> list[dict[str, Any]]:
        """A run's tag events, in the order they apply (``[]`` if none)."""
        return [event for _, event in self.read_named_tag_events(flow, run_id)]

    def read_named_tag_events(self, flow: str, run_id: str) -> list[tuple[str, dict[str, Any]]]:
        """A run's tag events with their object names, in the order they apply."""
        base = self.tags_dir(flow, run_id)
        out = []
        for name in self.objects.list_dir(base):
            if name.endswith(".json"):
                key = f"{base}/{name}"
                try:
                    out.append((name, _loads(self.objects.get(key), self.objects, key)))
                except (KeyError, DamagedRecordError):  # removed while listing (gc), or torn
                    continue
        return out

    def current_tags(self, flow: str, run_id: str, rec: dict[str, Any] | None = None) -> list[str]:
        """A run's user tags now: its record's tags with every tag event applied."""
        if rec is None:
            rec = self.read_run(flow, run_id)
        return replay_tags(rec.get("tags") or (), self.read_tag_events(flow, run_id))

    # -- attempts --------------------------------------------------------------

    def write_attempt(self, rec: dict[str, Any]) -> bool:
        """Commit an attempt: its record becomes visible atomically, or not at all."""
        key = self.attempt_key(rec["flow"], rec["run_id"], rec["step"], rec["task_id"], rec["attempt"])
        what = f"the record of task {rec['flow']}/{rec['run_id']}/{rec['step']}/{rec['task_id']} attempt {rec['attempt']}"
        return self._put(key, rec, what)

    def read_attempt(self, flow: str, run_id: str, step: str, task_id: str, attempt: int) -> dict[str, Any]:
        """One attempt record; ``KeyError`` if that attempt was never committed,
        ``DamagedRecordError`` if its record cannot be read."""
        key = self.attempt_key(flow, run_id, step, task_id, attempt)
        return _loads(self.objects.get(key), self.objects, key)

    def attempts(self, flow: str, run_id: str, step: str, task_id: str) -> list[int]:
        """Numbers of the committed attempts of a task, ascending."""
        out = []
        for name in self.objects.list_dir(f"runs/{flow}/{run_id}/{step}/{task_id}"):
            stem, dot, ext = name.partition(".")
            if ext == "json" and stem.isdigit():
                out.append(int(stem))
        out.sort()
        return out

    def latest_attempt(self, flow: str, run_id: str, step: str, task_id: str) -> dict[str, Any] | None:
        """The highest-numbered committed attempt record of a task, or ``None``."""
        nums = self.attempts(flow, run_id, step, task_id)
        return self.read_attempt(flow, run_id, step, task_id, nums[-1]) if nums else None

    # -- listings --------------------------------------------------------------

    def flows(self) -> list[str]:
        return self.objects.list_dir("runs")

    def runs(self, flow: str) -> list[str]:
        names = self.objects.list_dir(f"runs/{flow}")
        return sorted((n for n in names if not n.endswith(TAG_MARK_SUFFIX)), key=_numeric_order)

    def steps(self, flow: str, run_id: str) -> list[str]:
        """Step directories of a run, including ``_parameters`` (not ``_tags``)."""
        return [n for n in self.objects.list_dir(f"runs/{flow}/{run_id}") if "." not in n and n != TAGS_DIR]

    def tasks(self, flow: str, run_id: str, step: str) -> list[str]:
        """Task ids of a step, in numeric order."""
        return sorted(self.objects.list_dir(f"runs/{flow}/{run_id}/{step}"), key=_numeric_order)

    def read_log(self, flow: str, run_id: str, step: str, task_id: str, attempt: int, stream: str) -> bytes:
        """A log's bytes so far (``b""`` if the attempt wrote none): the complete log once
        the task has ended, else what has been shipped (``store.logsink``)."""
        from .logsink import read_log

        return read_log(self.objects, self.log_key(flow, run_id, step, task_id, attempt, stream))


def replay_tags(initial: Iterable[str], events: Sequence[dict[str, Any]]) -> list[str]:
    """User tags after applying tag ``events`` in order to ``initial``.

    Within one event the removals apply first, then the additions (so a
    ``replace`` of a tag by itself keeps it). Order is kept: first added first.
    """
    tags = dict.fromkeys(initial)
    for ev in events:
        for t in ev.get("remove") or ():
            tags.pop(t, None)
        for t in ev.get("add") or ():
            tags.setdefault(t, None)
    return list(tags)
