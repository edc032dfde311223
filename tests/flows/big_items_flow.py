"""A foreach over items too large to sit inline in the record: as a list, a dict or a generator."""
from headwater import FlowSpec, Parameter, step


def _item(i):
    return f"{i:06d}" + "x" * 1000


class BigItemsFlow(FlowSpec):
    n = Parameter("n", default=300, type=int)
    kind = Parameter("kind", default="list")

    @step
    def start(self):
        if self.kind == "dict":
            self.items = {_item(i): i for i in range(self.n)}
        elif self.kind == "gen":
            self.items = (_item(i) for i in range(self.n))
        else:
            self.items = [_item(i) for i in range(self.n)]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.got = self.input
        self.stack = self.foreach_stack()
        self.next(self.after)

    @step
    def after(self):  # a step inside the foreach after its first: the same item
        self.again = self.input
        self.stack_after = self.foreach_stack()
        self.next(self.join)

    @step
    def join(self, inputs):
        self.got = [inp.got for inp in inputs]
        self.again = [inp.again for inp in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BigItemsFlow()
