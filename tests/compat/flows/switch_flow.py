"""Switch with a self-loop, then a switch on a parameter (compat fixture)."""

from metaflow import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    """Loop until a count is reached, then route on --mode."""

    mode = Parameter("mode", default="high", help="high or low")
    limit = Parameter("limit", default=3)

    @step
    def start(self):
        self.count = 0
        self.next(self.loop)

    @step
    def loop(self):
        self.count += 1
        self.again = "yes" if self.count < self.limit else "no"
        self.next({"yes": self.loop, "no": self.route}, condition="again")

    @step
    def route(self):
        self.choice = self.mode
        self.next({"high": self.high, "low": self.low}, condition="choice")

    @step
    def high(self):
        self.result = "went high"
        self.next(self.end)

    @step
    def low(self):
        self.result = "went low"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchFlow()
