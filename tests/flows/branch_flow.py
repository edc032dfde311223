"""Static split and join with merge_artifacts."""
from headwater import FlowSpec, step


class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.common = "same"
        self.conflict = 0
        self.next(self.a, self.b)

    @step
    def a(self):
        self.from_a = 1
        self.conflict = 1
        self.next(self.join)

    @step
    def b(self):
        self.from_b = 2
        self.conflict = 2
        self.next(self.join)

    @step
    def join(self, inputs):
        self.before_merge = hasattr(self, "common")
        self.conflict = inputs.a.conflict + inputs.b.conflict
        self.merge_artifacts(inputs)
        self.names = sorted([inp.from_a if hasattr(inp, "from_a") else inp.from_b for inp in inputs])
        self.next(self.end)

    @step
    def end(self):
        self.total = self.from_a + self.from_b + self.conflict


if __name__ == "__main__":
    BranchFlow()
