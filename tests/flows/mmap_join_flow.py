"""A join over many inputs that each hold an array large enough to be memory-mapped on load."""
import numpy as np

from headwater import FlowSpec, Parameter, step


class MmapJoinFlow(FlowSpec):
    n = Parameter("n", default=10, type=int)

    @step
    def start(self):
        self.items = list(range(self.n))
        self.next(self.body, foreach="items")

    @step
    def body(self):
        # 1.6 MB of incompressible data: mapped, not copied, when loaded (one blob, deduplicated)
        self.arr = np.random.default_rng(0).random(200_000)
        self.arr[0] = 1.0
        self.next(self.join)

    @step
    def join(self, inputs):
        arrays = [inp.arr for inp in inputs]  # all held at once
        self.total = float(sum(a[0] for a in arrays))
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    MmapJoinFlow()
