"""A flow to resume: start -> foreach work -> join -> after -> loop (switch) -> end.

`after` fails while the file named by HW_FAIL_MARKER exists, the second `loop`
iteration while HW_LOOP_FAIL_MARKER exists; `work` sleeps
while HW_SLOW_MARKER exists (so the run can be killed mid-step). Every task
appends a line to HW_SIDE_EFFECTS, so a test can tell what really executed.
"""
import os
import time

from headwater import FlowSpec, Parameter, current, step


def note(what):
    with open(os.environ["HW_SIDE_EFFECTS"], "a") as f:
        f.write(what + "\n")


def marker(name):
    path = os.environ.get(name)
    return bool(path) and os.path.exists(path)


class ResumeFlow(FlowSpec):
    size = Parameter("size", default=3)

    @step
    def start(self):
        note("start")
        self.items = list(range(self.size))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        note(f"work {self.input}")
        while marker("HW_SLOW_MARKER"):
            time.sleep(0.05)
        self.square = self.input * self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        note("join")
        self.total = sum(i.square for i in inputs)
        self.next(self.after)

    @step
    def after(self):
        note("after")
        if marker("HW_FAIL_MARKER"):
            raise RuntimeError("after fails while the marker exists")
        self.origin_seen = current.origin_run_id
        self.count = 0
        self.next(self.loop)

    @step
    def loop(self):
        note(f"loop {self.count}")
        if self.count == 1 and marker("HW_LOOP_FAIL_MARKER"):
            raise RuntimeError("the second loop iteration fails while the marker exists")
        self.count += 1
        self.more = "yes" if self.count < 2 else "no"
        self.next({"yes": self.loop, "no": self.end}, condition="more")

    @step
    def end(self):
        note("end")


if __name__ == "__main__":
    ResumeFlow()
