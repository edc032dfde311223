"""The scheduler's work per task stays constant as a run grows (operation counts, never time)."""

from __future__ import annotations

from collections import deque

import pytest

from headwater.runtime import scheduler as scheduler_mod

from .instant import instant_scheduler


class CountingDeque(deque):
    """A deque that counts every element put in or taken out, across all instances."""

    ops = 0

    def append(self, x):
        CountingDeque.ops += 1
        super().append(x)

    def appendleft(self, x):
        CountingDeque.ops += 1
        super().appendleft(x)

    def extend(self, xs):
        xs = list(xs)
        CountingDeque.ops += len(xs)
        super().extend(xs)

    def popleft(self):
        CountingDeque.ops += 1
        return super().popleft()


def _run(sched):
    try:
        return sched.run()
    finally:
        sched.index.close()


def _queue_ops_per_task(tmp_path, n: int, monkeypatch) -> float:
    monkeypatch.setattr(scheduler_mod, "deque", CountingDeque)
    sched = instant_scheduler(tmp_path / f"store{n}", n, max_workers=4, per_poll=1)
    sched._queue = CountingDeque()
    CountingDeque.ops = 0
    outcome = _run(sched)
    assert outcome.ok and outcome.num_tasks == n + 3
    return CountingDeque.ops / outcome.num_tasks


def test_queue_operations_per_task_do_not_grow_with_the_queue(tmp_path, monkeypatch):
    # Workers full, one task ending per poll: a quadratic scheduler pops and re-appends the
    # whole waiting queue on every pass (thousands of operations per task at these sizes).
    small = _queue_ops_per_task(tmp_path, 2_000, monkeypatch)
    large = _queue_ops_per_task(tmp_path, 8_000, monkeypatch)
    assert small <= 4, small
    assert large <= small * 1.05, (small, large)


def test_resume_matches_each_queued_task_once(tmp_path, monkeypatch):
    sched = instant_scheduler(tmp_path / "store", 3_000, max_workers=4, per_poll=1)

    class NoOrigin:
        """A resume plan whose origin cloned nothing: every task executes; count the matching."""

        calls = 0

        def match(self, spec, graph=None):
            NoOrigin.calls += 1
            return None

    sched.resume = NoOrigin()  # type: ignore[assignment]
    outcome = _run(sched)
    assert outcome.ok and outcome.num_tasks == 3_003
    assert NoOrigin.calls == 3_003


def _admits_per_task(tmp_path, n: int) -> tuple[float, int]:
    from headwater.flow.decorators import StepPolicy
    from headwater.runtime.scheduler import Machine

    sched = instant_scheduler(tmp_path / f"res{n}", n, max_workers=16, per_poll=1,
                              policies={"body": StepPolicy(cpu=2)}, machine=Machine(cpus=4, gpus=0))
    calls, peak = [0], [0]
    admit, launch = sched._admit, sched._launch

    def counting_admit(spec):
        calls[0] += 1
        return admit(spec)

    def watching_launch(spec, gpus):
        launch(spec, gpus)
        peak[0] = max(peak[0], sum(1 for r in sched._running.values() if r.spec.step_name == "body"))

    sched._admit, sched._launch = counting_admit, watching_launch
    outcome = _run(sched)
    assert outcome.ok and outcome.num_tasks == n + 3
    return calls[0] / outcome.num_tasks, peak[0]


def test_tasks_waiting_for_resources_are_not_retried_one_by_one(tmp_path):
    # @resources(cpu=2) on a 4-CPU machine: two body tasks at a time although 16 workers are free.
    # A scheduler that re-admits every waiting task on each pass asks thousands of times per task.
    small, peak = _admits_per_task(tmp_path, 1_000)
    large, _ = _admits_per_task(tmp_path, 4_000)
    assert peak == 2
    assert small <= 3 and large <= small * 1.05, (small, large)


@pytest.mark.parametrize("per_poll", [1, 7])
def test_every_task_runs_once_with_few_workers(tmp_path, per_poll):
    sched = instant_scheduler(tmp_path / "store", 500, max_workers=3, per_poll=per_poll)
    outcome = _run(sched)
    assert outcome.ok and outcome.num_tasks == 503
    assert sched.launcher.launched == 503
