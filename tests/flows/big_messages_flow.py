"""A flow whose task results and join spec are larger than a pipe buffer (fork-pool deadlock test)."""
from headwater import FlowSpec, step

SPLITS = 2100
MESSAGE = 300_000


class BigMessagesFlow(FlowSpec):
    @step
    def start(self):
        self.items = [f"item {i:05d} " + "v" * 20 for i in range(SPLITS)]
        self.next(self.each, foreach="items")

    @step
    def each(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.explode)

    @step
    def explode(self):
        raise RuntimeError("boom " + "x" * MESSAGE)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    BigMessagesFlow()
