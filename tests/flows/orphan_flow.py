"""A foreach whose tasks nap for the seconds they are given: used to kill a run under them."""
import os
import time
from pathlib import Path

from headwater import FlowSpec, step


class OrphanFlow(FlowSpec):
    @step
    def start(self):
        self.naps = [float(s) for s in os.environ.get("HW_NAPS", "2,60").split(",")]
        self.next(self.nap, foreach="naps")

    @step
    def nap(self):
        Path(os.environ["HW_NAP_DIR"], f"nap-{self.index}").write_text(str(os.getpid()))
        time.sleep(self.input)
        self.slept = self.input
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    OrphanFlow()
