"""A task whose process is killed inside a @catch step (compat fixture)."""

import os
import signal

from metaflow import FlowSpec, catch, step


class CatchKillFlow(FlowSpec):
    """start -> killed (SIGKILL, caught by @catch's fallback attempt) -> end."""

    @step
    def start(self):
        self.before = "kept"
        self.next(self.killed)

    @catch(var="kill_err", print_exception=False)
    @step
    def killed(self):
        self.lost = "never stored"
        os.kill(os.getpid(), signal.SIGKILL)
        self.next(self.end)

    @step
    def end(self):
        # The class name only: each engine defines FailureHandledByCatch in its own module.
        self.seen = (type(self.kill_err).__name__, self.kill_err.type.rsplit(".", 1)[-1], self.kill_err.exception)


if __name__ == "__main__":
    CatchKillFlow()
