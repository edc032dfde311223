"""Task, task.data, DataArtifact: values, attempts, logs, lineage."""

from __future__ import annotations

from datetime import datetime

import pytest

from headwater.client import DataArtifact, Run, Step, Task, TaskData
from headwater.exceptions import HeadwaterInvalidPathspec, HeadwaterNotFound
from headwater.store import Datastore

from .conftest import BIG, ITEMS, make_run


@pytest.fixture
def retried(root):
    """HelloFlow/1000 where work/3 failed on attempt 0 and succeeded on attempt 1."""
    return make_run(root, retry=True)


def test_task_data_by_attribute(hello) -> None:
    task = Task("HelloFlow/1000/start/1")
    data = task.data
    assert isinstance(data, TaskData)
    assert data.alpha == 0.5 and data.items == ITEMS and data.name == "HelloFlow"
    assert data.blob == BIG  # a blob, not inline
    assert data._private == "secret"  # private names are readable ...
    assert "_private" not in dir(data) and "_graph_info" not in dir(data)  # ... but not listed
    assert dir(data) == ["alpha", "blob", "items", "name"]
    assert list(data) == ["alpha", "blob", "items", "name"]
    assert "alpha" in data and "_private" in data and "nope" not in data
    assert repr(data) == "<TaskData HelloFlow/1000/start/1: alpha, blob, items, name>"
    assert task.data is data  # one TaskData per task: values are loaded once
    msg = r"Task 'HelloFlow/1000/start/1' has no artifact 'nope': its artifacts are: alpha, blob"
    with pytest.raises(AttributeError, match=msg):
        data.nope


def test_task_artifacts(hello) -> None:
    task = Task("HelloFlow/1000/start/1")
    arts = task.artifacts
    assert arts._fields == ("alpha", "blob", "items", "name")
    assert arts.items == DataArtifact("HelloFlow/1000/start/1/items")
    assert arts.items.data == ITEMS
    assert [a.id for a in task] == ["alpha", "blob", "items", "name"]
    assert all(isinstance(a, DataArtifact) for a in task)
    assert task["items"].data == ITEMS
    assert task["_private"].data == "secret"
    assert "items" in task and "_private" in task and "nope" not in task and 3 not in task
    with pytest.raises(HeadwaterNotFound, match=r"DataArtifact 'HelloFlow/1000/start/1/nope' does not exist") as exc:
        task["nope"]
    assert isinstance(exc.value, KeyError)


def test_task_members(hello) -> None:
    task = Task("HelloFlow/1000/work/3")
    assert (task.id, task.pathspec) == ("3", "HelloFlow/1000/work/3")
    assert task.path_components == ["HelloFlow", "1000", "work", "3"]
    assert task.parent == Step("HelloFlow/1000/work")
    assert task.successful and task.finished and task.exception is None
    assert task.current_attempt == 0
    assert task.index == 1 and Task("HelloFlow/1000/work/2").index == 0
    assert Task("HelloFlow/1000/start/1").index is None
    assert isinstance(task.created_at, datetime) and task.finished_at > task.created_at
    assert task.stdout == "stdout of work/3 attempt 0\n"
    assert task.stderr == "stderr of work/3 attempt 0\n"
    assert task.stdout_size == len(task.stdout)
    facts = {"attempt": "0", "status": "ok", "attempt_ok": "True", "attempt-done": "0", "origin-run-id": "None",
             "ds-type": "local", "started_at": "1700000004.0", "finished_at": "1700000004.5",
             "foreach-stack": ["items='b'"]}  # fmt: skip
    assert facts.items() <= task.metadata_dict.items()
    assert Task("HelloFlow/1000/start/1").metadata_dict["runtime"] == "dev"
    assert task.origin_pathspec is None and task.code is None
    assert task.data.item == "b" and task.data.result == "bb"
    assert repr(task) == "Task('HelloFlow/1000/work/3')"


def test_task_lineage(hello) -> None:
    start = Task("HelloFlow/1000/start/1")
    assert list(start.parent_task_pathspecs) == []  # _parameters is not a parent
    assert list(start.child_task_pathspecs) == ["HelloFlow/1000/work/4", "HelloFlow/1000/work/3",
                                                "HelloFlow/1000/work/2"]  # fmt: skip
    join = Task("HelloFlow/1000/join/5")
    assert list(join.parent_task_pathspecs) == [f"HelloFlow/1000/work/{i}" for i in ("2", "3", "4")]
    assert list(join.parent_tasks) == [Task(f"HelloFlow/1000/work/{i}") for i in ("2", "3", "4")]
    assert list(join.child_tasks) == [Task("HelloFlow/1000/end/6")]
    assert list(Task("HelloFlow/1000/work/2").parent_tasks) == [start]


def test_unchanged_artifacts_pass_by_reference(hello) -> None:
    a = Task("HelloFlow/1000/start/1")["alpha"]
    b = Task("HelloFlow/1000/end/6")["alpha"]
    assert a.sha == b.sha and a.data == b.data == 0.5


def test_data_artifact_members(hello, root) -> None:
    art = DataArtifact("HelloFlow/1000/start/1/blob")
    rec = Datastore(root).records.read_attempt("HelloFlow", "1000", "start", "1", 0)
    assert art.data == BIG
    assert art.sha == rec["artifacts"]["blob"]["key"]
    assert art.size == rec["artifacts"]["blob"]["size"] > len(BIG)
    assert (art.id, art.pathspec) == ("blob", "HelloFlow/1000/start/1/blob")
    assert art.path_components == ["HelloFlow", "1000", "start", "1", "blob"]
    assert art.parent == Task("HelloFlow/1000/start/1")
    assert art.finished_at == art.created_at == Task("HelloFlow/1000/start/1").finished_at
    assert list(art) == [] and "x" not in art
    assert repr(art) == "DataArtifact('HelloFlow/1000/start/1/blob')"
    small = DataArtifact("HelloFlow/1000/start/1/_private")
    assert small.data == "secret" and small.size == rec["artifacts"]["_private"]["size"]


def test_latest_attempt_is_the_default(retried) -> None:
    task = Task("HelloFlow/1000/work/3")
    assert task.current_attempt == 1 and task.successful and task.exception is None
    assert task.data.item == "b"
    assert task.stdout == "stdout of work/3 attempt 1\n"
    assert task.metadata_dict["attempt_ok"] is True  # as recorded: wins over the derived fact
    assert task.metadata_dict["attempt"] == "1"
    assert Step("HelloFlow/1000/work")["3"].current_attempt == 1
    assert Run("HelloFlow/1000").successful


def test_a_failed_attempt(retried) -> None:
    task = Task("HelloFlow/1000/work/3", attempt=0)
    assert repr(task) == "Task('HelloFlow/1000/work/3', attempt=0)"
    assert task.current_attempt == 0
    assert not task.successful and not task.finished
    exc = task.exception
    assert (type(exc).__name__, exc.type, exc.message) == ("HeadwaterExceptionWrapper", "builtins.ValueError",
                                                           "boom in work")
    assert exc.exception == "boom in work" and "Traceback" in exc.stacktrace
    assert str(exc) == exc.stacktrace  # as Metaflow's wrapper
    assert task.stderr == "stderr of work/3 attempt 0\n"
    # This failed attempt set no artifacts (test_semantics covers one that did).
    assert list(task) == [] and task.artifacts == () and "item" not in task
    with pytest.raises(AttributeError, match=r"attempt 0 failed: ValueError: boom in work\)"):
        task.data.item
    with pytest.raises(HeadwaterNotFound, match=r"DataArtifact 'HelloFlow/1000/work/3/item' does not exist"):
        DataArtifact("HelloFlow/1000/work/3/item", attempt=0)
    assert DataArtifact("HelloFlow/1000/work/3/item", attempt=1).data == "b"
    assert DataArtifact("HelloFlow/1000/work/3/item").data == "b"


def test_attempt_argument_is_checked(retried) -> None:
    with pytest.raises(HeadwaterNotFound, match=r"Task 'HelloFlow/1000/work/3' has no attempt 5") as exc:
        Task("HelloFlow/1000/work/3", attempt=5)
    assert "Its attempts are: 0, 1" in str(exc.value)
    for bad in (-1, "1", 1.0, True):
        with pytest.raises(HeadwaterInvalidPathspec, match=r"attempt must be an int >= 0"):
            Task("HelloFlow/1000/work/3", attempt=bad)


def test_a_failed_task_in_a_failed_run(root) -> None:
    make_run(root, fail_at="end")
    task = Run("HelloFlow/1000").end_task
    assert task is not None and not task.successful and not task.finished
    assert task.exception.message == "boom in end"
    assert task.finished_at is not None
    with pytest.raises(AttributeError, match=r"its artifacts are: \(none\) \(attempt 0 failed: ValueError"):
        task.data.message


def test_a_running_task(root) -> None:
    make_run(root, running=True)
    task = Task("HelloFlow/1000/end/6")
    assert task.current_attempt == 0
    assert not task.successful and not task.finished and task.exception is None
    assert task.finished_at is None and task.created_at is not None
    assert task.stdout == "working...\n" and task.stderr == ""
    assert list(task) == [] and task.index is None and task.metadata_dict == {}
    with pytest.raises(AttributeError, match=r"attempt 0 has not finished yet"):
        task.data.message


def test_task_metadata_list(hello, root) -> None:
    from headwater.client import Metadata

    task = Task("HelloFlow/1000/start/1")
    meta = task.metadata
    assert all(isinstance(m, Metadata) and m.task is task for m in meta)
    by_name = {m.name: m for m in meta}
    assert [m.name for m in meta] == ["user", "python_version", "headwater_version", "script-name", "ds-type",
                                      "ds-root", "attempt", "origin-run-id", "runtime", "attempt_ok",
                                      "attempt-done", "status", "started_at", "finished_at"]  # fmt: skip
    assert by_name["script-name"].value == "flow.py" and by_name["origin-run-id"].value == "None"
    assert by_name["runtime"].value == "dev" and by_name["attempt_ok"].value == "True"
    assert by_name["attempt"].created_at == int(task.created_at.timestamp() * 1000)
    assert by_name["finished_at"].created_at == int(task.finished_at.timestamp() * 1000)
    assert by_name["attempt_ok"].type == "internal_attempt_status"
    assert task.metadata_dict == {m.name: m.value for m in meta}


def test_cloned_task_metadata(root) -> None:
    make_run(root)
    ds = Datastore(root)
    rec = ds.records.read_attempt("HelloFlow", "1000", "start", "1", 0)
    rec = {**rec, "attempt": 1, "metadata": {"origin_pathspec": "HelloFlow/900/start/7"}}
    ds.records.write_attempt(rec)
    task = Task("HelloFlow/1000/start/1")
    assert task.current_attempt == 1 and task.origin_pathspec == "HelloFlow/900/start/7"
    assert task.metadata_dict["origin-run-id"] == "900" and task.metadata_dict["origin-task-id"] == "7"
    assert Task("HelloFlow/1000/start/1", attempt=0).origin_pathspec is None


def test_running_task_has_no_metadata(root) -> None:
    make_run(root, running=True)
    task = Task("HelloFlow/1000/end/6")
    assert task.metadata == [] and task.metadata_dict == {}
    assert list(task.loglines("stdout")) == [(None, "working...")]


def test_a_record_wins_over_a_stale_running_row(root) -> None:
    # A task that committed after its run process died: the index row still says "running".
    make_run(root, running=True)
    ds = Datastore(root)
    rec = ds.records.read_attempt("HelloFlow", "1000", "join", "5", 0)
    ds.records.write_attempt({**rec, "step": "end", "task_id": "6", "input_paths": ["join/5"],
                              "transition": {"next": []}})  # fmt: skip
    task = Step("HelloFlow/1000/end").task
    assert task.successful and task._get_row().status == "running"  # listing: the index row
    from headwater.client.source import source_for

    assert source_for().task("HelloFlow", "1000", "end", "6").status == "ok"  # single lookups: the record
