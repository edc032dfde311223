"""A flow that uses no plugin: it reports which plugin modules its tasks imported."""

import sys

from headwater import FlowSpec, step


class PlainFlow(FlowSpec):
    @step
    def start(self):
        self.x = 1
        self.next(self.end)

    @step
    def end(self):
        self.plugin_modules = sorted(m for m in sys.modules if m.startswith("hw_example_plugin"))


if __name__ == "__main__":
    PlainFlow()
