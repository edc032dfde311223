"""@retry, @catch and @timeout on Kubernetes: a step that fails once, one that always raises,
one whose process dies, one that runs past its @timeout (the Job's activeDeadlineSeconds)."""
import os
import signal
import time

from headwater import FlowSpec, catch, current, retry, step, timeout


class KubeFaultsFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=1)
    @step
    def flaky(self):
        print(f"flaky attempt {current.retry_count}")
        if current.retry_count == 0:
            raise RuntimeError("the first attempt fails")
        self.recovered_on = current.retry_count
        self.next(self.caught)

    @catch(var="err")
    @step
    def caught(self):
        raise ValueError("always fails")
        self.next(self.crashed)

    @catch(var="crash")
    @step
    def crashed(self):
        os.kill(os.getpid(), signal.SIGKILL)
        self.next(self.slow)

    @catch(var="late")
    @retry(times=1)
    @timeout(seconds=60)
    @step
    def slow(self):
        time.sleep(600)
        self.next(self.end)

    @step
    def end(self):
        self.caught = (self.err.type, self.err.message)
        self.crash_type = self.crash.type
        self.late_type = self.late.type


if __name__ == "__main__":
    KubeFaultsFlow()
