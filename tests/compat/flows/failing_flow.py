"""A step that fails unless --fix is given; resume re-runs it (compat fixture)."""

import os

from metaflow import FlowSpec, current, step


class FailingFlow(FlowSpec):
    """start -> boom -> end; boom raises unless the FIX file exists."""

    @step
    def start(self):
        self.before = "kept"
        print("start ran")
        self.next(self.boom)

    @step
    def boom(self):
        print("about to fail")
        if not os.path.exists("FIX"):
            raise RuntimeError("boom failed")
        self.fixed = True
        self.next(self.end)

    @step
    def end(self):
        self.result = (self.before, self.fixed)
        self.resumed = current.origin_run_id is not None


if __name__ == "__main__":
    FailingFlow()
