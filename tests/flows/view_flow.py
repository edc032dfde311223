"""A large array artifact read through headwater.view in the next step (tests/store/test_views.py)."""

import numpy as np

import headwater
from headwater import FlowSpec, Parameter, step


class ViewFlow(FlowSpec):
    mib = Parameter("mib", default=80, type=int)

    @step
    def start(self):
        self.big = np.random.default_rng(7).random(self.mib * (1 << 20) // 8).reshape(-1, 512)
        self.label = "not an array"
        self.next(self.peek)

    @step
    def peek(self):
        v = headwater.view(self, "big")
        self.head = v[:100].copy()
        self.lazy = v.lazy
        self.bytes_read = v.bytes_read
        self.shape = v.shape
        self.label_view = headwater.view(self, "label")[:3]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ViewFlow()
