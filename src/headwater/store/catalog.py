"""The run catalog (storage layer, internal): what a reader with an empty cache needs
to learn a flow's runs in a few requests instead of one per run.

Two kinds of objects, both create-only and never rewritten (docs/index-sync.md):

``catalog/<Flow>/<first>-<last>.json``
    A segment: the index row of every run of the flow whose id is in ``first..last``
    (inclusive), as the compacting reader knew it, plus the current user tags of the
    runs whose tags changed in that range.
``runs/<Flow>/<time>.tags/<run_id>/<event>``
    A tag mark, written just before a run's tag event: it makes a tag change show up
    in the one listing of ``runs/<Flow>/`` a syncing reader makes anyway, in time order
    among the new runs (``<time>`` has the form of a run id).

Run ids made by ``new_run_id`` are 16 decimal digits (microseconds since the epoch),
so they sort as strings in time order; the catalog and incremental sync rely on that
and treat any other id (an orchestrator's) as always new.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .objects import ObjectStore

CATALOG_DIR = "catalog"
#: Ending of the directory name of a tag mark in ``runs/<Flow>/``; never a run id.
TAG_MARK_SUFFIX = ".tags"
#: Digits of a time-ordered run id (microseconds since the epoch, until the year 2286).
RUN_ID_DIGITS = 16
#: A reader that has listed this many keys of one run in a row skips the rest of the run
#: with a new listing: a run with 10,000 tasks costs one request, not ten pages.
SKIP_RUN_AFTER_KEYS = 64
#: Sorts after every key of a run directory (keys hold names, digits, ``.``, ``-``, ``_``).
_AFTER_RUN = "~"
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def is_time_run_id(run_id: str) -> bool:
    """Whether ``run_id`` is time-ordered (16 digits), as ``new_run_id`` makes them."""
    return len(run_id) == RUN_ID_DIGITS and run_id.isdigit()


def run_id_at(seconds: float) -> str:
    """The time-ordered run id of the instant ``seconds`` (since the epoch)."""
    return f"{int(seconds * 1e6):0{RUN_ID_DIGITS}d}"


def after_run_key(flow: str, run_id: str) -> str:
    """A ``start_after`` that lists the keys of ``runs/<flow>/`` past every key of ``run_id``."""
    return f"runs/{flow}/{run_id}/{_AFTER_RUN}"


def segment_key(flow: str, first: str, last: str) -> str:
    return f"{CATALOG_DIR}/{flow}/{first}-{last}.json"


def parse_segment_name(name: str) -> tuple[str, str] | None:
    """``(first, last)`` of a segment's file name, or ``None`` if it is not one."""
    stem, dot, ext = name.partition(".")
    first, dash, last = stem.partition("-")
    if ext != "json" or not dash or not is_time_run_id(first) or not is_time_run_id(last) or first > last:
        return None
    return first, last


def tag_mark_key(flow: str, run_id: str, event_name: str, at: float | None = None) -> str:
    stamp = run_id_at(time.time() if at is None else at)
    return f"runs/{flow}/{stamp}{TAG_MARK_SUFFIX}/{run_id}/{event_name}"


@dataclass
class Listing:
    """What one listing of ``runs/<Flow>/`` past a point found.

    ``runs`` maps each run id seen to the names of its top-level record keys seen
    (``_run.json``, ``_run_end.json``); ``partial`` holds the runs whose keys were
    skipped in part (their end record may exist unseen); ``tag_marks`` holds each tag
    mark seen as ``(time, run id, event name)``.
    """

    runs: dict[str, set[str]] = field(default_factory=dict)
    partial: set[str] = field(default_factory=set)
    tag_marks: list[tuple[str, str, str]] = field(default_factory=list)


def scan_runs(objects: ObjectStore, flow: str, after: str = "") -> Listing:
    """List ``runs/<flow>/`` past run id ``after`` (every run if ``""``): new runs and tag marks.

    Keys come in order, a page at a time. After ``SKIP_RUN_AFTER_KEYS`` keys of one
    run the listing restarts past that run, so a large run costs one request.
    """
    out = Listing()
    prefix = f"runs/{flow}/"
    start = after_run_key(flow, after) if after else None
    while True:
        restart = None
        current, count = "", 0
        keys: Iterator[str] = objects.iter_keys(prefix, start_after=start)
        for key in keys:
            parts = key[len(prefix):].split("/")
            if len(parts) < 2:
                continue  # a stray object directly under the flow
            top = parts[0]
            if top.endswith(TAG_MARK_SUFFIX):
                if len(parts) == 3:
                    out.tag_marks.append((top[: -len(TAG_MARK_SUFFIX)], parts[1], parts[2]))
                continue
            seen = out.runs.setdefault(top, set())
            if len(parts) == 2:
                seen.add(parts[1])
            if top != current:
                current, count = top, 0
            count += 1
            if count >= SKIP_RUN_AFTER_KEYS:
                out.partial.add(top)
                restart = after_run_key(flow, top)
                break
        close = getattr(keys, "close", None)
        if close is not None:
            close()
        if restart is None:
            return out
        start = restart


class Catalog:
    """Reads and writes a store's catalog segments and tag marks.

    Parameters
    ----------
    objects : ObjectStore
        The store the catalog lives in (the records' store).
    """

    def __init__(self, objects: ObjectStore):
        self.objects = objects

    def segments(self, flow: str, after: str = "") -> list[tuple[str, str]]:
        """``(first, last)`` of the flow's segments that start after run id ``after``, in order."""
        prefix = f"{CATALOG_DIR}/{flow}/"
        start = f"{prefix}{after}-{_AFTER_RUN}" if after else None
        out = []
        for key in self.objects.iter_keys(prefix, start_after=start):
            span = parse_segment_name(key[len(prefix):])
            if span is not None:
                out.append(span)
        return out

    def read_segment(self, flow: str, first: str, last: str) -> dict[str, Any]:
        """A segment: ``{"runs": [row, ...], "tags": {run_id: [tag, ...]}}``; ``KeyError`` if absent."""
        seg = json.loads(self.objects.get(segment_key(flow, first, last)))
        if not isinstance(seg, dict) or not isinstance(seg.get("runs"), list):
            raise ValueError(f"catalog segment {segment_key(flow, first, last)} is not a segment")
        return seg

    def write_segment(self, flow: str, rows: list[dict[str, Any]], tags: dict[str, list[str]]) -> bool:
        """Write the segment of ``rows`` (every run of its range, sorted by id); ``False`` if
        another writer made the same one first (same runs, same name: nothing lost)."""
        first, last = rows[0]["run_id"], rows[-1]["run_id"]
        body = {"version": 1, "flow": flow, "first": first, "last": last, "runs": rows, "tags": tags}
        return self.objects.put(segment_key(flow, first, last), _dumps(body).encode())

    def write_tag_mark(self, flow: str, run_id: str, event_name: str) -> None:
        """Mark that ``run_id``'s tags change now (written before the event itself)."""
        self.objects.put(tag_mark_key(flow, run_id, event_name), b"")
