"""A retried step (attempt 0 fails) and a step that fails after setting artifacts."""
from headwater import FlowSpec, current, retry, step


class AttemptsFlow(FlowSpec):
    @retry(times=1)
    @step
    def start(self):
        if current.retry_count == 0:
            self.first_try = "attempt 0"
            raise ValueError("attempt 0 fails")
        self.second_try = "attempt 1"
        self.next(self.fails)

    @step
    def fails(self):
        self.x = 42
        self.unstorable = lambda: None  # cannot be pickled: skipped, the rest kept
        raise RuntimeError("boom after setting x")
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    AttemptsFlow()
