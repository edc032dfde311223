"""Static split into two branches and a join with merge_artifacts (compat fixture)."""

from metaflow import FlowSpec, step


class BranchFlow(FlowSpec):
    """Two branches that agree on one artifact and differ on another."""

    @step
    def start(self):
        self.shared = "same"
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "L"
        self.left_only = 1
        self.next(self.join)

    @step
    def right(self):
        self.side = "R"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.via_name = inputs.left.side + inputs.right.side
        self.merge_artifacts(inputs, exclude=["side"])
        self.next(self.end)

    @step
    def end(self):
        self.done = (self.shared, self.left_only, self.sides)


if __name__ == "__main__":
    BranchFlow()
