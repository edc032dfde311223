# ruff: noqa: F821  (FlowSpec is provided by tests/flow/conftest.py:load_flow_module)
"""A static split of two branches, the first two steps long, closed by one join."""
from headwater.flow.step import step


class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.fork)

    @step
    def fork(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.a2)

    @step
    def a2(self):
        self.next(self.join)

    @step
    def b(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass
