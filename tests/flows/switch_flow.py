"""Switch: a branch chosen by an artifact, a self-loop, and an unmatched value."""
from headwater import FlowSpec, Parameter, step


class SwitchFlow(FlowSpec):
    mode = Parameter("mode", default="high", help="high, low, or anything else to fail")
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
