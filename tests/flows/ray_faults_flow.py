"""@retry, @catch and @timeout on Ray tasks (Ray launcher tests)."""

import os
import signal
import time

from headwater import FlowSpec, catch, current, retry, step, timeout


class RayFaultsFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky, self.broken, self.stubborn, self.killed)

    @retry(times=1)
    @step
    def flaky(self):
        if current.retry_count == 0:
            raise ValueError("first attempt fails")
        self.flaky_attempt = current.retry_count
        self.next(self.join)

    @catch(var="broken_err")
    @retry(times=1)
    @step
    def broken(self):
        print("broken attempt", current.retry_count)
        raise RuntimeError("always broken")
        self.next(self.join)

    @catch(var="timeout_err")
    @timeout(seconds=2)
    @step
    def stubborn(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # swallows the TimeoutException: only the kill ends it
            try:
                time.sleep(60)
            except Exception:
                pass
        self.next(self.join)

    @catch(var="kill_err")
    @step
    def killed(self):
        os.kill(os.getpid(), signal.SIGKILL)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.flaky_attempt = inputs.flaky.flaky_attempt
        self.broken_err = str(inputs.broken.broken_err)
        self.timeout_err = str(inputs.stubborn.timeout_err)
        self.kill_err = str(inputs.killed.kill_err)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    RayFaultsFlow()
