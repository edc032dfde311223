"""Foreach over a dict iterates its keys, in order (items are taken by iteration, not by index)."""
from headwater import FlowSpec, step
class DictForeachFlow(FlowSpec):
    @step
    def start(self):
        self.things = {10: "a", 20: "b", 30: "c"}
        self.next(self.body, foreach="things")
    @step
    def body(self):
        self.key = self.input
        self.next(self.join)
    @step
    def join(self, inputs):
        self.keys = [i.key for i in inputs]
        self.next(self.end)
    @step
    def end(self):
        print(self.keys)
if __name__ == "__main__":
    DictForeachFlow()
