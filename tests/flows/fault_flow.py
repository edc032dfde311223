"""A flow with small and 50 MiB artifacts at several steps: the run process is killed under it."""
import os
import time

from headwater import FlowSpec, step

BIG = 50 * 1024 * 1024


class FaultFlow(FlowSpec):
    @step
    def start(self):
        self.small = {"numbers": list(range(100)), "name": "fault"}
        self.big = os.urandom(BIG)
        self.parts = list(range(4))
        self.next(self.work, foreach="parts")

    @step
    def work(self):
        time.sleep(0.4)
        self.square = self.input * self.input
        self.head = self.big[:16]
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.square for i in inputs)
        self.late = os.urandom(BIG)
        self.next(self.end)

    @step
    def end(self):
        assert self.total == 14 and len(self.late) == BIG
        self.done = True


if __name__ == "__main__":
    FaultFlow()
