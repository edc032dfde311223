"""Uses the example plugin package (examples/plugin) without importing its decorators
(tests/plugins/test_plugins.py installs the package first)."""

from decimal import Decimal

from headwater import FlowSpec, card, owner, step  # owner: a flow decorator plugin
from hw_example_plugin.geometry import Point


@owner(team="ml")
class PluginFlow(FlowSpec):
    @card(type="plugin_hello")
    @step
    def start(self):
        self.point = Point(1.5, -2.0)
        self.points = {"a": Point(0.0, 1.0)}
        self.price = Decimal("9.99")  # the broken codec plugin claims Decimal
        self.next(self.end)

    @step
    def end(self):
        assert self.point == Point(1.5, -2.0)
        print("END", self.point.x, self.points["a"].y, self.price)


if __name__ == "__main__":
    PluginFlow()
