"""A flow to resume on Argo: start -> branch (a, b) -> join_ab -> fan (foreach) work -> join_work -> end.

The `work` task of item 1 fails while the file named by HW_FAIL_MARKER exists. Every task
appends a line to the file named by HW_SIDE_EFFECTS (when set), so a test can tell which
tasks really executed and which were cloned.
"""
import os

from headwater import FlowSpec, Parameter, current, step


def note(what):
    path = os.environ.get("HW_SIDE_EFFECTS")
    if path:
        with open(path, "a") as f:
            f.write(what + "\n")


class ArgoResumeFlow(FlowSpec):
    size = Parameter("size", default=3)

    @step
    def start(self):
        note("start")
        self.items = list(range(self.size))
        self.next(self.a, self.b)

    @step
    def a(self):
        note("a")
        self.from_a = 10
        self.next(self.join_ab)

    @step
    def b(self):
        note("b")
        self.from_b = 20
        self.next(self.join_ab)

    @step
    def join_ab(self, inputs):
        note("join_ab")
        self.offset = inputs.a.from_a + inputs.b.from_b
        self.items = inputs.a.items
        self.next(self.fan)

    @step
    def fan(self):
        note("fan")
        self.next(self.work, foreach="items")

    @step
    def work(self):
        note(f"work {self.input}")
        marker = os.environ.get("HW_FAIL_MARKER")
        if self.input == 1 and marker and os.path.exists(marker):
            raise RuntimeError("work fails for item 1 while the marker exists")
        self.value = self.input * self.input + self.offset
        self.next(self.join_work)

    @step
    def join_work(self, inputs):
        note("join_work")
        self.total = sum(i.value for i in inputs)
        self.origin_seen = current.origin_run_id is not None
        self.next(self.end)

    @step
    def end(self):
        note("end")


if __name__ == "__main__":
    ArgoResumeFlow()
