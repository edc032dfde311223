"""runtime.clone_decision: when a task of a resumed orchestrated run clones its origin task (pure)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from flowrun import FLOWS
from headwater.runtime.clone_decision import copied_from, decide_clone

FLOW, ORIGIN = "ArgoResumeFlow", "argo-wf1"


@pytest.fixture(scope="module")
def graph() -> Any:
    path = FLOWS / "argo_resume_flow.py"
    spec = importlib.util.spec_from_file_location("argo_resume_flow_for_decisions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ArgoResumeFlow._graph


def clone_of(step: str, task: str) -> dict[str, Any]:
    """An input record of this run that is a clone of the origin's task of the same step and id."""
    return {"step": step, "task_id": task, "status": "ok",
            "metadata": {"origin_pathspec": f"{FLOW}/{ORIGIN}/{step}/{task}", "cloned": True}}


def executed(step: str, task: str) -> dict[str, Any]:
    """An input record of this run that executed (a resumed run's tasks all name the origin run)."""
    return {"step": step, "task_id": task, "status": "ok", "metadata": {"origin_run_id": ORIGIN}}


def origin(step: str, task: str, inputs: list[str], nxt: list[str], status: str = "ok",
           split_index: int | None = None) -> dict[str, Any]:
    return {"step": step, "task_id": task, "attempt": 0, "status": status, "input_paths": inputs,
            "split_index": split_index, "transition": {"next": nxt}}


def decide(graph: Any, step: str, task: str, inputs: list[dict[str, Any]], origin_rec: dict[str, Any] | None,
           split_index: int | None = None, attempt: int = 0):
    return decide_clone(flow=FLOW, origin_run_id=ORIGIN, step=step, task_id=task, split_index=split_index,
                        attempt=attempt, input_paths=[f"{r['step']}/{r['task_id']}" for r in inputs],
                        inputs=inputs, origin=origin_rec, graph=graph)


def test_a_task_whose_origin_succeeded_and_whose_inputs_are_clones_is_cloned(graph: Any) -> None:
    d = decide(graph, "join_ab", "1", [clone_of("a", "1"), clone_of("b", "1")],
               origin("join_ab", "1", ["a/1", "b/1"], ["fan"]))
    assert d.clone and d.reason == f"cloned from {FLOW}/{ORIGIN}/join_ab/1 (attempt 0)"


def test_the_start_step_is_cloned_after_the_origin_parameters_were_copied(graph: Any) -> None:
    params = {"step": "_parameters", "task_id": "0",
              "metadata": {"origin_pathspec": f"{FLOW}/{ORIGIN}/_parameters/0"}}
    assert decide(graph, "start", "1", [params], origin("start", "1", ["_parameters/0"], ["a", "b"])).clone
    fresh = {"step": "_parameters", "task_id": "0", "metadata": {}}  # a new run's own parameters
    d = decide(graph, "start", "1", [fresh], origin("start", "1", ["_parameters/0"], ["a", "b"]))
    assert not d.clone and d.reason == f"its input _parameters/0 was not cloned from run {ORIGIN}"


def test_a_failed_or_missing_origin_task_runs(graph: Any) -> None:
    inputs = [clone_of("fan", "1")]
    d = decide(graph, "work", "1-1", inputs, origin("work", "1-1", ["fan/1"], ["join_work"], status="failed",
                                                    split_index=1), split_index=1)
    assert not d.clone and d.reason == f"the origin task {FLOW}/{ORIGIN}/work/1-1 did not succeed"
    d = decide(graph, "join_work", "1", inputs, None)
    assert not d.clone and d.reason == f"the origin run has no task {FLOW}/{ORIGIN}/join_work/1"


def test_a_task_after_an_executed_task_runs(graph: Any) -> None:
    inputs = [clone_of("work", "1-0"), executed("work", "1-1")]
    d = decide(graph, "join_work", "1", inputs, origin("join_work", "1", ["work/1-0", "work/1-1"], ["end"]))
    assert not d.clone and d.reason == f"its input work/1-1 was not cloned from run {ORIGIN}"
    other = clone_of("work", "1-1")
    other["metadata"]["origin_pathspec"] = f"{FLOW}/argo-older/work/1-1"  # cloned, but from another run
    d = decide(graph, "join_work", "1", [clone_of("work", "1-0"), other],
               origin("join_work", "1", ["work/1-0", "work/1-1"], ["end"]))
    assert not d.clone


def test_a_retry_runs_the_step(graph: Any) -> None:
    d = decide(graph, "a", "1", [clone_of("start", "1")], origin("a", "1", ["start/1"], ["join_ab"]), attempt=1)
    assert not d.clone and d.reason == "attempt 1 is a retry, which runs the step"


@pytest.mark.parametrize("origin_rec, why", [
    (origin("join_work", "1", ["work/1-0"], ["end"]), "read other inputs (work/1-0)"),
    (origin("join_work", "1", ["work/1-0", "work/1-1"], ["gone"]), "went to steps the flow no longer has"),
])
def test_an_origin_task_that_does_not_fit_the_task_runs(graph: Any, origin_rec: dict[str, Any], why: str) -> None:
    d = decide(graph, "join_work", "1", [clone_of("work", "1-0"), clone_of("work", "1-1")], origin_rec)
    assert not d.clone and why in d.reason


def test_another_split_index_runs(graph: Any) -> None:
    d = decide(graph, "work", "1-1", [clone_of("fan", "1")],
               origin("work", "1-1", ["fan/1"], ["join_work"], split_index=2), split_index=1)
    assert not d.clone and "another split index" in d.reason


def test_copied_from_reads_the_origin_pathspec() -> None:
    assert copied_from(clone_of("a", "1")) == f"{FLOW}/{ORIGIN}/a/1"
    assert copied_from(executed("a", "1")) is None
    assert copied_from({}) is None
