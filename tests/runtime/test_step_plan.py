"""A step's decorator hooks, @catch and @timeout are worked out once per flow class and step."""

from __future__ import annotations

from headwater import FlowSpec, catch, step, timeout
from headwater.runtime.hooks import step_plan


class PlanFlow(FlowSpec):
    @catch(var="err")
    @timeout(minutes=1, seconds=3)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_the_plan_names_catch_and_timeout():
    plan = step_plan(PlanFlow, "start")
    assert plan.catch.name == "catch" and plan.catch.attributes["var"] == "err"
    assert plan.timeout == 63.0
    bare = step_plan(PlanFlow, "end")
    assert bare.catch is None and bare.timeout is None and not bare.hooks.any_finished


def test_the_plan_is_computed_once_per_step():
    assert step_plan(PlanFlow, "start") is step_plan(PlanFlow, "start")
