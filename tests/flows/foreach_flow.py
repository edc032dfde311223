"""Foreach with a join (inputs in index order) and a nested foreach."""
from headwater import FlowSpec, step


class ForeachFlow(FlowSpec):
    @step
    def start(self):
        self.items = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
        self.next(self.body, foreach="items")

    @step
    def body(self):
        self.letter = self.input
        self.idx = self.index
        self.stack = self.foreach_stack()
        self.inner = [1, 2]
        self.next(self.inner_body, foreach="inner")

    @step
    def inner_body(self):
        self.pair = (self.letter, self.input)
        self.stack = self.foreach_stack()
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.pairs = [inp.pair for inp in inputs]
        self.letter = inputs[0].letter
        self.next(self.join)

    @step
    def join(self, inputs):
        self.letters = [inp.letter for inp in inputs]
        self.all_pairs = [p for inp in inputs for p in inp.pairs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ForeachFlow()
