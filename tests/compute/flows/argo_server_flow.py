"""A flow deployed to the fake Argo server: a parameter, and a start step that can be held.

With HW_TEST_LATCH set (in the pods' environment), start touches <latch>.started and waits
until the file <latch> exists, so a test can act while a task is in flight."""
import os
import time

from headwater import FlowSpec, Parameter, current, step


class ArgoServerFlow(FlowSpec):
    alpha = Parameter("alpha", default=0.5, type=float, help="A number")
    who = Parameter("who", default="world", help="Whom to greet")

    @step
    def start(self):
        latch = os.environ.get("HW_TEST_LATCH")
        if latch:
            open(latch + ".started", "w").close()
            while not os.path.exists(latch):
                time.sleep(0.05)
        self.doubled = self.alpha * 2
        self.seen_namespace = current.namespace
        self.next(self.end)

    @step
    def end(self):
        self.greeting = f"hello {self.who}"


if __name__ == "__main__":
    ArgoServerFlow()
