"""A flow with small and 50 MiB artifacts at several steps: the run process is killed under it."""
import os
import time

from headwater import FlowSpec, step

BIG = 50 * 1024 * 1024
NOISE = 4096  # over the inline limit: each step stores a fresh blob, so the test sees what was stored


def _mark(event):
    """Say that ``event`` happened (a file in $HW_FAULT_MARKS): the test kills the run on events."""
    marks = os.environ.get("HW_FAULT_MARKS")
    if marks:
        os.makedirs(marks, exist_ok=True)
        open(os.path.join(marks, event), "w").close()


class FaultFlow(FlowSpec):
    @step
    def start(self):
        _mark("start")
        self.small = {"numbers": list(range(100)), "name": "fault"}
        self.big = os.urandom(BIG)
        self.parts = list(range(4))
        self.noise = os.urandom(NOISE)
        self.next(self.work, foreach="parts")

    @step
    def work(self):
        _mark(f"work-{self.input}")
        time.sleep(0.4)
        self.square = self.input * self.input
        self.head = self.big[:16]
        self.noise = os.urandom(NOISE)
        self.next(self.join)

    @step
    def join(self, inputs):
        _mark("join")
        self.total = sum(i.square for i in inputs)
        self.late = os.urandom(BIG)
        self.noise = os.urandom(NOISE)
        self.next(self.end)

    @step
    def end(self):
        _mark("end")
        assert self.total == 14 and len(self.late) == BIG
        self.noise = os.urandom(NOISE)
        self.done = True


if __name__ == "__main__":
    FaultFlow()
