"""Prints to stdout and stderr in a linear step and a foreach: for logs and dump."""
import sys

from headwater import FlowSpec, step


class ChattyFlow(FlowSpec):
    @step
    def start(self):
        print("start out")
        print("start err", file=sys.stderr)
        self.items = ["a", "b", "c"]
        self.big = list(range(1000))
        self._hidden = "private"
        self.next(self.work, foreach="items")

    @step
    def work(self):
        print(f"item {self.input}")
        print(f"second line {self.input}")
        self.item = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.seen = [i.item for i in inputs]
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ChattyFlow()
