"""A flow to resume on Argo through a switch and a nested foreach:
start (switch on HW_ROUTE) -> deep | shallow -> fan (foreach outer) -> outer_body (foreach inner)
-> inner_body -> inner_join -> outer_join -> end.

The switch reads the environment, so a re-executed `start` could choose the other branch; a
resumed run must take the branch its origin took. The `inner_body` task of the pair "1y" fails
while the file named by HW_FAIL_MARKER exists. Every task appends a line to the file named by
HW_SIDE_EFFECTS (when set), so a test can tell which tasks executed and which were cloned.
"""
import os

from headwater import FlowSpec, Parameter, step


def note(what):
    path = os.environ.get("HW_SIDE_EFFECTS")
    if path:
        with open(path, "a") as f:
            f.write(what + "\n")


class ArgoResumeSwitchFlow(FlowSpec):
    width = Parameter("width", default=2)

    @step
    def start(self):
        note("start")
        self.mode = os.environ.get("HW_ROUTE", "deep")
        self.next({"deep": self.deep, "shallow": self.shallow}, condition="mode")

    @step
    def deep(self):
        note("deep")
        self.letters = "xy"
        self.next(self.fan)

    @step
    def shallow(self):
        note("shallow")
        self.letters = "x"
        self.next(self.fan)

    @step
    def fan(self):
        note("fan")
        self.outer = list(range(self.width))
        self.next(self.outer_body, foreach="outer")

    @step
    def outer_body(self):
        note(f"outer_body {self.input}")
        self.o = self.input
        self.inner = [f"{self.o}{c}" for c in self.letters]
        self.next(self.inner_body, foreach="inner")

    @step
    def inner_body(self):
        note(f"inner_body {self.input}")
        marker = os.environ.get("HW_FAIL_MARKER")
        if self.input == "1y" and marker and os.path.exists(marker):
            raise RuntimeError("inner_body fails for 1y while the marker exists")
        self.pair = self.input.upper()
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        note(f"inner_join {inputs[0].o}")
        self.pairs = sorted(i.pair for i in inputs)
        self.mode = inputs[0].mode
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        note("outer_join")
        self.all_pairs = sorted(p for i in inputs for p in i.pairs)
        self.mode = inputs[0].mode
        self.next(self.end)

    @step
    def end(self):
        note("end")
        self.summary = f"{self.mode}: {','.join(self.all_pairs)}"


if __name__ == "__main__":
    ArgoResumeSwitchFlow()
