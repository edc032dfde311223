"""A flow whose middle step sleeps: used to kill a run while a task is in flight."""
import time

from headwater import FlowSpec, step


class SleepyFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.nap)

    @step
    def nap(self):
        print("napping")
        time.sleep(120)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    SleepyFlow()
