# ruff: noqa: F821  (FlowSpec is provided by tests/flow/conftest.py:load_flow_module)
"""A foreach inside a foreach, each closed by its own join."""
from headwater.flow.step import step


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.rows = ["a", "b"]
        self.next(self.outer, foreach="rows")

    @step
    def outer(self):
        self.cols = [1, 2, 3]
        self.next(self.inner, foreach="cols")

    @step
    def inner(self):
        self.next(self.join_inner)

    @step
    def join_inner(self, inputs):
        self.next(self.join_outer)

    @step
    def join_outer(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
