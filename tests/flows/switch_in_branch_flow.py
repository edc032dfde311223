"""A static split whose first branch holds a switch; its cases meet again before the join."""
from headwater import FlowSpec, step


class SwitchInBranchFlow(FlowSpec):
    @step
    def start(self):
        self.pick = "left"
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next({"left": self.left, "right": self.right}, condition="pick")

    @step
    def left(self):
        self.side = "left"
        self.next(self.a_done)

    @step
    def right(self):
        self.side = "right"
        self.next(self.a_done)

    @step
    def a_done(self):
        self.next(self.join)

    @step
    def b(self):
        self.side = "b"
        self.next(self.join)

    @step
    def join(self, inputs):
        self.sides = [inp.side for inp in inputs]
        self.from_a = inputs.a_done.side
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SwitchInBranchFlow()
