"""A step that fails on its first attempt only: for `--with retry` and `logs --attempt` (compat fixture)."""

import os
import time

from metaflow import FlowSpec, current, step


class FlakyFlow(FlowSpec):
    """flaky fails on attempt 0; with a retry, attempt 1 records how long it waited."""

    @step
    def start(self):
        self.next(self.flaky)

    @step
    def flaky(self):
        mark = os.path.join(os.getcwd(), f"flaky-{current.run_id}")
        print("attempt", current.retry_count)
        if current.retry_count == 0:
            with open(mark, "w") as f:
                f.write(str(time.time()))
            raise ValueError("first attempt fails")
        with open(mark) as f:
            # Local runs retry at once (minutes_between_retries is for remote schedulers);
            # a wait of a minute or more would be the two-minute default applied.
            self.waited_a_minute = time.time() - float(f.read()) >= 60
        self.attempt = current.retry_count
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    FlakyFlow()
