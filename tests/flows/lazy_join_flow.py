"""A join over 100 foreach inputs that reads one input's array: which blobs did it map?"""

import numpy as np

from headwater import FlowSpec, step


class LazyJoinFlow(FlowSpec):
    @step
    def start(self):
        self.items = list(range(100))
        self.next(self.fan, foreach="items")

    @step
    def fan(self):
        self.x = np.random.default_rng(self.input).random((2 << 20) // 8)  # 2 MiB: mapped when loaded
        self.n = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        picked = inputs[7].x
        with open("/proc/self/maps") as f:
            self.mapped = sorted({line.split()[-1].rsplit("/", 1)[-1] for line in f if "/blobs/" in line})
        self.picked_sum = float(picked.sum())
        self.ns = sorted(i.n for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    LazyJoinFlow()
