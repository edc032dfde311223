"""A step that saves a compressible array spanning several zstd frames (24 MiB)."""
import numpy as np

from headwater import FlowSpec, step


class CompressibleArrayFlow(FlowSpec):
    @step
    def start(self):
        self.ramp = np.arange(3 << 20, dtype=np.float64)
        self.next(self.end)

    @step
    def end(self):
        assert self.ramp[-1] == (3 << 20) - 1


if __name__ == "__main__":
    CompressibleArrayFlow()
