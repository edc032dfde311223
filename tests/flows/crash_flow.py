"""A step that segfaults."""
import ctypes

from headwater import FlowSpec, step


class CrashFlow(FlowSpec):
    @step
    def start(self):
        print("about to crash")
        ctypes.string_at(0)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CrashFlow()
