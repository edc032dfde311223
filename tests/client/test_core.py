"""Headwater, Flow, Run and Step over fabricated runs."""

from __future__ import annotations

from datetime import datetime

import pytest

import headwater.client as client
from headwater.client import Flow, Headwater, Metaflow, Run, Step, Task
from headwater.exceptions import HeadwaterNotFound

from .conftest import make_run


@pytest.fixture
def history(root):
    """HelloFlow: 1000 ok (exp), 1001 ok (exp, nightly), 1002 failed at work, 1003 running.
    OtherFlow: 5 ok (newest of all)."""
    runs = {
        "1000": make_run(root, run_id="1000", tags=("exp",), created_at=1000.0),
        "1001": make_run(root, run_id="1001", tags=("exp", "nightly"), created_at=2000.0),
        "1002": make_run(root, run_id="1002", created_at=3000.0, fail_at="work"),
        "1003": make_run(root, run_id="1003", created_at=4000.0, running=True),
    }
    make_run(root, "OtherFlow", "5", created_at=5000.0)
    return runs


def test_exports() -> None:
    assert Metaflow is Headwater
    for name in (
        "Flow",
        "Run",
        "Step",
        "Task",
        "DataArtifact",
        "Headwater",
        "Metaflow",
        "namespace",
        "get_namespace",
        "default_namespace",
        "metadata",
        "get_metadata",
        "default_metadata",
    ):
        assert name in client.__all__ and hasattr(client, name)
    assert "read side" in client.__doc__


def test_headwater_lists_flows_most_recent_first(history) -> None:
    hw = Headwater()
    assert repr(hw) == "Headwater()"
    assert hw.flows == [Flow("OtherFlow"), Flow("HelloFlow")]
    assert [f.id for f in hw] == ["OtherFlow", "HelloFlow"]
    assert hw["HelloFlow"] == Flow("HelloFlow")
    assert "HelloFlow" in hw and "Nope" not in hw
    with pytest.raises(HeadwaterNotFound, match=r"Flow 'Nope' does not exist") as exc:
        hw["Nope"]
    assert isinstance(exc.value, KeyError)


def test_flow_members(history) -> None:
    flow = Flow("HelloFlow")
    assert (flow.id, flow.pathspec, flow.path_components) == ("HelloFlow", "HelloFlow", ["HelloFlow"])
    assert flow.parent is None
    assert flow.tags == flow.user_tags == flow.system_tags == frozenset()
    assert flow.created_at == datetime.fromtimestamp(1000.0)
    assert flow.origin_pathspec is None and flow.is_in_namespace()
    assert repr(flow) == "Flow('HelloFlow')" and str(flow) == "Flow('HelloFlow')"


def test_flow_runs_newest_first(history) -> None:
    flow = Flow("HelloFlow")
    assert [r.id for r in flow] == ["1003", "1002", "1001", "1000"]
    assert all(isinstance(r, Run) for r in flow)
    assert flow.latest_run == Run("HelloFlow/1003")
    assert flow.latest_successful_run == Run("HelloFlow/1001")
    assert [r.id for r in flow.runs()] == ["1003", "1002", "1001", "1000"]
    assert [r.id for r in flow.runs("exp")] == ["1001", "1000"]
    assert [r.id for r in flow.runs("exp", "nightly")] == ["1001"]
    assert [r.id for r in flow.runs("exp", "runtime:dev")] == ["1001", "1000"]
    assert list(flow.runs("nope")) == []
    assert "1000" in flow and "999" not in flow and 5 not in flow
    assert flow["1000"] == Run("HelloFlow/1000")
    with pytest.raises(HeadwaterNotFound, match=r"Run 'HelloFlow/999' does not exist") as exc:
        flow["999"]
    assert isinstance(exc.value, KeyError)


def test_flow_without_successful_runs(root) -> None:
    make_run(root, run_id="1", fail_at="start")
    assert Flow("HelloFlow").latest_successful_run is None
    assert Flow("HelloFlow").latest_run.id == "1"


def test_successful_run(history) -> None:
    run = Run("HelloFlow/1000")
    assert (run.id, run.pathspec, run.path_components) == ("1000", "HelloFlow/1000", ["HelloFlow", "1000"])
    assert run.parent == Flow("HelloFlow")
    assert run.user_tags == frozenset({"exp"})
    assert run.system_tags == frozenset({"user:alice", "runtime:dev", "python_version:3.11.7",
                                         "headwater_version:0.1.0"})  # fmt: skip
    assert run.tags == run.user_tags | run.system_tags
    assert isinstance(run.tags, frozenset)
    assert run.created_at == datetime.fromtimestamp(1000.0)
    assert run.successful and run.finished
    assert isinstance(run.finished_at, datetime) and run.finished_at > run.created_at
    assert run.end_task == Task("HelloFlow/1000/end/6")
    assert run.data.message == "done" and run.data.results == ["aa", "bb", "cc"]
    assert run.code is None and run.trigger is None and run.origin_pathspec is None
    assert repr(run) == "Run('HelloFlow/1000')"


def test_run_steps_newest_first_without_parameters(history) -> None:
    run = Run("HelloFlow/1000")
    assert [s.id for s in run] == ["end", "join", "work", "start"]
    assert [s.id for s in run.steps()] == ["end", "join", "work", "start"]
    assert [s.id for s in run.steps("exp")] == ["end", "join", "work", "start"]
    assert list(run.steps("nope")) == []
    assert all(isinstance(s, Step) for s in run)
    assert run["start"] == Step("HelloFlow/1000/start")
    assert "work" in run and "nope" not in run
    params = run["_parameters"]
    assert params.task.data.alpha == 0.5 and params.task.data.name == "HelloFlow"
    with pytest.raises(HeadwaterNotFound, match=r"Step 'HelloFlow/1000/nope' does not exist") as exc:
        run["nope"]
    assert "has the steps: start, work, join, end" in str(exc.value)


def test_failed_run(history) -> None:
    run = Run("HelloFlow/1002")
    # As in Metaflow, a run is finished when its end task is: this one never got there.
    assert not run.successful and not run.finished and run.status == "failed"
    assert run.finished_at is None
    assert run.end_task is None and run.data is None
    assert [s.id for s in run] == ["work", "start"]
    failed = run["work"].task
    assert failed.id == "3" and not failed.successful and not failed.finished


def test_running_run(history) -> None:
    run = Run("HelloFlow/1003")
    assert not run.successful and not run.finished and run.finished_at is None
    end = run.end_task
    assert end is not None and end.id == "6"
    assert not end.successful and end.finished_at is None
    assert list(run.data) == []
    assert run["end"].finished_at is None


def test_resumed_run_names_its_origin(root) -> None:
    make_run(root, run_id="1", created_at=1.0)
    make_run(root, run_id="2", created_at=2.0, origin_run_id="1")
    assert Run("HelloFlow/2").origin_pathspec == "HelloFlow/1"


def test_step_members(history) -> None:
    step = Step("HelloFlow/1000/work")
    assert (step.id, step.pathspec) == ("work", "HelloFlow/1000/work")
    assert step.path_components == ["HelloFlow", "1000", "work"]
    assert step.parent == Run("HelloFlow/1000")
    assert [t.id for t in step] == ["4", "3", "2"]
    assert [t.id for t in step.tasks()] == ["4", "3", "2"]
    assert [t.id for t in step.tasks("exp", "user:alice")] == ["4", "3", "2"]
    assert list(step.tasks("nope")) == []
    assert step.task == Task("HelloFlow/1000/work/4")
    assert step.created_at == Task("HelloFlow/1000/work/2").created_at
    assert step.finished_at == Task("HelloFlow/1000/work/4").finished_at
    assert "2" in step and "9" not in step
    assert step["3"] == Task("HelloFlow/1000/work/3")
    assert [s.id for s in step.parent_steps] == ["start"]
    assert [s.id for s in step.child_steps] == ["join"]
    assert list(Step("HelloFlow/1000/start").parent_steps) == []
    assert list(Step("HelloFlow/1000/end").child_steps) == []
    assert repr(step) == "Step('HelloFlow/1000/work')"


def test_equality_and_hashing(history) -> None:
    a, b = Run("HelloFlow/1000"), Flow("HelloFlow")["1000"]
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Run("HelloFlow/1001")
    assert Step("HelloFlow/1000/start") != Task("HelloFlow/1000/start/1")
    assert Flow("HelloFlow") != "HelloFlow"


def test_children_inherit_the_root_and_namespace(history) -> None:
    run = Flow("HelloFlow")["1001"]
    step = run["start"]
    task = step["1"]
    assert task.parent == step and task.parent.parent == run and task.parent.parent.parent == Flow("HelloFlow")
    assert task.tags == run.tags
