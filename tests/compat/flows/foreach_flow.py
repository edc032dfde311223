"""Nested foreach with a join per level (compat fixture)."""

from metaflow import FlowSpec, step


class ForeachFlow(FlowSpec):
    """Fan out over letters, then over numbers inside each letter."""

    @step
    def start(self):
        self.letters = ["a", "b"]
        self.next(self.outer, foreach="letters")

    @step
    def outer(self):
        self.letter = self.input
        self.numbers = [1, 2, 3]
        self.next(self.inner, foreach="numbers")

    @step
    def inner(self):
        self.label = f"{self.letter}{self.input}"
        self.stack = [(i, n, v) for i, n, v in self.foreach_stack()]
        print("inner", self.label)
        self.next(self.join_inner)

    @step
    def join_inner(self, inputs):
        self.labels = sorted(i.label for i in inputs)
        self.merge_artifacts(inputs, include=["letter"])
        self.next(self.join_outer)

    @step
    def join_outer(self, inputs):
        self.all_labels = sorted(label for i in inputs for label in i.labels)
        self.next(self.end)

    @step
    def end(self):
        print("labels", len(self.all_labels))


if __name__ == "__main__":
    ForeachFlow()
