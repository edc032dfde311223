"""What every client object shares: pathspec validation, not-found messages,
and pickling (pathspec only, reopened lazily)."""

from __future__ import annotations

import pickle

import pytest

from headwater.client import DataArtifact, Flow, Run, Step, Task, namespace
from headwater.exceptions import HeadwaterInvalidPathspec, HeadwaterNamespaceMismatch, HeadwaterNotFound

from .conftest import make_run


@pytest.mark.parametrize(
    ("cls", "pathspec", "match"),
    [
        (Flow, "A/1", r"Flow\('A/1'\): expected a pathspec 'FlowName' \(1 component\), got 2 components"),
        (Run, "HelloFlow", r"Run\('HelloFlow'\): expected a pathspec 'FlowName/run_id' \(2 components\), got 1"),
        (Run, "A/1/start", r"got 3 components"),
        (Step, "A/1", r"expected a pathspec 'FlowName/run_id/step_name'"),
        (Task, "A/1/start", r"'FlowName/run_id/step_name/task_id'"),
        (Task, "A/1/start/2/x", r"got 5 components"),
        (DataArtifact, "A/1/start/2", r"'FlowName/run_id/step_name/task_id/artifact_name'"),
        (Run, "A//1", r"expected a pathspec 'FlowName/run_id'"),
        (Run, "", r"got 0 components"),
        (Run, 123, r"Run\(\) expects a pathspec string 'FlowName/run_id', got 123"),
    ],
)
def test_invalid_pathspecs(cls, pathspec, match) -> None:
    with pytest.raises(HeadwaterInvalidPathspec, match=match):
        cls(pathspec)


def test_invalid_pathspec_hint_names_the_right_class() -> None:
    with pytest.raises(HeadwaterInvalidPathspec, match=r"names a Task: use Task\(\.\.\.\)"):
        Run("A/1/start/2")


@pytest.mark.parametrize(
    ("cls", "pathspec", "match", "hint"),
    [
        (Flow, "NoFlow", r"Flow 'NoFlow' does not exist", "Flows in the datastore"),
        (Run, "HelloFlow/9", r"Run 'HelloFlow/9' does not exist", "most recent runs of 'HelloFlow' are: 1000"),
        (Run, "NoFlow/9", r"Run 'NoFlow/9' does not exist", "Flows in the datastore"),
        (Step, "HelloFlow/9/start", r"Step 'HelloFlow/9/start' does not exist: there is no run 'HelloFlow/9'", "1000"),
        (Step, "HelloFlow/1000/nope", r"Step 'HelloFlow/1000/nope' does not exist", "start, work, join, end"),
        (Task, "HelloFlow/1000/work/99", r"Task 'HelloFlow/1000/work/99' does not exist", "tasks: 4, 3, 2"),
        (Task, "HelloFlow/1000/nope/1", r"Task 'HelloFlow/1000/nope/1' does not exist", "has no step 'nope'"),
        (Task, "HelloFlow/9/start/1", r"Task 'HelloFlow/9/start/1' does not exist: there is no run", "1000"),
        (
            DataArtifact,
            "HelloFlow/1000/start/1/nope",
            r"DataArtifact 'HelloFlow/1000/start/1/nope' does not exist",
            "its artifacts are: alpha, blob, items, name",
        ),
        (
            DataArtifact,
            "HelloFlow/1000/start/7/x",
            r"DataArtifact 'HelloFlow/1000/start/7/x' does not exist: task",
            "has the tasks: 1",
        ),
    ],
)
def test_missing_objects_name_their_pathspec(hello, cls, pathspec, match, hint) -> None:
    with pytest.raises(HeadwaterNotFound, match=match) as exc:
        cls(pathspec)
    assert hint in str(exc.value)


def test_flow_not_found_in_an_empty_store(root) -> None:
    root.mkdir(parents=True)
    with pytest.raises(HeadwaterNotFound, match=r"Flow 'HelloFlow' does not exist") as exc:
        Flow("HelloFlow")
    assert "holds no runs of any flow" in str(exc.value)
    assert "HEADWATER_DATASTORE_ROOT" in str(exc.value)


@pytest.mark.parametrize(
    ("make", "pathspec"),
    [
        (lambda: Flow("HelloFlow"), "HelloFlow"),
        (lambda: Run("HelloFlow/1000"), "HelloFlow/1000"),
        (lambda: Step("HelloFlow/1000/work"), "HelloFlow/1000/work"),
        (lambda: Task("HelloFlow/1000/work/3"), "HelloFlow/1000/work/3"),
        (lambda: DataArtifact("HelloFlow/1000/work/3/item"), "HelloFlow/1000/work/3/item"),
    ],
)
def test_objects_pickle_by_pathspec(hello, make, pathspec) -> None:
    obj = make()
    obj.tags  # fill caches that must not travel
    blob = pickle.dumps(obj)
    assert len(blob) < 400  # the pathspec and a few flags, no records or values
    back = pickle.loads(blob)
    assert back == obj and type(back) is type(obj) and back.pathspec == pathspec
    assert repr(back) == repr(obj)
    assert back.tags == obj.tags


def test_unpickled_objects_reopen_lazily(hello) -> None:
    task = pickle.loads(pickle.dumps(Task("HelloFlow/1000/work/3")))
    assert task.data.item == "b" and task.successful and task.current_attempt == 0
    run = pickle.loads(pickle.dumps(Run("HelloFlow/1000")))
    assert run.data.message == "done" and [s.id for s in run] == ["end", "join", "work", "start"]
    art = pickle.loads(pickle.dumps(Task("HelloFlow/1000/start/1")["blob"]))
    assert art.data == b"x" * 10_000
    data = pickle.loads(pickle.dumps(Task("HelloFlow/1000/work/2").data))
    assert data.item == "a"
    # Objects made from listings pickle the same way.
    step = pickle.loads(pickle.dumps(Run("HelloFlow/1000")["work"]))
    assert [t.id for t in step] == ["4", "3", "2"]


def test_pickled_attempt_is_kept(root) -> None:
    make_run(root, retry=True)
    task = pickle.loads(pickle.dumps(Task("HelloFlow/1000/work/3", attempt=0)))
    assert task.current_attempt == 0 and not task.successful
    assert repr(task) == "Task('HelloFlow/1000/work/3', attempt=0)"
    art = pickle.loads(pickle.dumps(DataArtifact("HelloFlow/1000/work/3/item", attempt=1)))
    assert art.data == "b" and art.parent.current_attempt == 1


def test_unpickled_object_reads_its_original_root(tmp_path, monkeypatch, root) -> None:
    make_run(root, run_id="1000")
    blob = pickle.dumps(Run("HelloFlow/1000"))
    other = tmp_path / "other" / ".headwater"
    make_run(other, run_id="2000")
    monkeypatch.setenv("HEADWATER_DATASTORE_ROOT", str(other))
    run = pickle.loads(blob)
    assert run.successful and run.data.message == "done"


def test_unpickled_object_keeps_its_namespace(root) -> None:
    make_run(root, run_id="1000", user="bob")
    namespace(None)
    blob = pickle.dumps(Flow("HelloFlow"))
    namespace("user:alice")
    flow = pickle.loads(blob)
    assert [r.id for r in flow] == ["1000"]
    with pytest.raises(HeadwaterNamespaceMismatch):
        Flow("HelloFlow")
