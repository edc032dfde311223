"""Retries waiting for their time: ties never compare TaskSpecs (they have no order)."""

from __future__ import annotations

from headwater.runtime.delayed import DelayedQueue
from headwater.runtime.taskspec import TaskSpec


def _spec(task_id: str) -> TaskSpec:
    return TaskSpec(flow_name="F", run_id="1", step_name="s", task_id=task_id, attempt=1,
                    input_paths=(), input_attempts=(), datastore_root="/x", user="u")


def test_equal_times_keep_push_order_even_after_pops():
    # The old tie-breaker (next id + queue length) repeated once an entry was popped,
    # and heapq then compared two TaskSpecs: TypeError.
    q = DelayedQueue()
    q.push(5.0, _spec("a"))
    q.push(5.0, _spec("b"))
    assert [s.task_id for s in q.pop_due(4.0)] == []
    q.push(1.0, _spec("c"))
    assert [s.task_id for s in q.pop_due(1.0)] == ["c"]
    q.push(5.0, _spec("d"))
    q.push(5.0, _spec("e"))
    assert q.next_at() == 5.0 and len(q) == 4
    assert [s.task_id for s in q.pop_due(5.0)] == ["a", "b", "d", "e"]
    assert not q
