"""One flow that touches every part of a datastore: an IncludeFile and a parameter, a
branch and its join, a foreach with a join and a @retry that fails once, a switch, a
@catch of an exception, a card, logs on stdout and stderr, a numpy array and a big blob.
``HW_FAIL_AFTER`` set: the ``after`` step fails (for resume)."""
import os
import sys

import numpy as np

from headwater import FlowSpec, IncludeFile, Parameter, card, catch, current, retry, step


class DatastoreFlow(FlowSpec):
    notes = IncludeFile("notes", default=None, help="a text file stored with the run")
    n = Parameter("n", default=4)

    @card
    @step
    def start(self):
        print(f"hello from start, n={self.n}")
        print("a warning on stderr", file=sys.stderr)
        self.array = np.arange(100_000, dtype=np.float64)
        self.big = os.urandom(3 * 1024 * 1024)  # several MiB: not inline in the record
        self.next(self.left, self.right)

    @step
    def left(self):
        self.side = "left"
        self.next(self.meet)

    @step
    def right(self):
        self.side = "right"
        self.next(self.meet)

    @step
    def meet(self, inputs):
        self.sides = sorted(i.side for i in inputs)
        self.merge_artifacts(inputs, include=["array", "big"])
        self.next(self.fan)

    @step
    def fan(self):
        self.items = list(range(self.n))
        self.next(self.square, foreach="items")

    @retry(times=1, minutes_between_retries=0)
    @step
    def square(self):
        if current.retry_count == 0 and self.input == 1:
            raise RuntimeError("first attempt of item 1 fails")
        print(f"square of {self.input}")
        self.sq = self.input * self.input
        self.next(self.gather)

    @step
    def gather(self, inputs):
        self.squares = [i.sq for i in inputs]
        self.array = inputs[0].array
        self.big = inputs[0].big
        self.next(self.route)

    @step
    def route(self):
        self.mode = "even" if sum(self.squares) % 2 == 0 else "odd"
        self.next({"even": self.even, "odd": self.odd}, condition="mode")

    @step
    def even(self):
        self.parity = "even"
        self.next(self.risky)

    @step
    def odd(self):
        self.parity = "odd"
        self.next(self.risky)

    @catch(var="caught")
    @step
    def risky(self):
        raise ValueError("caught by @catch")
        self.next(self.after)

    @step
    def after(self):
        if os.environ.get("HW_FAIL_AFTER"):
            raise RuntimeError("after fails (HW_FAIL_AFTER)")
        self.total = float(self.array.sum())
        self.next(self.end)

    @step
    def end(self):
        self.done = True


if __name__ == "__main__":
    DatastoreFlow()
