"""A flow for store fault tests: a blob-sized artifact whose size is a parameter."""
import random
import time

from headwater import FlowSpec, Parameter, step


class StoreFaultFlow(FlowSpec):
    """start saves ``payload`` (``kib`` KiB, stored as a blob); nap sleeps ``nap`` seconds
    (time to damage the store under a live run); end reads the payload back."""

    kib = Parameter("kib", default=16, type=int)
    nap = Parameter("nap", default=0.0, type=float)

    @step
    def start(self):
        """Make the payload: deterministic (every run stores the same blob) and incompressible."""
        self.payload = random.Random(0).randbytes(1024 * self.kib)
        self.next(self.sleep)

    @step
    def sleep(self):
        time.sleep(self.nap)
        self.next(self.end)

    @step
    def end(self):
        self.payload_len = len(self.payload)


if __name__ == "__main__":
    StoreFaultFlow()
