"""A flow for gc tests: each run stores one of a few shared arrays (chosen by ``pick``) and
one array of its own (``salt``), so runs share some blobs and own others."""
import numpy as np

from headwater import FlowSpec, Parameter, step


class GcFlow(FlowSpec):
    """start stores ``shared`` (one of four arrays, by ``pick``) and ``own`` (unique per
    ``salt``); end reads both back and stores their sums (inline)."""

    pick = Parameter("pick", default=0, type=int)
    salt = Parameter("salt", default=0, type=int)
    nap = Parameter("nap", default=0.0, type=float)

    @step
    def start(self):
        self.shared = np.arange(16384, dtype=np.float64) * (self.pick + 1)
        self.own = np.full(8192, self.salt, dtype=np.int64)
        self.next(self.end)

    @step
    def end(self):
        import time

        time.sleep(self.nap)
        self.total = float(self.shared.sum()) + float(self.own.sum())


if __name__ == "__main__":
    GcFlow()
