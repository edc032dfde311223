"""Step decorators: @retry, @catch, @timeout, @environment, chosen by --mode."""
import os
import time

from headwater import FlowSpec, Parameter, catch, current, environment, retry, step, timeout


def note(what):
    path = os.environ.get("HW_SIDE_EFFECTS")
    if path:
        with open(path, "a") as f:
            f.write(what + "\n")


class DecoratedFlow(FlowSpec):
    mode = Parameter("mode", default="recover", help="recover | giveup | catch | timeout | crash")

    @step
    def start(self):
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        note(f"flaky attempt {current.retry_count}")
        self.attempt_seen = current.retry_count
        if self.mode in ("recover",) and current.retry_count < 2:
            self.partial = "from a failed attempt"
            raise ValueError(f"flaky failure {current.retry_count}")
        if self.mode == "giveup":
            raise ValueError("always fails")
        self.next(self.guarded)

    @catch(var="err")
    @retry(times=1, minutes_between_retries=0)
    @timeout(seconds=2)
    @environment(vars={"HW_STEP_VAR": "set-here"})
    @step
    def guarded(self):
        note(f"guarded attempt {current.retry_count}")
        self.env_seen = os.environ.get("HW_STEP_VAR")
        self.before = "kept"
        if self.mode == "catch":
            raise KeyError("caught me")
        if self.mode == "timeout":
            time.sleep(60)
        if self.mode == "crash":
            os.kill(os.getpid(), 9)
        self.next(self.end)

    @step
    def end(self):
        self.env_in_end = os.environ.get("HW_STEP_VAR")


if __name__ == "__main__":
    DecoratedFlow()
