"""RecordStore: run, run-end and attempt records, listings, latest attempt."""

from __future__ import annotations

import json

import pytest

from headwater.store import LocalObjectStore, RecordStore


@pytest.fixture
def rs(tmp_path) -> RecordStore:
    return RecordStore(LocalObjectStore(tmp_path))


def _run(flow: str = "F", run_id: str = "100", **kw) -> dict:
    rec = {"version": 1, "flow": flow, "run_id": run_id, "user": "alice", "tags": ["t"],
           "system_tags": ["user:alice"], "created_at": 1.0, "start_step": "start", "end_step": "end",
           "parameters": [], "origin_run_id": None, "pid": 1, "host": "h", "script": "/f.py"}  # fmt: skip
    rec.update(kw)
    return rec


def _attempt(step: str, task_id: str, attempt: int = 0, status: str = "ok", **kw) -> dict:
    rec = {"version": 1, "flow": "F", "run_id": "100", "step": step, "task_id": task_id,
           "attempt": attempt, "status": status, "started_at": 2.0, "finished_at": 3.0,
           "input_paths": [], "artifacts": {}, "exception": None, "metadata": {}}  # fmt: skip
    rec.update(kw)
    return rec


def test_keys() -> None:
    assert RecordStore.run_key("F", "1") == "runs/F/1/_run.json"
    assert RecordStore.run_end_key("F", "1") == "runs/F/1/_run_end.json"
    assert RecordStore.attempt_key("F", "1", "s", "3", 2) == "runs/F/1/s/3/2.json"
    assert RecordStore.log_key("F", "1", "s", "3", 2, "stderr") == "runs/F/1/s/3/2.stderr"
    with pytest.raises(ValueError, match="Unknown log stream 'stdin'"):
        RecordStore.log_key("F", "1", "s", "3", 2, "stdin")


def test_run_records(rs: RecordStore) -> None:
    rec = _run()
    assert rs.write_run(rec)
    assert rs.read_run("F", "100") == rec
    assert rs.write_run(_run(user="mallory")) is False  # records are never rewritten
    assert rs.read_run("F", "100")["user"] == "alice"
    with pytest.raises(KeyError, match="_run.json"):
        rs.read_run("F", "999")
    assert rs.read_run_end("F", "100") is None
    end = {"status": "failed", "finished_at": 5.0, "failed": [{"step": "a", "task_id": "7"}]}
    assert rs.write_run_end("F", "100", end)
    assert rs.read_run_end("F", "100") == end


def test_attempt_records_are_compact(rs: RecordStore) -> None:
    rec = _attempt("start", "1", artifacts={"x": {"key": "k", "size": 5, "type": "builtins.int"}})
    assert rs.write_attempt(rec)
    assert rs.read_attempt("F", "100", "start", "1", 0) == rec
    raw = rs.objects.get("runs/F/100/start/1/0.json")
    assert b" " not in raw and json.loads(raw) == rec
    with pytest.raises(KeyError):
        rs.read_attempt("F", "100", "start", "1", 1)


def test_attempts_and_latest(rs: RecordStore) -> None:
    assert rs.attempts("F", "100", "a", "1") == []
    assert rs.latest_attempt("F", "100", "a", "1") is None
    for n in (0, 1, 2, 10):
        rs.write_attempt(_attempt("a", "1", n, status="failed" if n < 10 else "ok"))
    rs.objects.put(RecordStore.log_key("F", "100", "a", "1", 11, "stdout"), b"running, not committed")
    assert rs.attempts("F", "100", "a", "1") == [0, 1, 2, 10]
    latest = rs.latest_attempt("F", "100", "a", "1")
    assert latest is not None and latest["attempt"] == 10 and latest["status"] == "ok"


def test_listings(rs: RecordStore) -> None:
    rs.write_run(_run("F", "9"))
    rs.write_run(_run("F", "10"))
    rs.write_run(_run("G", "1"))
    rs.write_run_end("F", "10", {"status": "successful", "finished_at": 2.0, "failed": []})
    for step, task in [("_parameters", "0"), ("start", "1"), ("a", "2"), ("a", "10"), ("a", "3")]:
        rs.write_attempt(_attempt(step, task, run_id="10"))
    assert rs.flows() == ["F", "G"]
    assert rs.runs("F") == ["9", "10"]
    assert rs.steps("F", "10") == ["_parameters", "a", "start"]
    assert rs.tasks("F", "10", "a") == ["2", "3", "10"]
    assert rs.runs("Nope") == [] and rs.steps("F", "404") == [] and rs.tasks("F", "10", "zz") == []


def test_logs(rs: RecordStore) -> None:
    assert rs.read_log("F", "1", "s", "1", 0, "stdout") == b""
    rs.objects.put(RecordStore.log_key("F", "1", "s", "1", 0, "stderr"), b"oops\n")
    assert rs.read_log("F", "1", "s", "1", 0, "stderr") == b"oops\n"


def test_tag_events_append_in_order_and_replay(rs: RecordStore) -> None:
    rs.write_run(_run(tags=["a", "b"]))
    assert rs.read_tag_events("F", "100") == []
    assert rs.current_tags("F", "100") == ["a", "b"]
    rs.write_tag_event("F", "100", {"add": ["c"], "remove": ["a"], "at": 1.0, "user": "u"})
    rs.write_tag_event("F", "100", {"add": ["a"], "remove": [], "at": 2.0, "user": "u"})
    events = rs.read_tag_events("F", "100")
    assert [e["at"] for e in events] == [1.0, 2.0]
    assert rs.current_tags("F", "100") == ["b", "c", "a"]
    names = rs.objects.list_dir("runs/F/100/_tags")
    assert len(names) == 2 and names == sorted(names) and all(n.endswith(".json") for n in names)


def test_tags_dir_is_not_a_step(rs: RecordStore) -> None:
    rs.write_run(_run())
    rs.write_tag_event("F", "100", {"add": ["x"], "remove": [], "at": 1.0, "user": "u"})
    assert rs.steps("F", "100") == []


def test_replay_removes_then_adds() -> None:
    from headwater.store.records import replay_tags

    assert replay_tags(["a"], [{"remove": ["a"], "add": ["a", "b"]}]) == ["a", "b"]
    assert replay_tags(["a", "b"], [{"remove": ["zz"], "add": ["b"]}]) == ["a", "b"]
    assert replay_tags([], []) == []
