"""@retry, @catch, @timeout and @environment (compat fixture)."""

import os
import time

from metaflow import FlowSpec, catch, current, environment, retry, step, timeout


class DecoratedFlow(FlowSpec):
    """A flaky step that succeeds on its second attempt, caught failures (with and without
    retries), a caught timeout."""

    @environment(vars={"GREETING": "hi there"})
    @step
    def start(self):
        self.greeting = os.environ.get("GREETING")
        self.next(self.flaky)

    @retry(times=2, minutes_between_retries=0)
    @step
    def flaky(self):
        self.attempt = current.retry_count
        if current.retry_count == 0:
            raise ValueError("first attempt fails")
        self.next(self.caught)

    @catch(var="problem", print_exception=False)
    @step
    def caught(self):
        self.before = "set"
        raise KeyError("nope")
        self.next(self.retried)

    @catch(var="gave_up", print_exception=False)
    @retry(times=1, minutes_between_retries=0)
    @step
    def retried(self):
        self.tries = current.retry_count
        raise ValueError(f"attempt {current.retry_count} fails")
        self.next(self.slow)

    @catch(var="timed_out", print_exception=False)
    @timeout(seconds=2)
    @step
    def slow(self):
        time.sleep(30)
        self.next(self.end)

    @step
    def end(self):
        self.summary = {
            "problem_type": type(self.problem).__name__ if self.problem is not None else None,
            "problem_is_set": self.problem is not None,
            "timed_out_is_set": self.timed_out is not None,
            "gave_up_is_set": self.gave_up is not None,
            "tries": self.tries,
        }


if __name__ == "__main__":
    DecoratedFlow()
