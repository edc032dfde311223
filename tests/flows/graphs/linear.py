# ruff: noqa: F821  (FlowSpec is provided by tests/flow/conftest.py:load_flow_module)
"""Valid flows: linear chains, custom start/end, a single step."""
from headwater.flow.step import step


class LinearFlow(FlowSpec):
    """A straight line of three steps."""

    @step
    def start(self):  # L:start
        """Begin here."""
        self.x = 1
        self.next(self.middle)  # L:start-next

    @step
    def middle(self):
        self.next(self.end)

    @step
    def end(self):  # L:end
        """Finish."""


class CustomEndsFlow(FlowSpec):
    @step(start=True)
    def begin(self):
        self.next(self.finish)

    @step(end=True)
    def finish(self):
        pass


class SingleStepFlow(FlowSpec):
    @step
    def only(self):
        pass
