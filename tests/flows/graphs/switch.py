# ruff: noqa: F821  (FlowSpec is provided by tests/flow/conftest.py:load_flow_module)
"""Switches: literal keys of several types, and a case that loops on its own step."""
from headwater.flow.step import step


class SwitchFlow(FlowSpec):
    @step
    def start(self):
        self.mode = "fast"
        self.next({"fast": self.quick, 1: self.slow, False: self.slow, -2.5: self.quick}, condition="mode")

    @step
    def quick(self):
        self.next(self.poll)

    @step
    def slow(self):
        self.next(self.poll)

    @step
    def poll(self):
        self.next({"again": self.poll, "done": self.end}, condition="status")  # L:poll-next

    @step
    def end(self):
        pass
