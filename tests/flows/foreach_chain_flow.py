"""self.input and self.index hold in every step inside a foreach, and on a join's inputs."""
from headwater import FlowSpec, Parameter, step


class ForeachChainFlow(FlowSpec):
    cfg = Parameter("cfg", default="{}", help="unused")

    @step
    def start(self):
        self.items = ["x", "y", "z"]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.next(self.body2)

    @step
    def body2(self):
        self.seen = (self.index, self.input, self.foreach_stack())
        self.next(self.join)

    @step
    def join(self, inputs):
        self.from_inputs = [(i.index, i.input) for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachChainFlow()
