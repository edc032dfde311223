"""Nested foreach over dicts: foreach_stack(), metadata, task order, include= of a parameter."""
from headwater import FlowSpec, Parameter, current, retry, step


class NestedForeachFlow(FlowSpec):
    alpha = Parameter("alpha", default=3)

    @step
    def start(self):
        self.outer = [{"k": 0}, {"k": 1}, {"k": 2}]
        self.next(self.body, foreach="outer")

    @retry(times=1)
    @step
    def body(self):
        if self.index == 0 and current.retry_count == 0:
            raise RuntimeError("the first item fails once")
        self.inner = ["x", "y"]
        self.next(self.inner_body, foreach="inner")

    @step
    def inner_body(self):
        self.stack = self.foreach_stack()
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.stacks = [i.stack for i in inputs]
        self.merge_artifacts(inputs, include=["alpha"])
        self.next(self.join)

    @step
    def join(self, inputs):
        self.stacks = [s for i in inputs for s in i.stacks]
        self.merge_artifacts(inputs, include=["alpha"])
        self.next(self.end)

    @step
    def end(self):
        self.step_names = [s.__name__ for s in self]


if __name__ == "__main__":
    NestedForeachFlow()
