"""A step that sets an artifact, then runs past its @timeout."""
import time

from headwater import FlowSpec, step, timeout


class TimeoutFlow(FlowSpec):
    @timeout(seconds=1)
    @step
    def start(self):
        self.progress = "set before the timeout"
        time.sleep(30)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    TimeoutFlow()
