"""Branch + join, foreach + join, a retried task and a switch: driven by `init` + `step`
commands as an orchestrator would (tests/runtime/test_task_command.py)."""
from headwater import FlowSpec, Parameter, current, retry, step


class OrchestratedFlow(FlowSpec):
    mode = Parameter("mode", default="high", help="high or low")
    scale = Parameter("scale", default=10)

    @step
    def start(self):
        self.items = [1, 2, 3]
        self.next(self.a, self.b)

    @step
    def a(self):
        self.from_a = self.scale
        print(f"branch a got scale {self.scale}")
        self.next(self.join)

    @step
    def b(self):
        self.from_b = 2 * self.scale
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = inputs.a.from_a + inputs.b.from_b
        self.items = inputs.a.items
        self.next(self.fan)

    @step
    def fan(self):
        self.next(self.body, foreach="items")

    @retry(times=1)
    @step
    def body(self):
        if self.input == 2 and current.retry_count == 0:
            raise RuntimeError("item 2 fails on its first attempt")
        self.square = self.input * self.input
        self.seen_retry = current.retry_count
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.squares = [inp.square for inp in inputs]
        self.retries = [inp.seen_retry for inp in inputs]
        self.total = inputs[0].total
        self.next(self.route)

    @step
    def route(self):
        self.choice = self.mode
        self.next({"high": self.high, "low": self.low}, condition="choice")

    @step
    def high(self):
        self.result = f"high {sum(self.squares) + self.total}"
        self.next(self.end)

    @step
    def low(self):
        self.result = "low"
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OrchestratedFlow()
