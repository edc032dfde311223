"""A step that dies of SIGSEGV after printing (compat fixture)."""

import os
import signal

from metaflow import FlowSpec, step


class CrashFlow(FlowSpec):
    """start -> crash (segfaults) -> end."""

    @step
    def start(self):
        self.next(self.crash)

    @step
    def crash(self):
        print("about to crash", flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    CrashFlow()
