"""The run catalog's store side: segment names, tag marks, and the listing of a flow's
runs past a point (docs/index-sync.md); iter_keys with start_after on the local store."""

from __future__ import annotations

import json

from headwater.store import LocalObjectStore, RecordStore
from headwater.store.catalog import (Catalog, after_run_key, is_time_run_id, parse_segment_name, run_id_at,
                                     scan_runs, segment_key)


def test_run_ids_are_time_ordered_strings() -> None:
    a, b = run_id_at(1_700_000_000.0), run_id_at(1_700_000_000.000001)
    assert (a, is_time_run_id(a), a < b) == ("1700000000000000", True, True)
    assert not is_time_run_id("argo-123") and not is_time_run_id("17")
    assert parse_segment_name("1700000000000000-1700000000000009.json") == (a, "1700000000000009")
    assert parse_segment_name("1700000000000009-1700000000000000.json") is None  # backwards
    assert parse_segment_name("x-y.json") is None and parse_segment_name(f"{a}-{a}.tmp") is None
    assert segment_key("F", a, a) == f"catalog/F/{a}-{a}.json"


def test_iter_keys_default_is_recursive_sorted_and_starts_after(tmp_path) -> None:
    store = LocalObjectStore(tmp_path)
    for key in ["runs/F/2/_run.json", "runs/F/1/start/1/0.json", "runs/F/1/_run.json", "runs/G/1/_run.json"]:
        store.put(key, b"{}")
    assert list(store.iter_keys("runs/F")) == ["runs/F/1/_run.json", "runs/F/1/start/1/0.json",
                                               "runs/F/2/_run.json"]  # fmt: skip
    assert list(store.iter_keys("runs/F/", start_after=after_run_key("F", "1"))) == ["runs/F/2/_run.json"]
    assert list(store.iter_keys("nothing")) == []


def test_scan_sees_runs_their_end_records_and_tag_marks(tmp_path) -> None:
    records = RecordStore(LocalObjectStore(tmp_path))
    ids = [run_id_at(1_700_000_000.0 + i) for i in range(3)]
    for run_id in ids:
        records.write_run({"flow": "F", "run_id": run_id, "created_at": 1.0})
    records.write_run_end("F", ids[0], {"status": "successful"})
    records.write_attempt({"flow": "F", "run_id": "orphan", "step": "s", "task_id": "1", "attempt": 0})
    records.write_tag_event("F", ids[1], {"add": ["x"]})
    listing = scan_runs(records.objects, "F")
    assert listing.runs[ids[0]] == {"_run.json", "_run_end.json"} and listing.runs["orphan"] == set()
    [(stamp, run_id, event)] = listing.tag_marks
    assert run_id == ids[1] and is_time_run_id(stamp)
    assert [n for n, _ in records.read_named_tag_events("F", ids[1])] == [event]
    assert records.runs("F") == [*ids, "orphan"]  # a tag mark is not a run
    assert sorted(scan_runs(records.objects, "F", after=ids[1]).runs) == [ids[2], "orphan"]


def test_segments_are_create_only_and_listed_past_a_point(tmp_path) -> None:
    catalog = Catalog(LocalObjectStore(tmp_path))
    rows = [{"run_id": run_id_at(1_700_000_000.0 + i), "status": "successful"} for i in range(4)]
    assert catalog.write_segment("F", rows[:2], {})
    assert not catalog.write_segment("F", rows[:2], {"x": ["changed"]})  # the first stays
    assert catalog.write_segment("F", rows[2:], {rows[0]["run_id"]: ["t"]})
    spans = catalog.segments("F")
    assert spans == [(rows[0]["run_id"], rows[1]["run_id"]), (rows[2]["run_id"], rows[3]["run_id"])]
    assert catalog.segments("F", after=rows[1]["run_id"]) == spans[1:]
    seg = catalog.read_segment("F", *spans[0])
    assert seg["runs"] == rows[:2] and seg["tags"] == {}
    assert json.loads(catalog.objects.get(segment_key("F", *spans[1])))["tags"] == {rows[0]["run_id"]: ["t"]}
