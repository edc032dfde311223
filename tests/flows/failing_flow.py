"""A foreach where one task fails; siblings are killed and the run fails."""
import time

from headwater import FlowSpec, Parameter, step


class FailingFlow(FlowSpec):
    what = Parameter("what", default="raise", help="raise | unpicklable | splits")

    @step
    def start(self):
        self.items = list(range(4)) if self.what != "splits" else list(range(150))
        self.next(self.work, foreach="items")

    @step
    def work(self):
        if self.what == "raise" and self.input == 2:
            raise ValueError("boom in task 2")
        if self.what == "unpicklable" and self.input == 1:
            self.handle = lambda: None
        if self.what == "raise" and self.input != 2:
            time.sleep(30)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FailingFlow()
